"""Colour on a terminal: errors red, warnings yellow, notes cyan, "ok" green - and none in logs and pipes; and
:class:`Output`, where a command's words go (results to stdout, progress and errors to stderr).

``NO_COLOR`` (any non-empty value, no-color.org) turns colour off; otherwise ``FORCE_COLOR`` (non-empty, not
"0") turns it on where the stream is not a terminal, as CI log viewers that render ANSI expect; otherwise a
stream gets colour only when it is a terminal. The same order as CPython's own coloured tracebacks.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable

import click

from pinrepro import escape

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


def error(message: str) -> None:
    """``error: message`` on stderr, the message on one line whatever it holds (it may quote a server)."""
    echo(f"{paint('error', 'error')}: {escape.terminal(message)}", err=True)


class Output:
    """Where a command's words go: results to stdout, progress and errors to stderr."""

    def __init__(self, verbose: bool, quiet: bool) -> None:
        self.verbose = verbose
        self.quiet = quiet

    # Everything printed goes through escape.terminal_block: a label, a file name or an error body from outside
    # can neither drive the terminal nor start a workflow command in a CI log (issue #16).
    def result(self, text: str, *, workflow_commands: bool = False, levels: bool = False) -> None:
        """``levels``: the text is finding lines, whose level words get colour on a terminal."""
        if text:
            text = escape.terminal_block(text, workflow_commands=workflow_commands)
            echo(paint_levels(text) if levels else text)

    def info(self, text: str) -> None:
        if not self.quiet:
            echo(paint_levels(escape.terminal_block(text)), err=True)

    def progress(self, label: str) -> Callable[[int, int], None]:
        """A progress line ``label done/total``, redrawn in place - only on a terminal, so CI logs stay clean."""

        def show(done: int, total: int) -> None:
            if not self.quiet and sys.stderr.isatty():
                click.echo(f"\r{label} {done}/{total}", err=True, nl=done >= total)

        return show

    def layer_progress(self) -> Callable[[str, str, str, float | None], None]:
        """One line per requirement layer being compiled: the resolver's name, then its elapsed time."""

        def show(layer: str, platform: str, resolver: str, seconds: float | None) -> None:
            if self.quiet or not _terminal():
                return
            label = f"compiling layer '{layer}' for {platform} with {resolver}"
            if seconds is None:
                click.echo(f"{label} ...", err=True, nl=self.verbose)
            else:
                click.echo(f"{'' if self.verbose else chr(13)}{label}: {seconds:.1f} s", err=True)

        return show

    def stream(self, line: str) -> None:
        """A line of the resolver's own output (-v)."""
        click.echo(f"  | {line}", err=True)


def _terminal() -> bool:
    return sys.stderr.isatty()
