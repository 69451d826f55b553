"""Colour on a terminal: errors red, warnings yellow, notes cyan, "ok" green - and none in logs and pipes.

``NO_COLOR`` (any non-empty value, no-color.org) turns colour off; otherwise ``FORCE_COLOR`` (non-empty, not
"0") turns it on where the stream is not a terminal, as CI log viewers that render ANSI expect; otherwise a
stream gets colour only when it is a terminal. The same order as CPython's own coloured tracebacks.
"""

from __future__ import annotations

import os
import re
import sys

import click

_STYLES: dict[str, dict[str, object]] = {
    "error": {"fg": "red", "bold": True},
    "warning": {"fg": "yellow", "bold": True},
    "note": {"fg": "cyan"},
    "ok": {"fg": "green", "bold": True},
}
# "path:line: level:" at the start of a finding line, or "error:" alone.
_LEVEL = re.compile(r"^((?:[^\s:][^:]*:(?:\d+:)? )?)(error|warning|note):")
# "verify: ok" and the like: a command's summary line that found nothing.
_OK = re.compile(r"^([a-z]+: )(ok)$")


def use_colour(err: bool) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR", "") not in ("", "0"):
        return True
    stream = sys.stderr if err else sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def paint(text: str, style: str) -> str:
    return click.style(text, **_STYLES[style])  # type: ignore[arg-type]


def paint_levels(text: str) -> str:
    """Colour the level word of each finding line (``Dockerfile:3: error: ...``)."""
    return "\n".join(_OK.sub(lambda m: m[1] + paint(m[2], "ok"), _LEVEL.sub(
        lambda m: m[1] + paint(m[2], m[2]) + ":", line, count=1), count=1) for line in text.split("\n"))


def echo(text: str, *, err: bool = False) -> None:
    """click.echo with the colour decision above (click strips the styles when ``color`` is False)."""
    click.echo(text, err=err, color=use_colour(err))
