"""Turning results into text, JSON or GitHub workflow annotations. Returns strings; cli.py prints them."""

from __future__ import annotations

import difflib
import json
import posixpath
from collections.abc import Iterable, Mapping
from pathlib import Path

from pinrepro import escape
from pinrepro.findings import Finding
from pinrepro.suppress import Suppressed


def findings_text(findings: Iterable[Finding]) -> str:
    # Paths and messages carry file names and image data: one finding is one line, whatever they hold.
    return "\n".join(finding_line(f) + f" [{escape.terminal(f.code)}]" for f in findings)


def finding_line(f: Finding) -> str:
    """``path:line: level: message`` for a terminal, every outside value escaped onto the one line."""
    return f"{escape.terminal(f.location())}: {f.level}: {escape.terminal(f.message)}"


def findings_json(findings: Iterable[Finding], exit_code: int, suppressed: Iterable[Suppressed] = ()) -> str:
    items = [
        {"path": f.path, "line": f.line, "level": f.level, "code": f.code, "message": f.message}
        for f in findings
    ]
    counts = {"error": 0, "warning": 0, "note": 0}
    for item in items:
        counts[str(item["level"])] += 1
    silenced = [s.to_json() for s in suppressed]
    counts["suppressed"] = len(silenced)
    return json.dumps({"findings": items, "exit_code": exit_code, "counts": counts, "suppressed": silenced},
                      indent=2, sort_keys=True)


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
