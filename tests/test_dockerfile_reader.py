"""The Dockerfile reader's instructions: line spans, heredoc bodies, flags, stages - what `check` reads."""

from __future__ import annotations

from pinrepro.dockerfile import instructions, parse, stages

TEXT = """\
# syntax=docker/dockerfile:1
ARG BASE=python:3.11-slim
FROM ${BASE} AS build
run --mount=type=cache,target=/root/.cache/pip \\
    # a comment inside the continuation is skipped
    pip wheel \\

    -w /wheels .
RUN <<EOF bash
set -e
echo hi
EOF
RUN <<-INDENTED
\techo tabbed
\tINDENTED
from build as final
ENV A=1 B="two words"
env LEGACY value with spaces
USER app
"""


def test_instructions_have_line_spans_and_stage_indexes() -> None:
    found, directives = instructions(TEXT)
    assert directives == {"syntax": "docker/dockerfile:1"}
    assert [(i.command, i.line, i.end_line, i.stage) for i in found] == [
        ("arg", 2, 2, -1), ("from", 3, 3, 0), ("run", 4, 8, 0), ("run", 9, 12, 0), ("run", 13, 15, 0),
        ("from", 16, 16, 1), ("env", 17, 17, 1), ("env", 18, 18, 1), ("user", 19, 19, 1),
    ]


def test_positions_map_back_to_physical_lines() -> None:
    run = instructions(TEXT)[0][2]
    assert run.flags == ("--mount=type=cache,target=/root/.cache/pip",)
    assert run.flag("mount") == "type=cache,target=/root/.cache/pip"
    assert run.line_at(run.text.index("pip wheel")) == 6
    assert run.line_at(run.text.index("-w /wheels")) == 8


def test_heredoc_bodies() -> None:
    found = instructions(TEXT)[0]
    assert [(h.name, h.line, h.body) for h in found[3].heredocs] == [("EOF", 10, "set -e\necho hi")]
    assert [(h.name, h.line, h.body) for h in found[4].heredocs] == [("INDENTED", 14, "echo tabbed")]


def test_env_pairs() -> None:
    found = instructions(TEXT)[0]
    assert found[6].pairs() == [("A", "1"), ("B", '"two words"')]
    assert found[7].pairs() == [("LEGACY", "value with spaces")]


def test_stages_know_the_stage_they_build_on() -> None:
    built = stages(parse(TEXT))
    assert [(s.index, s.name, s.site.kind, s.site.base_stage, len(s.instructions)) for s in built] == [
        (0, "build", "image", None, 4), (1, "final", "stage", "build", 4)]
    assert built[1].label() == "final"


def test_directives_only_at_the_top() -> None:
    """BuildKit: once a comment, blank line or instruction is read, a ``# escape=`` line is a comment
    (https://docs.docker.com/reference/dockerfile/#parser-directives)."""
    late = "\n# escape=`\nFROM a\nRUN echo \\\n  b\n"
    found, directives = instructions(late)
    assert directives == {}
    assert [(i.command, i.line, i.end_line, i.escape) for i in found] == [("from", 3, 3, "\\"), ("run", 4, 5, "\\")]
    top = late.lstrip("\n").replace("\\\n", "`\n")
    found, directives = instructions(top)
    assert directives == {"escape": "`"}
    assert [(i.command, i.line, i.end_line, i.escape) for i in found] == [("from", 2, 2, "`"), ("run", 3, 4, "`")]


def test_directive_after_a_comment_is_a_comment() -> None:
    found, directives = instructions("# a comment\n# syntax=docker/dockerfile:1\n# escape=`\nFROM a\n")
    assert directives == {}
    assert [(i.command, i.escape) for i in found] == [("from", "\\")]
