"""Reading a Dockerfile stays linear in its size: a RUN continued over 100,000 lines, a 4 MB line, tens of
thousands of ARGs, stages or heredoc commands.

Not a benchmark (bench/parse.py prints the times): each case is sized so that a linear reader takes well
under a second and a quadratic one half a minute or more, and the timeout, generous for a busy machine (the
whole suite on two shared cores), fails the test before a quadratic reader would finish (counting newlines
from the top for each heredoc command took minutes here; copying the ARGs per ARG or the stage names per FROM
half a minute).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from pinrepro.dockerfile import Instruction, instructions, parse, reader
from pinrepro.dockerfile.commands import commands, scripts
from pinrepro.errors import DockerfileError

LINES = 100_000
BIG = 4_000_000  # characters on one line

CASES: dict[str, Callable[[], str]] = {
    "run-continued": lambda: "FROM ubuntu:22.04\nRUN echo a \\\n" + "  && pip install b \\\n" * LINES + " true\n",
    "run-4mb-line": lambda: "FROM ubuntu:22.04\nRUN " + "x" * BIG + "\n",
    "run-1mb-words": lambda: "FROM ubuntu:22.04\nRUN echo " + "'ab' \"cd\" $e " * (BIG // 52) + "\n",
    "run-substitutions": lambda: "FROM ubuntu:22.04\nRUN echo " + "$(a $(b)) " * (LINES // 2) + "\n",
    "arg-4mb-default": lambda: "ARG A=" + "x" * BIG + "\nFROM ubuntu\n",
    "heredoc-commands": lambda: "FROM ubuntu:22.04\nRUN <<EOF\n" + "pip install b\n" * LINES + "EOF\n",
    "global-args": lambda: "".join(f"ARG A{i}=v{i}\n" for i in range(LINES // 2)) + "FROM ubuntu:$A7\n",
    "stage-args-and-runs": lambda: "FROM ubuntu:22.04\n" + "".join(
        f"ARG A{i}=v{i}\nRUN echo $A{i}\n" for i in range(LINES // 5)),
    "stage-chain": lambda: "FROM ubuntu:22.04 AS s0\n" + "".join(
        f"FROM s{i} AS s{i + 1}\n" for i in range(LINES // 2)),
}

# What each case reads: (FROM sites, RUN scripts), so a reader that stops early cannot pass on speed alone.
READ = {
    "run-continued": (1, 1), "run-4mb-line": (1, 1), "run-1mb-words": (1, 1), "run-substitutions": (1, 1),
    "arg-4mb-default": (1, 0), "heredoc-commands": (1, 2), "global-args": (1, 0),
    "stage-args-and-runs": (1, LINES // 5), "stage-chain": (LINES // 2 + 1, 0),
}


@pytest.fixture(autouse=True)
def _cold_caches() -> Iterator[None]:
    """Each case reads cold, and leaves nothing behind: the reader's caches would otherwise keep the last
    cases' instructions alive, and a big heap makes every garbage collection of the next case slower."""
    reader._instructions.cache_clear()
    scripts.cache_clear()
    yield
    reader._instructions.cache_clear()
    scripts.cache_clear()


@pytest.mark.timeout(10)
@pytest.mark.parametrize("case", sorted(CASES))
def test_parse_is_linear(case: str) -> None:
    dockerfile = parse(CASES[case]())
    assert (len(dockerfile.sites), len(dockerfile.runs)) == READ[case]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("case", sorted(CASES))
def test_instructions_are_linear(case: str) -> None:
    text = CASES[case]()
    found, _ = instructions(text)
    assert found[-1].end_line == text.count("\n")  # read to the last line


@pytest.mark.timeout(10)
@pytest.mark.parametrize("case", ["run-continued", "run-4mb-line", "run-1mb-words", "run-substitutions",
                                  "heredoc-commands"])
def test_run_commands_are_linear(case: str) -> None:
    runs: list[Instruction] = [i for i in instructions(CASES[case]())[0] if i.command == "run"]
    found = [command for run in runs for command in commands(run, nested=True)]
    assert found
    if case == "heredoc-commands":
        assert found[-1].line == LINES + 2  # each command names its own line, the last one included


@pytest.mark.timeout(10)
def test_a_4mb_from_tag_is_refused_in_linear_time() -> None:
    with pytest.raises(DockerfileError):
        parse("FROM ubuntu:" + "x" * BIG + "\n")
