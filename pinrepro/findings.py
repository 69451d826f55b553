"""What verify (and lock's checks) report: one finding per problem, with the file and line to show it at."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pinrepro.suppress import Suppressed  # suppress builds on Finding: imported for annotations only

# "note": something lock did that the user should know about; never fails a command.
Level = Literal["error", "warning", "note"]


@dataclass(frozen=True)
class Finding:
    """One problem. ``error`` findings make verify exit 1; ``warning`` ones only with ``--strict``; ``note`` never."""

    path: str
    line: int | None
    level: Level
    code: str  # short stable identifier, e.g. "unpinned", "drift", "stale-lock-entry"
    message: str
    # check's findings also name the build stage and say how to fix it; verify's leave them empty.
    stage: str | None = None
    fix: str | None = None

    def __post_init__(self) -> None:
        # A finding may quote a 1 MB FROM line or a server's words: cut it to a readable length (#14).
        from pinrepro.errors import clip

        if len(self.message) > 1000:
            object.__setattr__(self, "message", clip(self.message, 1000))

    def sort_key(self) -> tuple[str, int, str, str, str]:
        return (self.path, self.line or 0, self.level, self.code, self.message)

    def location(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass(frozen=True)
class Report:
    """What verify and check return: the findings, the silenced ones, and the exit code they make."""

    findings: tuple[Finding, ...]
    strict: bool = False
    # Findings a rule id silenced ([tool.pinrepro.*] ignore, or an inline comment): shown, never counted.
    suppressed: tuple[Suppressed, ...] = ()

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "warning")

    @property
    def exit_code(self) -> int:
        """1 for errors, or for warnings with ``strict``; else 0 (notes never fail a command)."""
        return 1 if self.errors or (self.strict and self.warnings) else 0


def findings_document(findings: Iterable[Finding], exit_code: int,
                      suppressed: Iterable[Suppressed] = ()) -> dict[str, Any]:
    """verify's ``--format json`` document: the findings, their counts per level, the silenced ones."""
    items = [
        {"path": f.path, "line": f.line, "level": f.level, "code": f.code, "message": f.message}
        for f in findings
    ]
    counts = {"error": 0, "warning": 0, "note": 0}
    for item in items:
        counts[str(item["level"])] += 1
    silenced = [s.to_json() for s in suppressed]
    counts["suppressed"] = len(silenced)
    return {"findings": items, "exit_code": exit_code, "counts": counts, "suppressed": silenced}
