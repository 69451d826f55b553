"""Turning results into text, JSON or GitHub workflow annotations. Returns strings; cli.py prints them.

Each result knows its JSON data (``to_json()``); the words people read are written here, so cli.py formats
nothing itself. The manifest and the refresh summary have their own renderers (manifest.py, summary.py).
"""

from __future__ import annotations

import difflib
import json
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pinrepro import escape
from pinrepro.findings import Finding, Report

if TYPE_CHECKING:
    # Annotations only: rendering a result never loads the code that computes it.
    from pinrepro.doctor import DoctorReport, GpuHost, ToolkitInfo
    from pinrepro.lock import LockOutcome
    from pinrepro.refresh import PullResult


def json_document(data: Mapping[str, Any]) -> str:
    """A command's ``--format json`` output: indented, keys sorted, so it reads and diffs well."""
    return json.dumps(data, indent=2, sort_keys=True)


def findings_text(findings: Iterable[Finding]) -> str:
    # Paths and messages carry file names and image data: one finding is one line, whatever they hold.
    return "\n".join(finding_line(f) + f" [{escape.terminal(f.code)}]" for f in findings)


def finding_line(f: Finding) -> str:
    """``path:line: level: message`` for a terminal, every outside value escaped onto the one line."""
    return f"{escape.terminal(f.location())}: {f.level}: {escape.terminal(f.message)}"


def verify_line(report: Report) -> str:
    """verify's last line on stderr: ``verify: ok``, or the counts (and how many were suppressed)."""
    # "ok" gets its colour in Output.info, after escaping (an escape sequence painted here would be defused).
    line = "verify: ok" if not report.findings else \
        f"verify: {len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    if report.suppressed:
        line += f" ({len(report.suppressed)} suppressed; --format json lists them)"
    return line


def findings_github(findings: Iterable[Finding], *, prefix: str = "") -> str:
    """Workflow commands GitHub turns into annotations on the file and line (docs: workflow-commands).

    GitHub reads ``file=`` from the repository root, while findings are relative to the project root: with
    ``-C services/api`` the caller passes ``prefix="services/api"`` so the annotation lands on the right file.
    """
    lines = []
    for f in findings:
        path = posixpath.normpath(posixpath.join(prefix, f.path)) if prefix else f.path
        # A whole-file finding (an edited lock, a stale entry) still needs a line, or GitHub shows it nowhere
        # in the diff: its first line.
        props = [f"file={_escape_property(path)}", f"line={f.line or 1}"]
        props.append(f"title={_escape_property(f'pinrepro {f.code}')}")
        level = "notice" if f.level == "note" else f.level  # GitHub's name for an annotation that is no problem
        lines.append(f"::{level} {','.join(props)}::{_escape_data(f.message)}")
    return "\n".join(lines)


def _escape_data(text: str) -> str:
    return escape.workflow_data(text)


def _escape_property(text: str) -> str:
    return escape.workflow_property(text)


def file_diff(root: Path, files: Mapping[Path, bytes], old_files: Mapping[Path, bytes | None]) -> str:
    """A unified diff of what a command would write, paths relative to the project root."""
    chunks = []
    for path in sorted(files):
        name = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        old = old_files.get(path)
        old_lines = old.decode("utf-8", "replace").splitlines(keepends=True) if old is not None else []
        new_lines = files[path].decode("utf-8", "replace").splitlines(keepends=True)
        name = escape.terminal(name)
        diff = difflib.unified_diff(old_lines, new_lines, f"a/{name}" if old is not None else "/dev/null",
                                    f"b/{name}")
        chunks.append("".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                              for line in diff))
    return "".join(chunks)


# -- lock ------------------------------------------------------------------------------------------------------


def lock_json(outcome: LockOutcome, root: Path, *, written: bool) -> str:
    return json_document(outcome.to_json(root, written=written))


def lock_text(outcome: LockOutcome) -> str:
    """lock's summary line: how much is locked, what went to the registry, which layers were recompiled."""
    summary = f"{len(outcome.new.images)} image(s), {len(outcome.new.layers)} requirement layer(s) locked"
    if outcome.resolved:
        summary += f"; resolved {len(outcome.resolved)} through the registry"
    if outcome.layers_compiled or outcome.layers_unchanged:
        summary += f"; recompiled: {', '.join(outcome.layers_compiled) or 'none'}"
        summary += f"; unchanged: {', '.join(outcome.layers_unchanged) or 'none'}"
    return summary


def internal_error(exc: BaseException) -> str:
    """The one line for an exception pinrepro did not expect (its traceback comes with -v)."""
    return f"internal error {type(exc).__name__}: {exc} - rerun with -v and report it"


def info_line(note: str) -> str:
    return f"info: {note}"


def wrote(names: Sequence[str]) -> str:
    return "wrote " + ", ".join(map(escape.terminal, names)) if names else "nothing changed"


def pull_text(pull: PullResult) -> str:
    """refresh's line about the pull request: what happened to it, on which branch, where it is."""
    where = f" {escape.terminal(pull.url)}" if pull.url else ""
    return f"pull request: {pull.action} (branch {pull.branch}){where}"


# -- doctor ----------------------------------------------------------------------------------------------------


def doctor_text(report: DoctorReport) -> str:
    """The host, its container toolkit, then one verdict line per locked image and platform (and CUDA wheel)."""
    # nvidia-smi's and nvidia-ctk's answers are quoted too: each stays on its line.
    lines = [f"host: {escape.terminal(host_text(report.host))}",
             f"host platform: {escape.terminal(report.host_platform)}",
             f"container toolkit: {escape.terminal(toolkit_text(report.toolkit))}"]
    if not report.verdicts:
        lines.append("no images are pinned in the lock")
    for verdict in (*report.verdicts, *report.wheels):
        # The reason quotes the lock's image data (CUDA versions, NVIDIA_REQUIRE_CUDA): one line each.
        lines.append(f"{verdict.status:<8} {escape.terminal(verdict.ref)}  {escape.terminal(verdict.platform)}: "
                     f"{escape.terminal(verdict.reason)}")
    if report.cannot_run:
        lines.append("some locked images cannot run on this host")
    return "\n".join(lines)


def host_text(host: GpuHost) -> str:
    if host.driver is None:
        return f"no usable NVIDIA driver: {host.problem or 'not found'}"
    text = f"NVIDIA driver {host.driver}"
    if host.cuda:
        text += f", supports CUDA up to {host.cuda}"
        if host.cuda_source == "driver table":
            text += " (from NVIDIA's driver table; nvidia-smi did not say)"
    else:
        text += ", newest supported CUDA unknown"
    if host.gpus:
        text += f"; GPUs: {', '.join(host.gpus)}"
    if host.brand:
        text += f" (brand {host.brand})"
    return text


def toolkit_text(toolkit: ToolkitInfo) -> str:
    if toolkit.installed:
        return f"NVIDIA Container Toolkit {toolkit.version or '(version unknown)'} (nvidia-ctk)"
    return f"NVIDIA Container Toolkit not found: {toolkit.problem or 'nvidia-ctk is not on PATH'}" \
           " - containers cannot use the GPU without it (or an equivalent runtime hook)"
