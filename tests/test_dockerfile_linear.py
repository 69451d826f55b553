"""Reading a Dockerfile stays linear in its size: a RUN continued over 100,000 lines, a 4 MB line, tens of
thousands of ARGs, stages or heredoc commands.

Not a benchmark (bench/parse.py prints the times): each case is sized so that a linear reader takes well
under a second and a quadratic one minutes, and the timeout, generous for a busy machine, fails the test
long before a quadratic reader would finish (counting newlines from the top for each heredoc command took
minutes for the heredoc case; copying the ARGs per ARG or the stage names per FROM tens of seconds).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pinrepro.dockerfile import Instruction, instructions, parse
from pinrepro.dockerfile.commands import commands
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
    "global-args": lambda: "".join(f"ARG A{i}=v{i}\n" for i in range(LINES // 3)) + "FROM ubuntu:$A7\n",
    "stage-args-and-runs": lambda: "FROM ubuntu:22.04\n" + "".join(
        f"ARG A{i}=v{i}\nRUN echo $A{i}\n" for i in range(LINES // 5)),
    "stage-chain": lambda: "FROM ubuntu:22.04 AS s0\n" + "".join(
        f"FROM s{i} AS s{i + 1}\n" for i in range(LINES // 3)),
}


@pytest.mark.timeout(5)
@pytest.mark.parametrize("case", sorted(CASES))
def test_parse_is_linear(case: str) -> None:
    dockerfile = parse(CASES[case]())
    assert dockerfile.sites


@pytest.mark.timeout(5)
@pytest.mark.parametrize("case", sorted(CASES))
def test_instructions_are_linear(case: str) -> None:
    found, _ = instructions(CASES[case]())
    assert found[-1].end_line >= found[-1].line


@pytest.mark.timeout(10)  # each command is an object with its words and line: more work per byte
@pytest.mark.parametrize("case", ["run-continued", "run-4mb-line", "run-1mb-words", "run-substitutions",
                                  "heredoc-commands"])
def test_run_commands_are_linear(case: str) -> None:
    runs: list[Instruction] = [i for i in instructions(CASES[case]())[0] if i.command == "run"]
    found = [command for run in runs for command in commands(run, nested=True)]
    assert found
    if case == "heredoc-commands":
        assert found[-1].line == LINES + 2  # each command names its own line, the last one included


@pytest.mark.timeout(5)
def test_a_4mb_from_tag_is_refused_in_linear_time() -> None:
    with pytest.raises(DockerfileError):
        parse("FROM ubuntu:" + "x" * BIG + "\n")
