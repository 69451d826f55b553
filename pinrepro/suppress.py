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

from pinrepro.dockerfile import instructions
from pinrepro.errors import DockerfileError
from pinrepro.findings import Finding

Source = Literal["config", "inline"]

# A rule id: lower-case words joined by dashes, like every Finding.code.
RULE_ID = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
# "# pinrepro: ignore=a,b reason", with any spacing around ':' and '=' and ', '.
_INLINE = re.compile(
    r"#\s*pinrepro\s*:\s*ignore\s*=\s*(?P<ids>[A-Za-z0-9_-]+(?:\s*,\s*[A-Za-z0-9_-]+)*)(?P<reason>.*)\Z"
)


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
                  texts: Mapping[str, str], config_source: str | None = None,
                  line_texts: Mapping[str, str] | None = None) -> tuple[list[Finding], list[Suppressed]]:
    """Split ``findings`` into those still reported and those a rule id silenced, keeping their order.

    ``ignore`` is the configuration's list of rule ids; ``texts`` maps a finding's ``path`` to that Dockerfile's
    text, where inline comments are looked for (a path missing from it has no inline suppressions);
    ``line_texts`` does the same for line-oriented files (YAML), where a comment covers the one line below it.
    """
    ignored = frozenset(ignore)
    inline_cache: dict[str, _Inline] = {}
    kept: list[Finding] = []
    suppressed: list[Suppressed] = []
    for finding in findings:
        if finding.code in ignored:
            suppressed.append(Suppressed(finding, "config", None, config_source))
            continue
        by_line = None
        if finding.line is not None:
            by_line = inline_cache.get(finding.path)
            if by_line is None and finding.path in texts:
                by_line = inline_cache[finding.path] = inline_ignores(texts[finding.path], finding.path)
            elif by_line is None and line_texts is not None and finding.path in line_texts:
                text = line_texts[finding.path]
                by_line = inline_cache[finding.path] = _ignores_above(text, _line_spans(text))
        hit = by_line.get(finding.line) if by_line is not None and finding.line is not None else None
        if hit is not None and finding.code in hit[0]:
            suppressed.append(Suppressed(finding, "inline", hit[1], f"{finding.path}:{hit[2]}"))
            continue
        kept.append(finding)
    return kept, suppressed


# line -> (rule ids, reason, line of the first ignore comment)
_Inline = dict[int, tuple[frozenset[str], str | None, int]]


def inline_ignores(text: str, path: str = "Dockerfile") -> _Inline:
    """Map each line of an instruction right below a block of comments to (rule ids, reason, comment line).

    The instructions and the lines each covers (continuations, heredoc bodies, ``# escape=``) come from the one
    Dockerfile reader, so a finding at ``&& pip install x`` three lines into a RUN is covered by the comment
    above the RUN exactly when BuildKit reads that line as part of the RUN. Several ignore comments in one
    block add up; the reason kept is the first one given.
    """
    try:
        found, _ = instructions(text, path)
    except DockerfileError:
        # A file the reader refuses is reported as such elsewhere; nothing in it is silenced.
        return {}
    return _ignores_above(text, [(item.line, item.end_line) for item in found])


def _line_spans(text: str) -> list[tuple[int, int]]:
    """Line-oriented files: every line that is not blank or a comment is its own item."""
    return [(number, number) for number, line in enumerate(_physical_lines(text), start=1)
            if line.strip() and not line.lstrip().startswith("#")]


def _physical_lines(text: str) -> list[str]:
    # Split on LF only, as the readers count lines (str.splitlines would also split on \f, \x1c, \u2028 ...).
    return [line.rstrip("\r") for line in text.removeprefix("\ufeff").split("\n")]


def _ignores_above(text: str, spans: Sequence[tuple[int, int]]) -> _Inline:
    """For each (first line, last line) item, the ignore comments in the block of comment lines right above it:
    a blank line or the end of the previous item ends the block."""
    lines = _physical_lines(text)
    result: _Inline = {}
    previous_end = 0
    for first, last in spans:
        ids: set[str] = set()
        reason: str | None = None
        first_comment = 0
        number = first - 1
        while number > previous_end:
            line = lines[number - 1].strip(" \t")
            if not line.startswith("#"):
                break
            match = _INLINE.match(line)
            if match is not None:
                first_comment = number
                ids.update(part.strip().lower() for part in match["ids"].split(","))
                # The topmost comment's reason wins, as the block is read top-down.
                reason = match["reason"].strip() or reason
            number -= 1
        if ids:
            for covered in range(first, last + 1):
                result[covered] = (frozenset(ids), reason, first_comment)
        previous_end = max(previous_end, last)
    return result


def check_rule_ids(ids: Sequence[str]) -> str | None:
    """The first entry that cannot be a rule id, for the configuration's error message; None when all can."""
    for rule in ids:
        if not RULE_ID.fullmatch(rule):
            return rule
    return None
