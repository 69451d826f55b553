"""`pinrepro check`: the ML production checklist, offline. Reads the project, returns findings; prints nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pinrepro import lockfile
from pinrepro.check import artifacts, build, deploy, hygiene, images, runtime
from pinrepro.check.model import CheckContext, view
from pinrepro.check.settings import CheckSettings, load
from pinrepro.config import Config
from pinrepro.discovery import load_dockerfiles, relative
from pinrepro.dockerfile import Dockerfile, parse
from pinrepro.errors import ConfigError, DockerfileError
from pinrepro.findings import Finding

_RULE_SETS: tuple[Callable[[CheckContext], Iterable[Finding]], ...] = (
    build.check, images.check, runtime.check, artifacts.check, hygiene.check,
)


@dataclass(frozen=True)
class CheckReport:
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()  # information that is not a finding ("no deployment files: item 10 skipped")
    strict: bool = False

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "warning")

    @property
    def exit_code(self) -> int:
        return 1 if self.errors or (self.strict and self.warnings) else 0


def run_check(config: Config, *, paths: Sequence[Path] = (), strict: bool = False) -> CheckReport:
    settings = load(config)
    lock = lockfile.read(config.lock_path)
    dockerfiles = _select(config, load_dockerfiles(config), paths)
    ctx = CheckContext(config, settings, lock, tuple(view(d) for d in dockerfiles))
    findings = _verify(ctx, {d.path for d in dockerfiles}, bool(paths))
    for rule_set in _RULE_SETS:
        findings.extend(rule_set(ctx))
    deploy_findings, notes = deploy.check(ctx, paths)
    findings.extend(deploy_findings)
    kept = _settle(findings, settings)
    return CheckReport(tuple(sorted(set(kept), key=Finding.sort_key)), tuple(notes), strict)


def _verify(ctx: CheckContext, selected: set[str], narrowed: bool) -> list[Finding]:
    """verify's findings (items 2 and 3); with PATHs, only those about the chosen Dockerfiles or no Dockerfile."""
    dockerfile_paths = {d.path for d in load_dockerfiles(ctx.config)} if narrowed else set()
    return [f for f in images.verify_findings(ctx)
            if not narrowed or f.path in selected or f.path not in dockerfile_paths]


def _settle(findings: list[Finding], settings: CheckSettings) -> list[Finding]:
    """Apply ``ignore`` and the ``severity`` overrides of [tool.pinrepro.check]."""
    kept = []
    for item in findings:
        if item.code in settings.ignore:
            continue
        level = settings.severity.get(item.code)
        kept.append(replace(item, level=level) if level else item)
    return kept


def _select(config: Config, found: list[Dockerfile], paths: Sequence[Path]) -> list[Dockerfile]:
    """The Dockerfiles to check: all of the project's, or those named by PATHs (files, or directories)."""
    if not paths:
        return found
    chosen: dict[str, Dockerfile] = {}
    for path in paths:
        absolute = path.resolve()
        if not absolute.exists():
            raise ConfigError(f"{path} does not exist", fix="pass Dockerfiles or directories of the project")
        if not absolute.is_relative_to(config.root):
            raise ConfigError(f"{path} is outside the project {config.root}",
                              fix="pass paths inside the project, or choose the project with -C")
        name = relative(config, absolute) if absolute != config.root else "."
        if absolute.is_dir():
            for dockerfile in found:
                if name == "." or dockerfile.path.startswith(name + "/"):
                    chosen[dockerfile.path] = dockerfile
            continue
        match = next((d for d in found if d.path == name), None)
        chosen[name] = match if match is not None else _read(absolute, name)
    return [chosen[name] for name in sorted(chosen)]


def _read(path: Path, name: str) -> Dockerfile:
    try:
        return parse(path.read_bytes().decode("utf-8"), name)
    except OSError as exc:
        raise DockerfileError(f"cannot read it: {exc.strerror}", where=name) from None
    except UnicodeDecodeError:
        raise DockerfileError("is not UTF-8 text", where=name, fix="save the Dockerfile as UTF-8") from None
