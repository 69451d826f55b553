from __future__ import annotations

import json
from pathlib import Path

from pinrepro import render
from pinrepro.findings import Finding, findings_document

FINDINGS = [
    Finding("docker/train.Dockerfile", 3, "error", "unpinned", "nvidia/cuda:12.4.1 is not pinned by digest"),
    Finding("pinrepro.lock", None, "warning", "tag-moved", "a:b now points, elsewhere: 100%\nsecond line"),
]


def test_text() -> None:
    assert render.findings_text(FINDINGS).splitlines() == [
        "docker/train.Dockerfile:3: error: nvidia/cuda:12.4.1 is not pinned by digest [unpinned]",
        # A message from outside cannot forge a second line (issue #16): the newline is shown, not printed.
        "pinrepro.lock: warning: a:b now points, elsewhere: 100%\\nsecond line [tag-moved]",
    ]


def test_github_annotations_escape_data_and_properties() -> None:
    assert render.findings_github(FINDINGS).splitlines() == [
        "::error file=docker/train.Dockerfile,line=3,title=pinrepro unpinned::"
        "nvidia/cuda:12.4.1 is not pinned by digest",
        "::warning file=pinrepro.lock,line=1,title=pinrepro tag-moved::a:b now points, elsewhere: 100%25%0Asecond line",
    ]


def test_json() -> None:
    data = json.loads(render.json_document(findings_document(FINDINGS, 1)))
    assert data["exit_code"] == 1
    assert data["findings"][0] == {"path": "docker/train.Dockerfile", "line": 3, "level": "error",
                                   "code": "unpinned", "message": "nvidia/cuda:12.4.1 is not pinned by digest"}


def test_file_diff(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    diff = render.file_diff(tmp_path, {path: b"FROM a@sha256:1\n", tmp_path / "new.lock": b"x"},
                            {path: b"FROM a\n", tmp_path / "new.lock": None})
    assert diff.splitlines() == [
        "--- a/Dockerfile", "+++ b/Dockerfile", "@@ -1 +1 @@", "-FROM a", "+FROM a@sha256:1",
        "--- /dev/null", "+++ b/new.lock", "@@ -0,0 +1 @@", "+x", "\\ No newline at end of file",
    ]


def test_github_annotations_are_relative_to_the_repository() -> None:
    assert render.findings_github(FINDINGS[:1], prefix="services/api").startswith(
        "::error file=services/api/docker/train.Dockerfile,line=3,")


def test_a_note_is_a_github_notice() -> None:
    note = Finding("deploy/chart/templates/a.yaml", None, "note", "templated", "skipped: a template")
    assert render.findings_github([note]) == (
        "::notice file=deploy/chart/templates/a.yaml,line=1,title=pinrepro templated::skipped: a template")


def test_verify_line_counts_findings_and_suppressed_ones() -> None:
    from pinrepro.suppress import Suppressed
    from pinrepro.verify import VerifyReport

    assert render.verify_line(VerifyReport(())) == "verify: ok"
    report = VerifyReport(tuple(FINDINGS), suppressed=(Suppressed(FINDINGS[0], "config"),))
    assert render.verify_line(report) == "verify: 1 error(s), 1 warning(s) (1 suppressed; --format json lists them)"
    assert report.to_json()["counts"] == {"error": 1, "warning": 1, "note": 0, "suppressed": 1}
    assert render.json_document(report.to_json()) == render.json_document(
        findings_document(report.findings, 1, report.suppressed))


def test_lock_lines_and_json(tmp_path: Path) -> None:
    from pinrepro.lock import LockOutcome
    from pinrepro.lockfile import Lock

    outcome = LockOutcome(old=None, new=Lock(), files={tmp_path / "pinrepro.lock": b""},
                          old_files={tmp_path / "pinrepro.lock": None}, resolved=("a:1",),
                          layers_compiled=("base",))
    assert render.lock_text(outcome) == ("0 image(s), 0 requirement layer(s) locked; resolved 1 through the "
                                         "registry; recompiled: base; unchanged: none")
    assert render.wrote(outcome.changed_files(tmp_path)) == "wrote pinrepro.lock"
    # A file name from outside stays on its line.
    assert render.wrote(["a\nb"]) == "wrote a\\nb"
    assert render.wrote([]) == "nothing changed"
    data = json.loads(render.lock_json(outcome, tmp_path, written=False))
    assert data == {"changed": True, "files": ["pinrepro.lock"], "resolved": ["a:1"], "images": {},
                    "layers": {"recompiled": ["base"], "unchanged": []}, "written": False}


def test_pull_request_line_escapes_the_url() -> None:
    from pinrepro.github import PullRequest
    from pinrepro.refresh import PullResult

    pull = PullRequest(7, "https://example.test/p/7\x1b[2J", "bot", "main", "t", "", "open")
    assert render.pull_text(PullResult("created", "pinrepro/refresh", True, pull=pull)) == (
        "pull request: created (branch pinrepro/refresh) https://example.test/p/7\\x1b[2J")
    assert render.pull_text(PullResult("none", "b", False)) == "pull request: none (branch b)"


def test_cli_formats_nothing_itself() -> None:
    """Seam 7 of issue 13: what a command prints is built in render (or the result's own module), so cli.py
    neither dumps JSON nor hands an f-string to Output."""
    import ast

    tree = ast.parse((Path(render.__file__).parent / "cli.py").read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert "json" not in imported
    printed = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
               and isinstance(node.func, ast.Attribute) and node.func.attr in {"result", "info"}]
    assert printed  # the walk sees the output calls
    by_hand = [ast.unparse(call) for call in printed
               if any(isinstance(arg, (ast.JoinedStr, ast.BinOp)) for arg in call.args)]
    assert not by_hand, by_hand
