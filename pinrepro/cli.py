"""Command line: parse options, call one function, render its result, map errors to exit codes.

Nothing else in pinrepro prints or exits. Each command imports its module when it runs, so ``--help`` and
``--version`` do not pay for requests, the resolvers and the inventory.

Exit codes: 0 ok, 1 verify found drift/violations (and ``lock --check`` found something to change), 2 an
error - printed as one line, the traceback only with -v.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from pinrepro import __version__, escape, lockfile, render, terminal
from pinrepro import config as config_module
from pinrepro.config import Config
from pinrepro.errors import LockfileError, PinreproError
from pinrepro.helptext import EPILOGS
from pinrepro.lockfile import Lock
from pinrepro.terminal import Output

F = TypeVar("F", bound=Callable[..., Any])


def common_options(func: F) -> F:
    """-C, -v and -q on every command, so they can follow the command name."""
    func = click.option("-q", "--quiet", is_flag=True, help="Print only results and errors.")(func)
    func = click.option("-v", "--verbose", is_flag=True, help="More detail; tracebacks on errors.")(func)
    # No click checks on -C: config.load says in one line what is wrong with it (missing, not a folder).
    func = click.option("-C", "root", type=click.Path(path_type=Path), default=None,
                        help=_ROOT_HELP)(func)
    return func


def _print_traceback() -> None:
    # The exception's text can quote a registry's or GitHub's error body: escaped like every other line.
    click.echo(escape.terminal_block(traceback.format_exc().rstrip("\n")), err=True)


def handles_errors(func: F) -> F:
    """Map PinreproError to its one line and exit code 2; unexpected errors too, without a traceback unless -v."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verbose = bool(kwargs.get("verbose"))
        try:
            return func(*args, **kwargs)
        except PinreproError as exc:
            if verbose:
                _print_traceback()
            terminal.error(exc.line())
            sys.exit(exc.exit_code)
        except KeyboardInterrupt as exc:
            from pinrepro.journal import InterruptedAfterWrite

            if isinstance(exc, InterruptedAfterWrite):
                click.echo("interrupted after the files were written (the write was let finish)", err=True)
            else:
                click.echo("interrupted; no file was changed", err=True)
            # Worker threads may sit in a slow read: do not wait for them at interpreter exit.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:
            if verbose:
                _print_traceback()
            terminal.error(render.internal_error(exc))
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def load_config(root: Path | None) -> Config:
    config = config_module.load(project_root(root))
    from pinrepro import journal

    # Finish or undo what a killed run left behind before reading anything (journal.py says how).
    try:
        with journal.project_lock(config.root):
            said = journal.recover(config.root)
    except journal.ProjectBusy:
        said = None  # another run holds the project: it is not interrupted, leave its files alone
    if said:
        click.echo(f"pinrepro: {said}", err=True)
    return config


def project_root(root: Path | None) -> Path:
    """-C after the command, else -C before it (``pinrepro -C svc verify``), else found upward from the cwd."""
    if root is None:
        context = click.get_current_context(silent=True)
        root = context.find_root().params.get("root") if context is not None else None
    if root is not None:
        return Path(root)
    return config_module.find_project_root(Path.cwd())


_ROOT_HELP = ("Project root (before or after the command). Default: the nearest directory upward holding "
              "pinrepro.toml, a pyproject.toml with [tool.pinrepro], or pinrepro.lock; else the current one.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pinrepro")
@click.option("-C", "root", type=click.Path(path_type=Path), default=None, help=_ROOT_HELP)
def cli(root: Path | None) -> None:
    """Pin base images by digest, lock layered Python requirements, record what is inside each image."""


