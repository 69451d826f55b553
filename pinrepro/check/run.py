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
from pinrepro.findings import Finding, Report
from pinrepro.suppress import Suppressed, apply_ignores

_RULE_SETS: tuple[Callable[[CheckContext], Iterable[Finding]], ...] = (
    build.check, images.check, runtime.check, artifacts.check, hygiene.check,
)


@dataclass(frozen=True)
class CheckReport(Report):
    """check's findings (see :class:`pinrepro.findings.Report`), and notes that are no finding."""

    notes: tuple[str, ...] = ()  # information that is not a finding ("no deployment files: item 10 skipped")


def run_check(config: Config, *, paths: Sequence[Path] = (), strict: bool = False) -> CheckReport:
    settings = load(config)
    lock = lockfile.read(config.lock_path)
    project = load_dockerfiles(config)
    dockerfiles = _select(config, project, paths)
    ctx = CheckContext(config, settings, lock, tuple(view(d) for d in dockerfiles))
    findings = _verify(ctx, project, {d.path for d in dockerfiles}, bool(paths))
    # ADD <url> lines verify already reports (not locked, or locked but without --checksum) are its to report.
    verified_lines = {(f.path, f.line) for f in findings}
    for rule_set in _RULE_SETS:
        findings.extend(f for f in rule_set(ctx)
                        if f.code != "add-url-no-checksum" or (f.path, f.line) not in verified_lines)
    deploy_findings, notes = deploy.check(ctx, paths)
    findings.extend(deploy_findings)
    kept, suppressed = _suppress(ctx, sorted(set(_with_stages(ctx, findings)), key=Finding.sort_key))
    return CheckReport(tuple(_severity(kept, settings)), strict=strict, suppressed=tuple(suppressed),
                       notes=tuple(notes))


def _verify(ctx: CheckContext, project: list[Dockerfile], selected: set[str], narrowed: bool) -> list[Finding]:
    """verify's findings (items 2 and 3); with PATHs, only those about the chosen Dockerfiles or no Dockerfile."""
    dockerfile_paths = {d.path for d in project}
    return [f for f in images.verify_findings(ctx, project)
            if not narrowed or f.path in selected or f.path not in dockerfile_paths]


def _suppress(ctx: CheckContext, findings: list[Finding]) -> tuple[list[Finding], list[Suppressed]]:
    """``ignore`` and inline ``# pinrepro: ignore=<id> <reason>`` comments: verify's one mechanism.

    An inline comment sits above the instruction, while a finding may name a line inside it (the command in
    a long RUN): apply_ignores covers every line of the instruction, as the Dockerfile reader spans it.
    """
    texts = {checked.path: checked.dockerfile.text for checked in ctx.dockerfiles}
    line_texts: dict[str, str] = {}  # other files with findings (YAML, ...): a comment covers the line below it
    for path in {f.path for f in findings if f.path not in texts and f.line}:
        try:
            line_texts[path] = (ctx.root / path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    return apply_ignores(findings, ignore=ctx.settings.ignore, texts=texts, config_source=ctx.config.source,
                         line_texts=line_texts)


def _with_stages(ctx: CheckContext, findings: list[Finding]) -> list[Finding]:
    """verify's findings on a Dockerfile line name their build stage too, like check's own."""
    stage_at: dict[tuple[str, int], str] = {}
    for checked in ctx.dockerfiles:
        for stage in checked.stages:
            last = max((i.end_line for i in stage.instructions), default=stage.site.line)
            for line in range(stage.site.line, last + 1):
                stage_at[(checked.path, line)] = stage.label()
    return [replace(f, stage=stage_at.get((f.path, f.line or 0))) if f.stage is None and f.line else f
            for f in findings]


def _severity(findings: list[Finding], settings: CheckSettings) -> list[Finding]:
    """The ``severity`` overrides of [tool.pinrepro.check]."""
    return [replace(f, level=settings.severity[f.code]) if f.code in settings.severity else f for f in findings]


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
