from __future__ import annotations

import json
from pathlib import Path

from pinrepro import render
from pinrepro.findings import Finding

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
    data = json.loads(render.findings_json(FINDINGS, 1))
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
