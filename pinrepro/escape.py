"""Neutralising text that came from outside for the place it goes to (issue #16).

Image labels and ENV values, ``created``, dpkg package names and versions, registry and GitHub error texts, file
and directory names: none of them is pinrepro's, and each destination has its own way of being fooled by them.

- A terminal runs escape sequences (ESC, BEL, CSI, OSC 8 links) and a CR or newline lets a value forge a line of
  its own: :func:`terminal` renders every control character visibly, :func:`terminal_block` does the same for a
  whole block pinrepro composed, keeping only its own newlines and tabs.
- A GitHub Actions runner treats any line of a step's output that starts with ``::`` (after leading white space)
  as a workflow command, and ``##[`` as the older form: :func:`terminal_block` defuses both, and
  :func:`workflow_data` / :func:`workflow_property` escape what goes inside pinrepro's own annotations the way
  GitHub documents (``%``, CR, LF; and ``:`` and ``,`` in properties).
- A pull request body is Markdown that GitHub renders with raw HTML, mentions (``@user`` notifies), issue
  references (``#123``) and links: :func:`markdown_text` makes a value plain text, :func:`markdown_code` puts it
  in a code span (where GitHub links and mentions nothing) - both safe inside a table cell.

Every function is pure and total: any string in, a string out.
"""

from __future__ import annotations

import re
import unicodedata

# C0 controls, DEL, C1 controls; the Unicode line and paragraph separators; bidirectional embeddings,
# overrides and isolates (they reorder what a reviewer reads, "Trojan Source").
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_IN_BLOCK = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# The runner's command forms: "::name ...::data" at the start of a line (after white space), "##[name]" anywhere.
_WORKFLOW_COMMAND = re.compile(r"^(\s*):(?=:)", re.MULTILINE)
_OLD_WORKFLOW_COMMAND = "##["


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def terminal(text: str) -> str:
    """``text`` as one line a terminal shows as it is: every control character written as ``\\xNN``/``\\n``, and
    no ``##[`` (the runner's older command form, which it finds anywhere in a line)."""
    return _UNSAFE.sub(_visible, text).replace(_OLD_WORKFLOW_COMMAND, "#\\#[")


def terminal_block(text: str, *, workflow_commands: bool = False) -> str:
    """A block pinrepro composed, made safe to print: its newlines and tabs stay, any other control character is
    shown escaped, and no line can start a GitHub workflow command (unless ``workflow_commands``: the block is
    pinrepro's own annotations, whose values were escaped with :func:`workflow_data` / :func:`workflow_property`).

    This is the last line of defence in cli.py's output; values are escaped where they are formatted as well.
    """
    text = _UNSAFE_IN_BLOCK.sub(_visible, text)
    return text if workflow_commands else defuse_workflow_commands(text)


def defuse_workflow_commands(text: str) -> str:
    """``text`` with a backslash before any ``::`` that starts a line and inside any ``##[``, so a workflow
    runner reading it as a step's output finds no command in it (in Markdown the backslash is not shown)."""
    return _WORKFLOW_COMMAND.sub(r"\1\\:", text).replace(_OLD_WORKFLOW_COMMAND, "#\\#[")


# -- GitHub workflow commands (docs: "Workflow commands for GitHub Actions"; actions/toolkit command.ts) ---------


def workflow_data(text: str) -> str:
    """The message part of ``::error ...::message``: ``%``, CR and LF escaped, ``%`` first; other control
    characters shown escaped so the log line cannot be rewritten either."""
    escaped = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return _UNSAFE.sub(_visible, escaped)


def workflow_property(text: str) -> str:
    """A property value (``file=``, ``title=``): the message escaping plus ``:`` and ``,``."""
    return workflow_data(text).replace(":", "%3A").replace(",", "%2C")


# -- GitHub-flavoured Markdown --------------------------------------------------------------------------------

# Backslash-escaped: everything that starts emphasis, code, links, images, strikethrough, tables and autolinks.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()!|~])")
# A zero-width space after '@' and '#': GitHub's mention and reference filters work on the rendered text, where
# a backslash escape is already gone, so the link must be broken in the text itself.
_ZERO_WIDTH_SPACE = "\u200b"


def markdown_text(text: str) -> str:
    """``text`` as plain text in a Markdown paragraph or table cell: no HTML (``<`` ``>`` ``&`` become
    entities, so no ``</details>``, no ``<img>``, no ``<javascript:...>`` autolink), no emphasis or link syntax,
    no ``@mention`` or ``#123`` reference, no line break, and ``|`` cannot end a table cell."""
    text = _one_line(text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)
    text = text.replace("@", "@" + _ZERO_WIDTH_SPACE).replace("#", "#" + _ZERO_WIDTH_SPACE)
    # A ':' right after a scheme-like word would still make GitHub autolink "www." and "http://" text; that is
    # a visible, harmless link, but "javascript:" must not look like one.
    return _defuse_schemes(text)


def markdown_code(text: str) -> str:
    """``text`` as an inline code span: shown literally, never linked or mentioned; safe in a table cell."""
    text = _one_line(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    # Inside a table GFM splits cells on '|' even within code spans; '\|' is the documented way to keep one.
    text = text.replace("|", "\\|")
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _one_line(text: str) -> str:
    # Controls shown escaped (a newline would end a table row or start a block); NFC so look-alike
    # decompositions render as what they are.
    return _UNSAFE.sub(_visible, unicodedata.normalize("NFC", text))


_SCHEME = re.compile(r"(?i)\b(javascript|vbscript|data|file):")


def _defuse_schemes(text: str) -> str:
    return _SCHEME.sub(lambda m: m.group(1) + _ZERO_WIDTH_SPACE + ":", text)
