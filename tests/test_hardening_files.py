"""Files: old or new, never a mix, never outside the project (issue #14 items 5-7, 9 and 12's file cases).

Every case goes through the CLI. The kill tests send real SIGKILL / SIGINT to ``python -m pinrepro lock`` at
random points (tests/support/kill.py) and check that the project holds exactly the old set or exactly the
new set - after the next run recovered it for SIGKILL, at once for SIGINT.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pinrepro import journal
from pinrepro.cli import cli
from pinrepro.config import load
from pinrepro.lock import LockServices, run_lock
from tests.support.cliproject import snapshot as state
from tests.support.fakeregistry import FakeRegistry
from tests.support.kill import kill_once, pinrepro_command, run_once

State = dict[str, bytes]


def invoke(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "-C", str(root)], catch_exceptions=False)


def restore(root: Path, wanted: State) -> None:
    for path in list(root.rglob("*")):
        if path.is_file() and path.relative_to(root).as_posix() not in wanted:
            path.unlink()
    for name, data in wanted.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def _pin_offline(root: Path, services: int) -> None:
    """A project whose lock already knows the image, so `pinrepro lock` rewrites every file offline."""
    registry = FakeRegistry()
    registry.push("ubuntu:22.04", 1)
    registry.push("debian:12", 2)
    for index in range(services):
        (root / f"svc{index:04d}").mkdir(parents=True)
        (root / f"svc{index:04d}" / "Dockerfile").write_text("FROM ubuntu:22.04\nRUN true\n")
    (root / "extra").mkdir()
    (root / "extra" / "Dockerfile").write_text("FROM debian:12\n")
    run_lock(load(root), services=LockServices(registry=lambda: registry, scanner=registry.scan))
    # Old state: Dockerfiles unpinned again and a lock that still lists debian (its Dockerfile is gone), so
    # the next lock rewrites every Dockerfile AND the lock.
    shutil.rmtree(root / "extra")
    for index in range(services):
        (root / f"svc{index:04d}" / "Dockerfile").write_text("FROM ubuntu:22.04\nRUN true\n")


@pytest.fixture(scope="module")
def many_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, State, State, float]:
    """(project, old state, new state, seconds of one uninterrupted run) with 300 Dockerfiles."""
    root = tmp_path_factory.mktemp("many")
    _pin_offline(root, 300)
    old = state(root)
    started = time.monotonic()
    done = run_once(pinrepro_command("lock", "-C", str(root)), cwd=root)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    new = state(root)
    assert new != old and set(new) == set(old)
    assert sum(old[n] != new[n] for n in old) == 301  # 300 Dockerfiles and the lock
    restore(root, old)
    return root, old, new, elapsed


def _mixed(root: Path, old: State, new: State) -> str | None:
    now = state(root)
    if now in (old, new):
        return None
    extra = sorted(set(now) - set(old))
    olds = sum(now.get(n) == old[n] != new[n] for n in old)
    news = sum(now.get(n) == new[n] != old[n] for n in old)
    return f"{olds} old, {news} new, extra files {extra[:3]} ({len(extra)})"


def test_sigkill_at_random_points_leaves_old_or_new_after_the_next_run(
        many_files: tuple[Path, State, State, float]) -> None:
    root, old, new, full_run = many_files
    rng = random.Random(14)
    outcomes = {"old": 0, "new": 0}
    for attempt in range(12):
        restore(root, old)
        marker = root / journal.JOURNAL_NAME if attempt % 2 else None
        killed = kill_once(pinrepro_command("lock", "-C", str(root)), cwd=root, signum=signal.SIGKILL,
                           delay=0.02 if marker else rng.uniform(0.2, full_run), marker=marker, rng=rng,
                           timeout=60)
        for name in old:  # each rename is atomic: every single file is old or new even before recovery
            assert (root / name).read_bytes() in (old[name], new[name])
        after = run_once(pinrepro_command("verify", "-C", str(root)), cwd=root)
        assert "internal error" not in after.stderr
        problem = _mixed(root, old, new)
        assert problem is None, f"attempt {attempt} (signal at {killed.delay:.3f}s): {problem}; {after.stderr}"
        outcomes["new" if state(root) == new else "old"] += 1
    # The harness must hit both sides, or it proves nothing about the journal.
    assert outcomes["old"] and outcomes["new"], outcomes


def test_sigint_at_random_points_exits_130_with_old_or_new_and_no_temp_files(
        many_files: tuple[Path, State, State, float]) -> None:
    root, old, new, full_run = many_files
    rng = random.Random(130)
    for attempt in range(8):
        restore(root, old)
        marker = root / journal.JOURNAL_NAME if attempt % 2 else None
        killed = kill_once(pinrepro_command("lock", "-C", str(root)), cwd=root, signum=signal.SIGINT,
                           delay=0.02 if marker else rng.uniform(0.3, full_run), marker=marker, rng=rng,
                           timeout=60)
        assert "internal error" not in killed.stderr
        problem = _mixed(root, old, new)
        assert problem is None, f"attempt {attempt}: {problem}; {killed.stderr}"
        if killed.delay >= 0:
            assert killed.returncode in (130, -signal.SIGINT, 0), killed.stderr
            if killed.returncode == 130 and "after the files were written" not in killed.stderr:
                assert state(root) == old, killed.stderr


def test_leftover_temp_files_and_journal_are_cleaned_and_reported(tmp_path: Path) -> None:
    _pin_offline(tmp_path, 2)
    before = state(tmp_path)
    # What a kill during staging leaves: temp files beside the targets, no journal.
    (tmp_path / "svc0000" / ".Dockerfile.abc.pinrepro-tmp").write_text("half")
    (tmp_path / ".pinrepro.lock.xyz.pinrepro-tmp").write_text("half")
    result = invoke(tmp_path, "verify")
    assert "removed 2 temporary file(s)" in result.stderr
    assert state(tmp_path) == before


def test_journal_rolls_forward_on_next_run(tmp_path: Path) -> None:
    _pin_offline(tmp_path, 2)
    target = tmp_path / "svc0001" / "Dockerfile"
    temp = tmp_path / "svc0001" / ".Dockerfile.q.pinrepro-tmp"
    temp.write_bytes(b"FROM ubuntu:22.04@sha256:" + b"1" * 64 + b"\n")
    (tmp_path / journal.JOURNAL_NAME).write_text(json.dumps({"version": 1, "files": [
        {"target": "svc0001/Dockerfile", "temp": "svc0001/.Dockerfile.q.pinrepro-tmp",
         "sha256": hashlib.sha256(temp.read_bytes()).hexdigest()}]}))
    result = invoke(tmp_path, "verify")
    assert "finished an interrupted write" in result.stderr
    assert target.read_bytes().startswith(b"FROM ubuntu:22.04@sha256:111")
    assert not temp.exists() and not (tmp_path / journal.JOURNAL_NAME).exists()


def test_journal_naming_a_file_outside_the_project_is_not_followed(tmp_path: Path) -> None:
    _pin_offline(tmp_path, 1)
    outside = tmp_path.parent / f"{tmp_path.name}-victim"
    outside.write_text("keep")
    (tmp_path / journal.JOURNAL_NAME).write_text(json.dumps({"version": 1, "files": [
        {"target": f"../{outside.name}", "temp": "svc0000/Dockerfile", "sha256": "0" * 64}]}))
    invoke(tmp_path, "verify")
    assert outside.read_text() == "keep"
    assert (tmp_path / "svc0000" / "Dockerfile").exists()


# -- item 6: edits while waiting, concurrent runs ---------------------------------------------------------------

class _SlowRegistry(FakeRegistry):
    """Describes only after the test edited a Dockerfile: the edit lands while lock waits on the 'network'."""

    def __init__(self, edit: Path) -> None:
        super().__init__()
        self.edit = edit

    def describe_many(self, refs, *, then=None):  # type: ignore[no-untyped-def]
        self.edit.write_text("FROM ubuntu:22.04\nRUN echo edited by hand\n")
        return super().describe_many(refs, then=then)


def test_edit_made_while_lock_waits_is_not_overwritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM ubuntu:22.04\nRUN true\n")
    slow = _SlowRegistry(dockerfile)
    slow.push("ubuntu:22.04", 1)
    import pinrepro.inventory.scan as scan_module
    import pinrepro.registry.client as client_module
    # lock imports the client and the scan when it first needs them (start-up time, #15): patch them there.
    monkeypatch.setattr(client_module, "RegistryClient", lambda *a, **k: slow)
    monkeypatch.setattr(scan_module, "scan_platform", lambda *a, **k: _Contents())
    result = CliRunner().invoke(cli, ["lock", "-C", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert "Dockerfile: changed while pinrepro was working" in result.stderr
    assert dockerfile.read_text() == "FROM ubuntu:22.04\nRUN echo edited by hand\n"
    assert not (tmp_path / "pinrepro.lock").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dockerfile"]


class _Contents:
    def to_toml(self) -> dict[str, object]:
        return {"python": "3.11.9"}


def test_second_concurrent_lock_refuses_while_the_first_holds_the_project(tmp_path: Path) -> None:
    _pin_offline(tmp_path, 1)
    before = state(tmp_path)
    with journal.project_lock(tmp_path):
        result = run_once(pinrepro_command("lock", "-C", str(tmp_path)), cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "another pinrepro run is working on this project" in result.stderr
    assert state(tmp_path) == before


def test_two_locks_started_together_never_interleave(tmp_path: Path) -> None:
    _pin_offline(tmp_path, 60)
    results: list[subprocess.CompletedProcess[str]] = []
    threads = [threading.Thread(target=lambda: results.append(
        run_once(pinrepro_command("lock", "-C", str(tmp_path)), cwd=tmp_path, timeout=60))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert sorted(r.returncode for r in results)[0] == 0
    assert all(r.returncode == 0 or "another pinrepro run" in r.stderr for r in results), \
        [r.stderr for r in results]
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".pinrepro-tmp")]
    assert all("@sha256:" in (tmp_path / f"svc{i:04d}" / "Dockerfile").read_text() for i in range(60))


# -- item 7: paths ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("setting", [
    'lockfile = "/tmp/pinrepro-escape.lock"',
    'lockfile = "../escape.lock"',
    'lockfile = "sub/../../escape.lock"',
    'dockerfiles = ["/etc/*"]',
    'dockerfiles = ["../**/Dockerfile"]',
    '[[layers]]\nname = "a"\nrequirements = "../outside.in"',
    '[[layers]]\nname = "a"\nrequirements = "a.in"\nlock = "/tmp/a.lock"',
])
def test_paths_outside_the_project_are_refused_before_anything_is_written(tmp_path: Path, setting: str) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Dockerfile").write_text("FROM ubuntu:22.04\n")
    (project / "pinrepro.toml").write_text(setting + "\n")
    before = state(tmp_path)
    result = invoke(project, "lock")
    assert result.exit_code == 2
    assert "outside the project" in result.stderr and "internal error" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert state(tmp_path) == before
    assert not Path("/tmp/pinrepro-escape.lock").exists()


def test_lockfile_symlinked_outside_the_project_is_refused(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Dockerfile").write_text("FROM ubuntu:22.04\n")
    (tmp_path / "elsewhere").mkdir()
    (project / "locks").symlink_to(tmp_path / "elsewhere")
    (project / "pinrepro.toml").write_text('lockfile = "locks/pinrepro.lock"\n')
    result = invoke(project, "lock")
    assert result.exit_code == 2 and "outside the project through a symlink" in result.stderr
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_symlinked_dockerfile_inside_is_rewritten_through_the_link_outside_refused(tmp_path: Path) -> None:
    project = tmp_path / "project"
    _pin_offline(project, 1)
    real = project / "docker" / "base.Dockerfile"
    real.parent.mkdir()
    real.write_text("FROM ubuntu:22.04\n")
    (project / "svc0000" / "Dockerfile").unlink()
    (project / "svc0000" / "Dockerfile").symlink_to(real)
    result = invoke(project, "lock")
    assert result.exit_code == 0, result.stderr
    assert (project / "svc0000" / "Dockerfile").is_symlink()
    assert "@sha256:" in real.read_text()

    victim = tmp_path / "victim.Dockerfile"
    victim.write_text("FROM ubuntu:22.04\n")
    (project / "svc0000" / "Dockerfile").unlink()
    (project / "svc0000" / "Dockerfile").symlink_to(victim)
    before = state(project)
    result = invoke(project, "lock")
    assert result.exit_code == 2
    assert "svc0000/Dockerfile" in result.stderr and "outside the project" in result.stderr
    assert victim.read_text() == "FROM ubuntu:22.04\n"
    assert state(project) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_project_is_one_line_and_leaves_no_temp_files(tmp_path: Path) -> None:
    _pin_offline(tmp_path, 2)
    before = state(tmp_path)
    folder = tmp_path / "svc0001"
    folder.chmod(0o555)
    try:
        result = invoke(tmp_path, "lock")
    finally:
        folder.chmod(0o755)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "internal error" not in result.stderr
    assert "svc0001" in result.stderr and "Permission denied" in result.stderr
    assert state(tmp_path) == before


def test_full_disk_is_one_line_and_leaves_files_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _pin_offline(tmp_path, 3)
    before = state(tmp_path)
    real_fsync = os.fsync
    calls = {"n": 0}

    def full(fd: int) -> None:  # the third staged file hits ENOSPC when it is flushed to disk
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    result = invoke(tmp_path, "lock")
    monkeypatch.undo()
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "No space left on device" in result.stderr and "free some disk space" in result.stderr
    assert state(tmp_path) == before


def test_permission_denied_is_one_line_and_leaves_files_unchanged(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The same as the read-only test, for CI runners that run as root (which ignores file modes)."""
    _pin_offline(tmp_path, 3)
    before = state(tmp_path)
    real = tempfile.mkstemp

    def denied(*args: object, **kwargs: object) -> tuple[int, str]:
        if "svc0002" in str(kwargs.get("dir")):
            raise PermissionError(errno.EACCES, "Permission denied", str(kwargs.get("dir")))
        return real(*args, **kwargs)  # type: ignore[call-overload,no-any-return]

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    result = invoke(tmp_path, "lock")
    monkeypatch.undo()
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "svc0002: cannot write: Permission denied" in result.stderr
    assert state(tmp_path) == before


def test_dash_c_pointing_at_a_file_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    result = invoke(target, "verify")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: project directory {target} is a file, not a directory"
                                                  " - pass the folder that holds the project to -C"]


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("pinrepro.toml", b"lockfile = \"\xff\xfe\"\n", "pinrepro.toml: is not UTF-8 text"),
    ("pyproject.toml", b"tool = 5\n", "pyproject.toml: [tool] must be a table"),
])
def test_bad_config_files_are_one_line(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    (tmp_path / name).write_bytes(content)
    result = invoke(tmp_path, "verify")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {expected}")
    assert "internal error" not in result.stderr and result.stderr.count("\n") == 1
