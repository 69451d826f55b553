"""The `pinrepro` console script (``[project.scripts]``): runs the click group, then ends the process at once."""

from __future__ import annotations

import os
import sys

from pinrepro.cli import cli


def main() -> None:
    """The console script. Once the command is done, the process ends without the interpreter's teardown: joining
    the worker pools' idle threads and freeing every module cost a `lock` tens of milliseconds (issue #15); every
    file pinrepro writes is closed by then, and what is left is flushed here."""
    try:
        cli(prog_name="pinrepro")
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            raise  # a message to print: the interpreter's own way
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        sys.exit(code)  # a closed pipe: the interpreter reports it as it always did
    os._exit(code)
