"""`pinrepro lock` pins apt installs: a pure-Python Debian-like image in the real registry, the signed loopback
apt repository with its snapshot service, and the host's apt-get."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pinrepro import lockdiff, lockfile
from pinrepro.manifest import render_diff_text
from pinrepro.summary import render_markdown, summarize
from tests.support.aptproject import make_project
from tests.support.aptrepo import AptRepo, Deb
from tests.support.cliproject import run
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.realregistry


@pytest.fixture
def project(tmp_path: Path, registry: RegistryServer, apt_repo: AptRepo) -> Path:
    return make_project(tmp_path, registry, apt_repo)


def test_lock_pins_records_and_keeps(project: Path, apt_repo: AptRepo) -> None:
    result = run(project, "lock")
    assert result.exit_code == 0, result.output
    text = (project / "Dockerfile").read_text()
    assert "install -y --no-install-recommends \\\n    pr-tool=1.0\n" in text
    assert "RUN apt-get install -y pr-extra=1.0 && rm -rf" in text
    lock = lockfile.read(project / "pinrepro.lock")
    assert lock is not None
    snapshot = lock.apt["snapshot"]
    base = lock.apt["stages"]["Dockerfile:base"]["linux/amd64"]
    assert base["pins"] == {"pr-tool": "1.0"}
    assert base["closure"] == {"pr-lib": "1.0 all pinrepro", "pr-tool": "1.0 all pinrepro"}
    app = lock.apt["stages"]["Dockerfile:app"]["linux/amd64"]
    assert app["base"] == "stage Dockerfile:base"
    assert app["closure"] == {"pr-doc": "1.0 all pinrepro", "pr-extra": "1.0 all pinrepro"}
    sources = (project / "pinrepro.apt/base/sources.list").read_text()
    assert f"/archive/debian/{snapshot}/ pinrepro main" in sources and "check-valid-until=no" in sources
    assert "APT_CONFIG=/run/pinrepro.apt/app/apt.conf" in (project / "pinrepro.apt/app/apt.conf").read_text()

    # Nothing changed: no apt at all (the repository sees no request), and not a byte moves.
    served = len(apt_repo.requests())
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    again = run(project, "lock")
    assert again.exit_code == 0, again.output
    assert len(apt_repo.requests()) == served
    assert {p: p.read_bytes() for p in project.rglob("*") if p.is_file()} == before

    # A new package in the app stage: only that stage is resolved again, at the locked snapshot.
    (project / "Dockerfile").write_text(text.replace("pr-extra=1.0 &&", "pr-extra=1.0 pr-lib &&"))
    third = run(project, "lock")
    assert third.exit_code == 0, third.output
    assert "pr-extra=1.0 pr-lib=1.0 &&" in (project / "Dockerfile").read_text()
    after = lockfile.read(project / "pinrepro.lock")
    assert after is not None and after.apt["snapshot"] == snapshot
    assert after.apt["stages"]["Dockerfile:base"] == lock.apt["stages"]["Dockerfile:base"]
    new_requests = apt_repo.requests()[served:]
    assert new_requests and all(f"/archive/debian/{snapshot}/" in line for line in new_requests)


def test_unknown_package_fails_and_writes_nothing(project: Path) -> None:
    (project / "Dockerfile").write_text((project / "Dockerfile").read_text().replace("pr-extra", "pr-nope"))
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    result = run(project, "lock")
    assert result.exit_code == 2
    assert "Dockerfile:5: apt-get install failed: Unable to locate package pr-nope" in result.output
    assert {p: p.read_bytes() for p in project.rglob("*") if p.is_file()} == before


def test_apt_disabled(project: Path) -> None:
    (project / "pinrepro.toml").write_text("[apt]\nenabled = false\n")
    result = run(project, "lock")
    assert result.exit_code == 0, result.output
    assert "pr-tool\n" in (project / "Dockerfile").read_text()
    assert not (project / "pinrepro.apt").exists()


def test_unknown_apt_key_is_an_error(project: Path) -> None:
    (project / "pinrepro.toml").write_text("[apt]\nsnapshots = 'auto'\n")
    result = run(project, "lock")
    assert result.exit_code == 2
    assert "pinrepro.toml: unknown key 'snapshots' in [apt]; known: enabled, snapshot, snapshot_url" in result.output


MOUNT = "RUN --mount=type=bind,source=pinrepro.apt,target=/run/pinrepro.apt "


def test_verify_offline(project: Path) -> None:
    assert run(project, "lock").exit_code == 0
    result = run(project, "verify")
    assert result.exit_code == 0, result.output
    # Pinned, but the RUN lines would install from the live archive: a warning with its rule id and line.
    assert "Dockerfile:2: warning: this RUN installs apt packages from the live archive" in result.output
    text = (project / "Dockerfile").read_text()
    text = text.replace("RUN apt-get update && apt-get install", MOUNT
                        + "export APT_CONFIG=/run/pinrepro.apt/base/apt.conf && apt-get update && apt-get install")
    text = text.replace("RUN apt-get install -y pr-extra",
                        MOUNT + "APT_CONFIG=/run/pinrepro.apt/app/apt.conf apt-get install -y pr-extra")
    (project / "Dockerfile").write_text(text)
    clean = run(project, "verify", "--strict")
    assert clean.exit_code == 0, clean.output

    (project / "Dockerfile").write_text(text.replace("pr-tool=1.0", "pr-tool=0.9").replace("pr-extra=1.0", "pr-extra"))
    drift = run(project, "verify", "--format", "json")
    assert drift.exit_code == 1
    codes = {(f["code"], f["line"]) for f in json.loads(drift.output)["findings"]}
    assert codes == {("apt-drift", 2), ("apt-unpinned", 5)}

    (project / "Dockerfile").write_text(text)
    (project / "pinrepro.apt/base/sources.list").write_text("deb http://mirror.example/debian bookworm main\n")
    moved = run(project, "verify")
    assert moved.exit_code == 1
    assert "pinrepro.apt/base/sources.list: error: the snapshot sources of Dockerfile:base differ" in moved.output


def test_verify_online_reports_versions_gone_from_the_index(tmp_path: Path, registry: RegistryServer) -> None:
    repo = AptRepo(tmp_path / "own-repo")
    for deb in (Deb("pr-lib", "1.0"), Deb("pr-tool", "1.0", depends="pr-lib"), Deb("pr-doc", "1.0"),
                Deb("pr-extra", "1.0", recommends="pr-doc")):
        repo.add(deb)
    repo.publish()
    repo.start()
    try:
        project = make_project(tmp_path, registry, repo, repo="debian-online")
        (project / "pinrepro.toml").write_text('[apt]\nsnapshot = "off"\n')
        assert run(project, "lock").exit_code == 0
        assert run(project, "verify", "--online").exit_code == 0
        repo.add(Deb("pr-tool", "2.0", depends="pr-lib"))
        repo.remove("pr-tool", "1.0")
        repo.publish()
        result = run(project, "verify", "--online")
        assert result.exit_code == 1
        assert "Dockerfile:base linux/amd64: apt-get install failed: Version '1.0' for 'pr-tool' was not found" in (
            result.output)
    finally:
        repo.stop()


def test_manifest_shows_each_stage_and_its_diff(project: Path) -> None:
    assert run(project, "lock").exit_code == 0
    shown = run(project, "manifest", "--packages")
    assert shown.exit_code == 0, shown.output
    assert "stage Dockerfile:app  linux/amd64\n    apt  5 packages, 2 from RUN lines\n" in shown.output
    assert "      pr-extra  1.0\n" in shown.output

    old = lockfile.read(project / "pinrepro.lock")
    assert old is not None
    stages = json.loads(json.dumps(old.apt))
    stages["stages"]["Dockerfile:base"]["linux/amd64"]["closure"]["pr-tool"] = "2.0 all pinrepro"
    moved = lockdiff.diff(old, replace(old, apt=stages))
    # The app stage builds on base: its final set moved too.
    assert [(p.ref, [(c.name, c.old, c.new) for c in p.apt]) for p in moved.platforms] == [
        ("stage Dockerfile:app", [("pr-tool", "1.0", "2.0")]),
        ("stage Dockerfile:base", [("pr-tool", "1.0", "2.0")]),
    ]
    assert "stage Dockerfile:base  linux/amd64\n  apt: 0 added, 0 removed, 1 changed\n    ~ pr-tool 1.0 -> 2.0" in (
        render_diff_text(moved))


def test_host_without_apt_get(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(project, "lock").exit_code == 0
    text = (project / "Dockerfile").read_text()
    (project / "Dockerfile").write_text(text.replace("pr-extra=1.0", "pr-extra=1.0 pr-lib"))
    monkeypatch.setattr("pinrepro.apt.resolve.shutil.which", lambda name: None)
    # By default: one line saying so, the existing pins kept, nothing resolved.
    kept = run(project, "lock")
    assert kept.exit_code == 0, kept.output
    assert "this host has no apt-get" in kept.output
    assert "pr-extra=1.0 pr-lib && rm" in (project / "Dockerfile").read_text()
    # Enabled explicitly, a stage that must be resolved is an error (exit 2), and nothing is written.
    (project / "pinrepro.toml").write_text("[apt]\nenabled = true\n" + (project / "pinrepro.toml").read_text())
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    failed = run(project, "lock")
    assert failed.exit_code == 2
    assert "apt pinning needs apt-get, and this host has none" in failed.output
    assert {p: p.read_bytes() for p in project.rglob("*") if p.is_file()} == before


def test_apt_findings_are_ignored_by_rule_id(project: Path, apt_repo: AptRepo) -> None:
    assert run(project, "lock").exit_code == 0
    text = (project / "Dockerfile").read_text()
    # One RUN line unpinned on purpose, with the reason above it; the snapshot-mount warning silenced project-wide.
    (project / "Dockerfile").write_text(text.replace(
        "RUN apt-get install -y pr-extra=1.0", "# pinrepro: ignore=apt-unpinned the app stage follows the archive\n"
        "RUN apt-get install -y pr-extra"))
    (project / "pinrepro.toml").write_text(
        f'[verify]\nignore = ["apt-no-snapshot-mount"]\n[apt.snapshot_url]\ndebian = "{apt_repo.snapshot_template}"\n')
    result = run(project, "verify", "--strict", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["findings"] == []
    assert {s["code"] for s in report["suppressed"]} == {"apt-unpinned", "apt-no-snapshot-mount"}


def test_refresh_summary_shows_apt_changes_of_run_lines(tmp_path: Path) -> None:
    def lock_with(version: str) -> lockfile.Lock:
        record = {"base": "stage Dockerfile:base", "pins": {"curl": version},
                  "closure": {"curl": f"{version} amd64 bookworm"}}
        return lockfile.Lock(apt={"stages": {"Dockerfile:app": {"linux/amd64": record}}})

    summary = summarize(lock_with("7.88.1-10+deb12u7"), lock_with("7.88.1-10+deb12u8"), root=tmp_path)
    text = render_markdown(summary)
    assert "`stage Dockerfile:app` (linux/amd64): 1 changed" in text
    assert "| curl | 7.88.1-10+deb12u7 | 7.88.1-10+deb12u8 |" in text


def test_a_name_from_an_arg_is_resolved_and_pinned_in_the_lock(project: Path) -> None:
    text = (project / "Dockerfile").read_text()
    (project / "Dockerfile").write_text(text.replace("FROM base AS app\n", 'FROM base AS app\nARG TOOL=pr-doc\n')
                                        .replace("install -y pr-extra", 'install -y pr-extra "$TOOL"'))
    assert run(project, "lock").exit_code == 0
    assert 'pr-extra=1.0 "$TOOL" &&' in (project / "Dockerfile").read_text()
    lock = lockfile.read(project / "pinrepro.lock")
    assert lock is not None and lock.apt["stages"]["Dockerfile:app"]["linux/amd64"]["pins"]["pr-doc"] == "1.0"
    result = run(project, "verify", "--format", "json")
    assert result.exit_code == 0, result.output
    [finding] = [f for f in json.loads(result.output)["findings"] if f["code"] == "apt-unpinned"]
    assert (finding["level"], finding["line"]) == ("warning", 6)


def test_dry_run_creates_no_file_in_the_project_or_pinrepros_cache(project: Path, isolated_home: Path) -> None:
    """--dry-run reads what earlier runs cached but creates nothing: no pinrepro.apt/ in the project, and none of
    pinrepro's own apt caches (layer files, package lists) under $XDG_CACHE_HOME, as for image blobs."""
    def everything(root: Path) -> list[str]:
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) if root.exists() else []

    cache = isolated_home / ".cache" / "pinrepro"
    before, cached_before = everything(project), everything(cache)
    for args, code in ((["lock", "--dry-run"], 0), (["lock", "--check"], 1)):
        result = run(project, *args)
        assert result.exit_code == code, result.output
        assert "pr-tool=1.0" in result.output
        assert everything(project) == before
        assert everything(cache) == cached_before
