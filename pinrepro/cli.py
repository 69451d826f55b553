"""Command line: parse options, call one function, render its result, map errors to exit codes.

Nothing else in pinrepro prints or exits. Exit codes: 0 ok, 1 verify found drift/violations (and
``lock --check`` found something to change), 2 an error - printed as one line, the traceback only with -v.
"""

from __future__ import annotations

import functools
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from pinrepro import __version__, render
from pinrepro import config as config_module
from pinrepro.config import Config
from pinrepro.errors import PinreproError

F = TypeVar("F", bound=Callable[..., Any])


class Output:
    """Where a command's words go: results to stdout, progress and errors to stderr."""

    def __init__(self, verbose: bool, quiet: bool) -> None:
        self.verbose = verbose
        self.quiet = quiet
        self._progress_shown = False

    def result(self, text: str) -> None:
        if text:
            click.echo(text)

    def info(self, text: str) -> None:
        if not self.quiet:
            click.echo(text, err=True)

    def progress(self, done: int, total: int) -> None:
        # Only on a terminal: a CI log should not fill with carriage returns.
        if self.quiet or not sys.stderr.isatty():
            return
        click.echo(f"\rresolving images {done}/{total}", err=True, nl=done >= total)
        self._progress_shown = done < total


def common_options(func: F) -> F:
    """-C, -v and -q on every command, so they can follow the command name."""
    func = click.option("-q", "--quiet", is_flag=True, help="Print only results and errors.")(func)
    func = click.option("-v", "--verbose", is_flag=True, help="More detail; tracebacks on errors.")(func)
    func = click.option("-C", "root", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
                        show_default=True, help="Project root.")(func)
    return func


def handles_errors(func: F) -> F:
    """Map PinreproError to its one line and exit code 2; unexpected errors too, without a traceback unless -v."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verbose = bool(kwargs.get("verbose"))
        try:
            return func(*args, **kwargs)
        except PinreproError as exc:
            if verbose:
                traceback.print_exc()
            click.echo(f"error: {exc.line()}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted; no file was changed unless reported above", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:
            if verbose:
                traceback.print_exc()
            click.echo(f"error: internal error {type(exc).__name__}: {exc} - rerun with -v and report it",
                       err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def load_config(root: Path) -> Config:
    return config_module.load(root)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pinrepro")
def cli() -> None:
    """Pin base images by digest, lock layered Python requirements, record what is inside each image."""


@cli.command()
@common_options
@click.option("--upgrade", is_flag=True, help="Re-resolve every tag and upgrade every requirement layer.")
@click.option("--upgrade-package", "upgrade_packages", multiple=True, metavar="NAME",
              help="Move only this Python package (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--check", is_flag=True, help="Exit 1 if lock would change anything; write nothing.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@handles_errors
def lock(root: Path, verbose: bool, quiet: bool, upgrade: bool, upgrade_packages: tuple[str, ...],
         dry_run: bool, check: bool, fmt: str) -> None:
    """Pin what is not pinned yet or whose input changed; keep every other pin."""
    from pinrepro.lock import run_lock

    out = Output(verbose, quiet)
    config = load_config(root)
    outcome = run_lock(config, upgrade=upgrade, upgrade_packages=upgrade_packages,
                       dry_run=dry_run or check, progress=out.progress)
    for finding in outcome.findings:
        out.info(f"{finding.location()}: {finding.level}: {finding.message}")
    names = sorted(p.relative_to(config.root).as_posix() for p in outcome.files)
    if fmt == "json":
        out.result(json.dumps({
            "changed": outcome.changed, "files": names, "resolved": list(outcome.resolved),
            "images": {k: v.digest for k, v in outcome.new.images.items()},
            "written": outcome.changed and not (dry_run or check),
        }, indent=2, sort_keys=True))
    elif dry_run or check:
        out.result(render.file_diff(config.root, outcome.files, outcome.old_files).rstrip("\n"))
        if not outcome.changed:
            out.info("nothing to change")
    else:
        summary = f"{len(outcome.new.images)} image(s), {len(outcome.new.layers)} requirement layer(s) locked"
        if outcome.resolved:
            summary += f"; resolved {len(outcome.resolved)} through the registry"
        out.info(summary)
        out.info("wrote " + ", ".join(names) if names else "nothing changed")
    if check and outcome.changed:
        sys.exit(1)


@cli.command()
@common_options
@click.option("--online", is_flag=True, help="Also check every pinned digest is still pullable and tags did not move.")
@click.option("--strict", is_flag=True, help="Warnings fail too (exit 1).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text", show_default=True)
@handles_errors
def verify(root: Path, verbose: bool, quiet: bool, online: bool, strict: bool, fmt: str) -> None:
    """Check that Dockerfiles, requirement locks and pinrepro.lock agree and everything is pinned."""
    from pinrepro.verify import run_verify

    out = Output(verbose, quiet)
    report = run_verify(load_config(root), online=online, strict=strict)
    if fmt == "json":
        out.result(render.findings_json(report.findings, report.exit_code))
    elif fmt == "github":
        out.result(render.findings_github(report.findings))
    else:
        out.result(render.findings_text(report.findings))
        errors, warnings = len(report.errors), len(report.warnings)
        out.info("verify: ok" if not report.findings else f"verify: {errors} error(s), {warnings} warning(s)")
    sys.exit(report.exit_code)


def main() -> None:
    cli()
