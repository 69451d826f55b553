"""Silencing a rule on purpose: ``ignore`` in the configuration, or an inline comment above the instruction.

Shared by every command that reports findings: ``pinrepro verify`` today, and ``pinrepro check`` (#11) and
the apt pinning checks (#10) reuse :func:`apply_ignores` unchanged, so a rule id means the same everywhere.

A rule id is a finding's ``code`` (``unpinned``, ``install-bypasses-lock`` ...). Two ways to silence one:

- ``ignore = ["rule-id", ...]`` in the command's configuration table (``[tool.pinrepro.verify]``) drops it
  everywhere in the project;
- a comment ``# pinrepro: ignore=<rule-id>[,<rule-id>...] <reason>`` on the line(s) directly above the
  instruction drops it there only, as hadolint's ``# hadolint ignore=DL3008`` does. The comment block must
  touch the instruction: a blank line or another instruction in between ends it, so a comment cannot reach
  further down the file than the reader of the file expects.

Nothing is dropped silently: every suppressed finding comes back as a :class:`Suppressed` with where the
suppression came from and its reason, for ``--format json`` and for reviewers.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pinrepro.findings import Finding

Source = Literal["config", "inline"]

# A rule id: lower-case words joined by dashes, like every Finding.code.
RULE_ID = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
# "# pinrepro: ignore=a,b reason", with any spacing around ':' and '=' and ', '.
_INLINE = re.compile(
    r"#\s*pinrepro\s*:\s*ignore\s*=\s*(?P<ids>[A-Za-z0-9_-]+(?:\s*,\s*[A-Za-z0-9_-]+)*)(?P<reason>.*)\Z"
)

_HEREDOC = re.compile(r"<<(-?)[\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']?")


@dataclass(frozen=True)
class Suppressed:
    """A finding that a rule id silenced; ``reason`` is the inline comment's text (None for config)."""

    finding: Finding
    source: Source
    reason: str | None = None
    # Where the suppression is written: the config file's name, or "path:line" of the comment.
    where: str | None = None

    def to_json(self) -> dict[str, Any]:
        f = self.finding
        return {"path": f.path, "line": f.line, "level": f.level, "code": f.code, "message": f.message,
                "source": self.source, "reason": self.reason, "where": self.where}


def apply_ignores(findings: Sequence[Finding], *, ignore: Collection[str],
                  texts: Mapping[str, str], config_source: str | None = None) -> tuple[list[Finding], list[Suppressed]]:
    """Split ``findings`` into those still reported and those a rule id silenced, keeping their order.

    ``ignore`` is the configuration's list of rule ids; ``texts`` maps a finding's ``path`` to that file's
    text, where inline comments are looked for (a path missing from it has no inline suppressions).
    """
    ignored = frozenset(ignore)
    inline_cache: dict[str, dict[int, tuple[frozenset[str], str | None, int]]] = {}
    kept: list[Finding] = []
    suppressed: list[Suppressed] = []
    for finding in findings:
        if finding.code in ignored:
            suppressed.append(Suppressed(finding, "config", None, config_source))
            continue
        if finding.line is not None and finding.path in texts:
            by_line = inline_cache.get(finding.path)
            if by_line is None:
                by_line = inline_cache[finding.path] = inline_ignores(texts[finding.path])
            hit = by_line.get(finding.line)
            if hit is not None and finding.code in hit[0]:
                suppressed.append(Suppressed(finding, "inline", hit[1], f"{finding.path}:{hit[2]}"))
                continue
        kept.append(finding)
    return kept, suppressed


def inline_ignores(text: str) -> dict[int, tuple[frozenset[str], str | None, int]]:
    """Map each line of an instruction right below a block of comments to (rule ids, reason, comment line).

    The instruction is its first line plus its continuation lines (a trailing backslash) and heredoc bodies, so
    a finding at ``&& pip install x`` three lines into a RUN is covered by the comment above the RUN. Several
    ignore comments in one block add up; the reason kept is the first one given.
    """
    result: dict[int, tuple[frozenset[str], str | None, int]] = {}
    ids: set[str] = set()
    reason: str | None = None
    first_comment = 0
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        line = lines[number].lstrip(" \t\ufeff")
        number += 1
        if line.startswith("#"):
            match = _INLINE.match(line.rstrip())
            if match is not None:
                if not ids:
                    first_comment = number
                ids.update(part.strip().lower() for part in match["ids"].split(","))
                reason = reason or (match["reason"].strip() or None)
            continue
        if not line.strip():
            ids, reason = set(), None
            continue
        end = _instruction_end(lines, number - 1)
        if ids:
            for covered in range(number, end + 2):
                result[covered] = (frozenset(ids), reason, first_comment)
        ids, reason = set(), None
        number = end + 1
    return result


def _instruction_end(lines: list[str], start: int) -> int:
    """The index of the last line of the instruction starting at ``lines[start]``."""
    heredocs = _HEREDOC.findall(lines[start])
    index = start
    while lines[index].rstrip().endswith("\\") and index + 1 < len(lines):
        index += 1
    for _dash, word in heredocs:
        while index + 1 < len(lines) and lines[index + 1].strip() != word:
            index += 1
        index = min(index + 1, len(lines) - 1)
    return index


def check_rule_ids(ids: Sequence[str]) -> str | None:
    """The first entry that cannot be a rule id, for the configuration's error message; None when all can."""
    for rule in ids:
        if not RULE_ID.fullmatch(rule):
            return rule
    return None
