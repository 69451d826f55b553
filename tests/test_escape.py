"""pinrepro/escape.py: every destination's escaping, on the hostile strings issue #16 names."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pinrepro import escape

HOSTILE = [
    "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07",  # OSC 8 hyperlink
    "\x1b[2J\x1b[H",  # clear screen
    "12.4\rCUDA_VERSION=99",  # carriage return rewrites the line
    "1.0\n::error::forged",  # a second line that is a workflow command
    "\x9b31m",  # C1 CSI
    "a\u2028b\u2029c",  # Unicode line separators
    "admin\u202egnp.exe",  # bidi override
    "\x00\x07\x08\x7f",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_terminal_is_one_line_without_controls(text: str) -> None:
    out = escape.terminal(text)
    assert len(out.splitlines()) == 1
    assert not re.search("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]", out)


def test_terminal_shows_what_was_there() -> None:
    assert escape.terminal("a\x1b[31mb\nc\rd\te") == "a\\x1b[31mb\\nc\\rd\\te"
    assert escape.terminal("x\u202ey") == "x\\u202ey"
    assert escape.terminal("plain 12.4.1 ünïcode") == "plain 12.4.1 ünïcode"


def test_terminal_block_keeps_our_newlines_and_defuses_commands() -> None:
    block = "first\n::error::x\n  ::add-mask::y\nsafe :: middle\n\t##[set-env name=A]b\nlast\x1b[0m"
    assert escape.terminal_block(block).splitlines() == [
        "first", "\\::error::x", "  \\::add-mask::y", "safe :: middle", "\t#\\#[set-env name=A]b", "last\\x1b[0m",
    ]
    assert escape.terminal_block("::warning file=a::b", workflow_commands=True) == "::warning file=a::b"


@given(st.text())
def test_no_line_of_a_block_starts_a_workflow_command(text: str) -> None:
    for line in escape.terminal_block(text).split("\n"):
        assert not line.lstrip().startswith("::")
        assert "##[" not in line
        assert "\r" not in line and "\x1b" not in line


def test_workflow_data_and_property_as_github_documents() -> None:
    assert escape.workflow_data("100%\r\nx::y,z") == "100%25%0D%0Ax::y,z"
    assert escape.workflow_property("100%\r\nx::y,z") == "100%25%0D%0Ax%3A%3Ay%2Cz"
    assert escape.workflow_data("\x1b[31m") == "\\x1b[31m"


@given(st.text())
def test_workflow_values_stay_on_their_line(text: str) -> None:
    for escaped in (escape.workflow_data(text), escape.workflow_property(text)):
        assert "\n" not in escaped and "\r" not in escaped
    assert ":" not in escape.workflow_property(text) and "," not in escape.workflow_property(text)


@pytest.mark.parametrize(("text", "absent"), [
    ("</details><img src=x onerror=alert(1)>", ["<", ">"]),
    ("ping @octocat and @acme/security", ["@o", "@a"]),
    ("fixes #123 and GH-4 and acme/app#9", ["#1", "#9"]),
    ("[click](javascript:alert(1))", ["](", "javascript:"]),
    ("<javascript:alert(1)>", ["<", "javascript:"]),
    ("a | b", [" | "]),
    ("two\nlines", ["\n"]),
    ("&lt;script&gt;", ["&lt;script"]),
    ("**bold** _it_ `code` ~~gone~~", ["**", "`code`", "~~"]),
])
def test_markdown_text_is_plain_text(text: str, absent: list[str]) -> None:
    out = escape.markdown_text(text)
    for fragment in absent:
        assert fragment not in out, (fragment, out)


def test_markdown_text_leaves_ordinary_versions_alone() -> None:
    for version in ("12.4.1", "2.35-0ubuntu3.8", "7.81.0-1ubuntu1.18", "550.54.15", "2024-05-01"):
        assert escape.markdown_text(version) == version


def test_markdown_code_spans() -> None:
    assert escape.markdown_code("nvidia/cuda:12.4.1") == "`nvidia/cuda:12.4.1`"
    assert escape.markdown_code("a`b") == "``a`b``"
    assert escape.markdown_code("`x") == "`` `x ``"
    assert escape.markdown_code("a|b") == "`a\\|b`"
    assert escape.markdown_code("a\nb</details>") == "`a\\nb</details>`"


@given(st.text())
def test_markdown_values_never_break_a_table_row(text: str) -> None:
    for out in (escape.markdown_text(text), escape.markdown_code(text)):
        assert "\n" not in out and "\r" not in out
        assert re.search(r"(?<!\\)\|", out) is None
    assert "<" not in escape.markdown_text(text)
