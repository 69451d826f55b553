"""RUN scripts as the shell reads them (pinrepro.dockerfile.commands): tokens, simple commands, and the
Dockerfile line each command is on."""

from __future__ import annotations

import pytest

from pinrepro.dockerfile import instructions, shell_tokens
from pinrepro.dockerfile.commands import commands


def tokens(script: str) -> list[str]:
    return [("op:" if token.operator else "") + token.text for token in shell_tokens(script)]


@pytest.mark.parametrize(("script", "expected"), [
    ("apt-get update && apt-get install -y x", ["apt-get", "update", "op:&&", "apt-get", "install", "-y", "x"]),
    ("a;b|c||d&e", ["a", "op:;", "b", "op:|", "c", "op:||", "d", "op:&", "e"]),
    ("echo 'a b' \"c $d\" e\\ f", ["echo", "'a b'", '"c $d"', "e\\ f"]),
    ("x=$(cat a | wc -l) y", ["x=$(cat a | wc -l)", "y"]),
    ("echo $(a $(b) 'c)') d", ["echo", "$(a $(b) 'c)')", "d"]),
    ("echo `date` # a comment\nls", ["echo", "`date`", "op:\n", "ls"]),
    ("echo a#b", ["echo", "a#b"]),
    ("cmd 2>&1 >>log <in", ["cmd", "2", "op:>", "op:&", "1", "op:>>", "log", "op:<", "in"]),
    ("echo 'unclosed", ["echo", "'unclosed"]),
    ("echo \"a\\\"b\" c", ["echo", '"a\\"b"', "c"]),
    ("( cd x ) ; \\", ["op:(", "cd", "x", "op:)", "op:;", "\\"]),
])
def test_shell_tokens(script: str, expected: list[str]) -> None:
    assert tokens(script) == expected


def test_token_positions_index_the_script() -> None:
    script = "a  'b c'\t$(d)"
    assert [(t.start, t.end) for t in shell_tokens(script)] == [(0, 1), (3, 8), (9, 13)]
    assert all(script[t.start:t.end] == t.text for t in shell_tokens(script))


TEXT = """\
FROM python:3.11
RUN apt-get update \\
    # a comment inside the continuation
    && pip install "a b" > /tmp/log 2>&1 \\
    && echo $(pip install inner)
RUN <<EOF
set -e
pip install first

pip install second
EOF
"""


def test_commands_name_their_own_line() -> None:
    found, _ = instructions(TEXT)
    run, heredoc = found[1], found[2]
    assert [(c.line, c.argv, [(r.operator, r.target) for r in c.redirects]) for c in commands(run)] == [
        (2, ("apt-get", "update"), []),
        (4, ("pip", "install", "a b"), [(">", "/tmp/log"), ("2>&", "1")]),
        (5, ("echo", "$(pip install inner)"), []),
    ]
    # The RUN line itself is only the redirection <<EOF; the body's commands are on their own lines.
    assert [(c.line, c.argv) for c in commands(heredoc)] == [
        (6, ()), (7, ("set", "-e")), (8, ("pip", "install", "first")), (10, ("pip", "install", "second"))]


def test_nested_commands_include_substitutions() -> None:
    run = instructions(TEXT)[0][1]
    nested = [(c.line, c.argv) for c in commands(run, nested=True)]
    assert nested[-1] == (5, ("pip", "install", "inner"))
    assert len(nested) == 4
    script = "RUN echo \"$(a \"$(b c)\")\" '$(not run)' && x=$(d) # $(comment)\n"
    assert [c.argv for c in commands(instructions("FROM a\n" + script)[0][1], nested=True)] == [
        ("echo", "$(a $(b c))", "$(not run)"), ("x=$(d)",), ("a", "$(b c)"), ("b", "c"), ("d",)]
