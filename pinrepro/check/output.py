"""`pinrepro check`'s report as text, JSON, GitHub workflow commands or SARIF 2.1.0 (GitHub code scanning)."""

from __future__ import annotations

import json
import posixpath
from dataclasses import replace
from typing import Any

from pinrepro import __version__, escape, render
from pinrepro.check.rules import RULES, VERIFY_IDS
from pinrepro.check.run import CheckReport
from pinrepro.findings import Finding

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"


def text(report: CheckReport) -> str:
    """One line per finding (file names and messages escaped onto it, as verify's), then its fix."""
    lines = []
    for f in report.findings:
        stage = f" (stage {escape.terminal(f.stage)})" if f.stage else ""
        lines.append(f"{escape.terminal(f.location())}{stage}: {f.level}: {escape.terminal(f.message)} [{f.code}]")
        if f.fix:
            lines.append(f"    fix: {escape.terminal(f.fix)}")
    return "\n".join(lines)


def summary(report: CheckReport) -> str:
    line = "check: ok" if not report.errors and not report.warnings else \
        f"check: {len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    if report.suppressed:
        line += f" ({len(report.suppressed)} suppressed; --format json lists them)"
    return line


def to_json(report: CheckReport) -> str:
    items = [{"path": f.path, "line": f.line, "level": f.level, "rule": f.code, "stage": f.stage,
              "message": f.message, "fix": f.fix} for f in report.findings]
    counts = {"error": len(report.errors), "warning": len(report.warnings), "suppressed": len(report.suppressed)}
    return json.dumps({"findings": items, "notes": list(report.notes), "counts": counts,
                       "suppressed": [s.to_json() for s in report.suppressed],
                       "exit_code": report.exit_code}, indent=2, sort_keys=True)


def github(report: CheckReport, prefix: str = "") -> str:
    """One annotation per finding, on the file and line; the fix is part of the message."""
    shown = [replace(f, message=f"{f.message}{f' (stage {f.stage})' if f.stage else ''}"
                     f"{f' - fix: {f.fix}' if f.fix else ''}") for f in report.findings]
    return render.findings_github(shown, prefix=prefix)


def sarif(report: CheckReport, prefix: str = "") -> str:
    """A SARIF 2.1.0 log: one run, a rule descriptor for every rule id, one result per finding.

    Paths are relative URIs from the repository root (``prefix`` is the project's place in it), which is
    what GitHub code scanning expects.
    """
    used = sorted({f.code for f in report.findings} | {s.finding.code for s in report.suppressed} | set(RULES))
    index = {rule_id: position for position, rule_id in enumerate(used)}
    results = [_result(f, index[f.code], prefix) for f in report.findings]
    for silenced in report.suppressed:
        # SARIF keeps suppressed results, marked: code scanning shows them as dismissed, with the reason.
        result = _result(silenced.finding, index[silenced.finding.code], prefix)
        suppression: dict[str, Any] = {"kind": "inSource" if silenced.source == "inline" else "external"}
        if silenced.reason:
            suppression["justification"] = silenced.reason
        result["suppressions"] = [suppression]
        results.append(result)
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "pinrepro", "semanticVersion": __version__,
                            "rules": [_descriptor(rule_id) for rule_id in used]}},
        "results": results,
        "columnKind": "unicodeCodePoints",
        "invocations": [{
            "executionSuccessful": True,
            "exitCode": report.exit_code,
            "toolExecutionNotifications": [{"level": "note", "message": {"text": note}} for note in report.notes],
        }],
    }
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2, sort_keys=True)


def _descriptor(rule_id: str) -> dict[str, Any]:
    rule = RULES.get(rule_id)
    if rule is None:
        item = VERIFY_IDS.get(rule_id, "2")
        return {
            "id": rule_id, "name": rule_id,
            "shortDescription": {"text": f"pinrepro verify finding '{rule_id}' (checklist item {item})"},
            "help": {"text": "run `pinrepro verify` and follow its message"},
            "properties": {"tags": ["pinrepro", "verify", f"item-{item}"]},
        }
    return {
        "id": rule.id,
        "name": "".join(part.capitalize() for part in rule.id.split("-")),
        "shortDescription": {"text": rule.what},
        "fullDescription": {"text": rule.why},
        "help": {"text": rule.fix},
        "defaultConfiguration": {"level": rule.level},
        "properties": {"tags": ["pinrepro", "ml-checklist", f"item-{rule.item}"]},
    }


def _result(f: Finding, rule_index: int, prefix: str) -> dict[str, Any]:
    path = posixpath.normpath(posixpath.join(prefix, f.path)) if prefix else f.path
    location: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": path}}}
    if f.line:
        location["physicalLocation"]["region"] = {"startLine": f.line}
    message = f.message + (f" - fix: {f.fix}" if f.fix else "")
    result: dict[str, Any] = {"ruleId": f.code, "ruleIndex": rule_index, "level": f.level,
                              "message": {"text": message}, "locations": [location]}
    if f.stage:
        result["properties"] = {"stage": f.stage}
    return result