@cli.command(epilog=EPILOGS["lock"])
@common_options
@click.option("--upgrade", is_flag=True, help="Re-resolve every tag and upgrade every requirement layer.")
@click.option("--upgrade-package", "upgrade_packages", multiple=True, metavar="NAME",
              help="Move only this Python package (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--check", is_flag=True, help="Exit 1 if lock would change anything; write nothing.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@handles_errors
def lock(root: Path | None, verbose: bool, quiet: bool, upgrade: bool, upgrade_packages: tuple[str, ...],
         dry_run: bool, check: bool, fmt: str) -> None:
    """Pin what is not pinned yet or whose input changed; keep every other pin."""
    from pinrepro.lock import LockServices, Upgrade, run_lock

    out = Output(verbose, quiet)
    config = load_config(root)
    runner = None
    if config.layers:  # the resolvers (packaging) load only for a project with requirement layers
        from pinrepro.resolvers import ResolverRunner

        runner = ResolverRunner(echo=out.stream if verbose else None)
    services = LockServices(resolve_progress=out.progress("resolving images"),
                            scan_progress=out.progress("reading image contents"), runner=runner,
                            layer_progress=out.layer_progress())
    outcome = run_lock(config, upgrade=Upgrade.of(upgrade, upgrade_packages), dry_run=dry_run or check,
                       services=services)
    for finding in outcome.findings:
        out.info(render.finding_line(finding))
    if fmt == "json":
        out.result(render.lock_json(outcome, config.root, written=not (dry_run or check)))
    elif dry_run or check:
        out.result(render.file_diff(config.root, outcome.files, outcome.old_files).rstrip("\n"))
        if not outcome.changed:
            out.info("nothing to change")
    else:
        out.info(render.lock_text(outcome))
        out.info(render.wrote(outcome.changed_files(config.root)))
    if check and outcome.changed:
        sys.exit(1)


@cli.command(epilog=EPILOGS["verify"])
@common_options
@click.option("--online", is_flag=True, help="Also check every pinned digest is still pullable and tags did not move.")
@click.option("--strict", is_flag=True, help="Warnings fail too (exit 1).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text", show_default=True)
@handles_errors
def verify(root: Path | None, verbose: bool, quiet: bool, online: bool, strict: bool, fmt: str) -> None:
    """Check that Dockerfiles, requirement locks and pinrepro.lock agree and everything is pinned."""
    from pinrepro.verify import run_verify

    out = Output(verbose, quiet)
    config = load_config(root)
    report = run_verify(config, online=online, strict=strict)
    if fmt == "json":
        out.result(render.json_document(report.to_json()))
    elif fmt == "github":
        out.result(render.findings_github(report.findings, prefix=_workspace_prefix(config.root)),
                   workflow_commands=True)
    else:
        out.result(render.findings_text(report.findings), levels=True)
        out.info(render.verify_line(report))
    sys.exit(report.exit_code)


@cli.command(epilog=EPILOGS["check"])
@common_options
@click.option("--strict", is_flag=True, help="Warnings fail too (exit 1).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github", "sarif"]), default="text",
              show_default=True)
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@handles_errors
def check(root: Path | None, verbose: bool, quiet: bool, strict: bool, fmt: str, paths: tuple[Path, ...]) -> None:
    """The ML production checklist: multi-stage builds, pins, drivers, user, health check, weights, logs, limits.

    PATHS narrow it to some Dockerfiles or directories of the project (default: all of them). Offline.
    """
    from pinrepro.check import output
    from pinrepro.check.run import run_check

    out = Output(verbose, quiet)
    config = load_config(root)
    report = run_check(config, paths=paths, strict=strict)
    prefix = _workspace_prefix(config.root)
    if fmt == "json":
        out.result(output.to_json(report))
    elif fmt == "github":
        out.result(output.github(report, prefix=prefix), workflow_commands=True)
    elif fmt == "sarif":
        out.result(output.sarif(report, prefix=prefix))
    else:
        out.result(output.text(report), levels=True)
    if fmt != "json" and fmt != "sarif":
        for note in report.notes:
            out.info(render.info_line(note))
    if fmt == "text":
        out.info(output.summary(report))
    sys.exit(report.exit_code)


@cli.command(epilog=EPILOGS["refresh"])
@common_options
@click.option("--open-pr", is_flag=True, help="Commit on the bot branch, push it, and open or update one pull request.")
@click.option("--upgrade-package", "upgrade_packages", multiple=True, metavar="NAME",
              help="Move only this Python package (repeatable); images are re-resolved all the same.")
@click.option("--dry-run", is_flag=True, help="Show the summary; write, commit and push nothing.")
@click.option("--token-env", default="GITHUB_TOKEN", show_default=True, metavar="NAME",
              help="Environment variable holding the GitHub token.")
@click.option("--branch", default=None, help="Bot branch (default: [refresh] branch, or pinrepro/refresh).")
@click.option("--base", default=None, help="Branch the pull request targets (default: [refresh] base, else the "
                                            "checked-out branch, else the repository's default branch).")
@click.option("--format", "fmt", type=click.Choice(["markdown", "json"]), default="markdown", show_default=True)
@click.option("--allow-uncommitted", is_flag=True,
              help="With --open-pr: also publish uncommitted edits in the files pinrepro changes (refused otherwise).")
@handles_errors
def refresh(root: Path | None, verbose: bool, quiet: bool, open_pr: bool, upgrade_packages: tuple[str, ...],
            dry_run: bool, token_env: str, branch: str | None, base: str | None, fmt: str,
            allow_uncommitted: bool) -> None:
    """Move every pin forward and summarise what changed; with --open-pr, as one pull request."""
    from pinrepro import summary as summary_module
    from pinrepro.refresh import load_settings, override
    from pinrepro.refresh import refresh as run_refresh

    out = Output(verbose, quiet)
    config = load_config(root)
    settings = override(load_settings(config), branch=branch, base=base)
    result = run_refresh(config, open_pr=open_pr, settings=settings, upgrade_packages=upgrade_packages,
                         dry_run=dry_run, token_env=token_env, allow_uncommitted=allow_uncommitted)
    for finding in result.findings:
        out.info(render.finding_line(finding))
    out.result(summary_module.render_json(result.summary) if fmt == "json" else result.markdown)
    if result.pull is not None:
        out.info(render.pull_text(result.pull))


def _workspace_prefix(project_root: Path) -> str:
    """The project root relative to the repository GitHub annotates (GITHUB_WORKSPACE, else the cwd)."""
    workspace = Path(os.environ.get("GITHUB_WORKSPACE") or Path.cwd()).resolve()
    try:
        relative = project_root.resolve().relative_to(workspace).as_posix()
    except ValueError:
        return ""  # outside the workspace: annotations cannot point into it anyway
    return "" if relative == "." else relative


def read_lock(config: Config) -> Lock:
    lock = lockfile.read(config.lock_path)
    if lock is None:
        raise LockfileError("does not exist", where=config.lockfile, fix="run `pinrepro lock` first")
    return lock


@cli.command(epilog=EPILOGS["manifest"])
@common_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--packages", is_flag=True, help="List every apt package (text format).")
@click.option("--diff", "old_lock", metavar="OLD",
              help="Show what changed since OLD: a lock file, or a git revision whose pinrepro.lock is read "
                   "(origin/main, HEAD~1, v1.2).")
@click.option("--exit-code", is_flag=True, help="With --diff: exit 1 when something changed, like git diff.")
@handles_errors
def manifest(root: Path | None, verbose: bool, quiet: bool, fmt: str, packages: bool, old_lock: str | None,
             exit_code: bool) -> None:
    """Print what is inside each pinned image: OS, Python, CUDA, cuDNN, NCCL, minimum driver, apt packages."""
    from pinrepro import lockdiff
    from pinrepro import manifest as manifest_module

    out = Output(verbose, quiet)
    config = load_config(root)
    lock = read_lock(config)
    if old_lock is not None:
        change = lockdiff.diff(_old_lock(config, old_lock), lock)
        if fmt == "json":
            out.result(render.json_document(change.to_json()))
        else:
            out.result(manifest_module.render_diff_text(change))
        if exit_code and not change.empty:
            sys.exit(1)
        return
    if exit_code:
        raise click.UsageError("--exit-code needs --diff")
    if fmt == "json":
        out.result(render.json_document(manifest_module.render_json(lock)))
    else:
        out.result(manifest_module.render_text(lock, packages=packages))


def _old_lock(config: Config, old: str) -> Lock:
    """``--diff OLD``: a lock file if one exists at that path (as git prefers a path), else a git revision."""
    if Path(old).is_file():
        before = lockfile.read(Path(old))
        assert before is not None  # the file exists
        return before
    from pinrepro.git import Git

    git = Git(config.root)
    path = git.relative(config.lock_path)
    data = git.show(old, path)
    if data is None:
        return Lock()  # the lock did not exist at that revision: everything is new since
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise LockfileError("is not UTF-8 text", where=f"{old}:{path}", fix="restore it from version control") from None
    return lockfile.loads(text, where=f"{old}:{path}")


@cli.command(epilog=EPILOGS["doctor"])
@common_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@handles_errors
def doctor(root: Path | None, verbose: bool, quiet: bool, fmt: str) -> None:
    """Check this host against the lock: NVIDIA driver vs the images' CUDA needs, container toolkit."""
    from pinrepro.doctor import doctor as run_doctor
    from pinrepro.doctor import requirement_locks

    out = Output(verbose, quiet)
    config = load_config(root)
    report = run_doctor(read_lock(config), requirement_locks=requirement_locks(config))
    if fmt == "json":
        out.result(render.json_document(report.to_json()))
    else:
        out.result(render.doctor_text(report))
    sys.exit(1 if report.cannot_run else 0)


@cli.command(epilog=EPILOGS["policy"])
@common_options
@click.option("-o", "--output", default=None, metavar="FILE",
              help="Where to write it ('-' for stdout; default: [policy] file, or pinrepro.policy.json).")
@click.option("--deny-unlocked/--no-deny-unlocked", default=None,
              help="Also deny every image the lock does not pin, so an unlocked --build-arg fails the build.")
@click.option("--dry-run", is_flag=True, help="Show the diff of the policy file; write nothing.")
@handles_errors
def policy(root: Path | None, verbose: bool, quiet: bool, output: str | None, deny_unlocked: bool | None,
           dry_run: bool) -> None:
    """Write a BuildKit source policy from the lock: every locked image converted to its digest."""
    from pinrepro import policy as policy_module
    from pinrepro.fsutil import write_atomically

    out = Output(verbose, quiet)
    config = load_config(root)
    settings = policy_module.load_settings(config)
    deny = settings.deny_unlocked if deny_unlocked is None else deny_unlocked
    text = policy_module.render(policy_module.build_policy(read_lock(config), deny_unlocked=deny))
    if output == "-":
        out.result(text.rstrip("\n"))
        return
    target = config.root / (output or settings.file)
    if output is None:
        from pinrepro.lockflow.files import inside_project

        # As lock: a configured path (the repository's, not the user's -o) names a file inside the project only.
        inside_project(config, target)
    policy_module.refuse_foreign(target, output or settings.file, "-o" if output else f"{config.source} policy")
    old = target.read_bytes() if target.is_file() else None
    if dry_run:
        diff = render.file_diff(config.root, {target: text.encode("utf-8")}, {target: old})
        out.result(diff.rstrip("\n"))
        return
    write_atomically({target: text.encode("utf-8")})
    out.info(render.wrote([output or settings.file]))


@cli.command(epilog=EPILOGS["completion"])
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL (click's mechanism: _PINREPRO_COMPLETE)."""
    from click.shell_completion import get_completion_class

    completion_class = get_completion_class(shell)
    assert completion_class is not None  # click knows the three shells of the Choice
    click.echo(completion_class(cli, {}, "pinrepro", "_PINREPRO_COMPLETE").source())

