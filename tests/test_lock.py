"""lock/verify decisions with an in-memory registry: what is resolved, what is kept, what is written."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from pinrepro import lockfile
from pinrepro.config import load
from pinrepro.errors import DockerfileError, LockfileError, NotFoundError
from pinrepro.lock import LockOutcome, LockServices, Upgrade, run_lock
from pinrepro.reference import ImageRef
from pinrepro.registry.client import ImageDescription
from pinrepro.verify import run_verify
from tests.support.fakeregistry import FakeRegistry, digest


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


def services(registry: FakeRegistry) -> LockServices:
    return LockServices(registry=lambda: registry, scanner=registry.scan)


def lock(root: Path, registry: FakeRegistry, *, upgrade: bool = False, dry_run: bool = False) -> LockOutcome:
    return run_lock(load(root), upgrade=Upgrade(everything=upgrade), dry_run=dry_run, services=services(registry))


def test_first_lock_pins_and_second_lock_makes_no_request(tmp_path: Path, registry: FakeRegistry) -> None:
    cuda = registry.push("nvidia/cuda:12.4.1-runtime-ubuntu22.04", 1)
    (tmp_path / "Dockerfile").write_text("FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04 AS run\nRUN true\n")
    outcome = lock(tmp_path, registry)
    assert (tmp_path / "Dockerfile").read_text() == (
        f"FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04@{cuda} AS run\nRUN true\n")
    entry = lockfile.read(tmp_path / "pinrepro.lock").images["docker.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04"]
    assert entry.digest == cuda
    assert entry.sites == ("Dockerfile:1",)
    assert entry.platforms["linux/amd64"].digest == digest(100)
    assert entry.platforms["linux/amd64"].contents == {"apt": {"libc6": "2.35"}, "python": "3.11.9"}
    assert registry.scanned == [digest(100)]  # only the configured platform (linux/amd64)
    assert outcome.resolved == ("docker.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04",)

    def no_network() -> FakeRegistry:
        raise AssertionError("a lock where nothing changed must not create a registry client")

    again = run_lock(load(tmp_path), services=LockServices(registry=no_network))
    assert not again.changed
    assert run_verify(load(tmp_path)).exit_code == 0


def test_moved_tag_kept_until_upgrade(tmp_path: Path, registry: FakeRegistry) -> None:
    old = registry.push("ubuntu:22.04", 1)
    (tmp_path / "Dockerfile").write_text("FROM ubuntu:22.04\n")
    lock(tmp_path, registry)
    new = registry.push("ubuntu:22.04", 2)
    assert not lock(tmp_path, registry).changed
    assert old in (tmp_path / "Dockerfile").read_text()
    registry.described.clear()
    outcome = lock(tmp_path, registry, upgrade=True)
    assert registry.headed == ["docker.io/library/ubuntu:22.04"]
    # Described by the digest the HEAD answered, never by the tag again (issue #15).
    assert registry.described == [f"docker.io/library/ubuntu:22.04@{new}"]
    assert (tmp_path / "Dockerfile").read_text() == f"FROM ubuntu:22.04@{new}\n"
    assert outcome.changed


def test_upgrade_with_unmoved_tags_only_sends_heads(tmp_path: Path, registry: FakeRegistry) -> None:
    registry.push("ubuntu:22.04", 1)
    (tmp_path / "Dockerfile").write_text("FROM ubuntu:22.04\n")
    lock(tmp_path, registry)
    registry.described.clear()
    assert not lock(tmp_path, registry, upgrade=True).changed
    assert registry.described == []
    assert registry.headed == ["docker.io/library/ubuntu:22.04"]


def test_hand_pinned_digest_is_kept_only_under_the_reference_it_was_locked_with(
    tmp_path: Path, registry: FakeRegistry
) -> None:
    old = registry.push("ubuntu:22.04", 1)
    new = registry.push("ubuntu:22.04", 2)
    # No lock knows which tag `old` was locked under: the tag is asked, and its digest replaces the written one.
    (tmp_path / "Dockerfile").write_text(f"FROM ubuntu:22.04@{old}\n")
    outcome = lock(tmp_path, registry)
    assert registry.described == ["docker.io/library/ubuntu:22.04"]
    assert outcome.new.images["docker.io/library/ubuntu:22.04"].digest == new
    assert [(f.level, f.code) for f in outcome.findings] == [("note", "digest-replaced")]
    assert (tmp_path / "Dockerfile").read_text() == f"FROM ubuntu:22.04@{new}\n"
    # Once locked, a digest edited by hand under the same reference is the user's pin and is kept.
    (tmp_path / "Dockerfile").write_text(f"FROM ubuntu:22.04@{old}\n")
    registry.described.clear()
    outcome = lock(tmp_path, registry)
    assert registry.described == [f"docker.io/library/ubuntu:22.04@{old}"]
    assert outcome.new.images["docker.io/library/ubuntu:22.04"].digest == old
    assert (tmp_path / "Dockerfile").read_text() == f"FROM ubuntu:22.04@{old}\n"


@pytest.mark.parametrize("upgrade", [False, True])
def test_digest_only_reference_is_described_by_its_digest(tmp_path: Path, registry: FakeRegistry,
                                                          upgrade: bool) -> None:
    pinned = registry.push("ubuntu:22.04", 1)
    registry.push("ubuntu:latest", 2)
    (tmp_path / "Dockerfile").write_text(f"FROM ubuntu@{pinned}\n")
    outcome = lock(tmp_path, registry, upgrade=upgrade)
    assert registry.described == [f"docker.io/library/ubuntu@{pinned}"]
    assert list(outcome.new.images) == [f"docker.io/library/ubuntu@{pinned}"]
    assert (tmp_path / "Dockerfile").read_text() == f"FROM ubuntu@{pinned}\n"
    assert run_verify(load(tmp_path)).exit_code == 0


def test_absent_platform_is_pinned_with_a_warning(tmp_path: Path, registry: FakeRegistry) -> None:
    registry.push("ghcr.io/org/amd64-only:1", 1, platforms=("linux/amd64",))
    (tmp_path / "pinrepro.toml").write_text('platforms = ["linux/amd64", "linux/arm64"]\n')
    (tmp_path / "Dockerfile").write_text("FROM ghcr.io/org/amd64-only:1\n")
    outcome = lock(tmp_path, registry)
    assert [(f.code, f.message) for f in outcome.findings] == [
        ("platform-absent", "ghcr.io/org/amd64-only:1 has no linux/arm64 image; pinned all the same")]
    platforms = outcome.new.images["ghcr.io/org/amd64-only:1"].platforms
    assert platforms["linux/arm64"].absent
    report = run_verify(load(tmp_path))
    assert report.exit_code == 0
    assert [f.code for f in report.findings] == ["platform-absent"]
    assert run_verify(load(tmp_path), strict=True).exit_code == 1


def test_platforms_added_to_config_are_resolved_by_digest(tmp_path: Path, registry: FakeRegistry) -> None:
    pinned = registry.push("ubuntu:22.04", 1)
    (tmp_path / "Dockerfile").write_text("FROM ubuntu:22.04\n")
    lock(tmp_path, registry)
    registry.push("ubuntu:22.04", 2)
    (tmp_path / "pinrepro.toml").write_text('platforms = ["linux/amd64", "linux/arm64"]\n')
    outcome = lock(tmp_path, registry)
    # The tag moved meanwhile, but the pin is kept: only its platforms were learnt, by digest.
    assert registry.described[-1] == f"docker.io/library/ubuntu:22.04@{pinned}"
    assert outcome.new.images["docker.io/library/ubuntu:22.04"].platforms["linux/arm64"].digest == digest(101)
    assert run_verify(load(tmp_path)).exit_code == 0


def test_verify_catches_a_platform_added_after_locking(tmp_path: Path, registry: FakeRegistry) -> None:
    registry.push("ubuntu:22.04", 1)
    (tmp_path / "Dockerfile").write_text("FROM ubuntu:22.04\n")
    lock(tmp_path, registry)
    (tmp_path / "pinrepro.toml").write_text('platforms = ["linux/amd64", "linux/arm64"]\n')
    report = run_verify(load(tmp_path))
    assert [(f.code, f.message) for f in report.findings] == [(
        "platforms-changed",
        "docker.io/library/ubuntu:22.04 is not locked for linux/arm64 (configured in pinrepro.toml): "
        "run `pinrepro lock`",
    )]
    assert report.exit_code == 1


def test_implicit_latest_and_arg_pins(tmp_path: Path, registry: FakeRegistry) -> None:
    latest = registry.push("ubuntu:latest", 1)
    cuda = registry.push("nvidia/cuda:12.4.1-base-ubuntu22.04", 2)
    (tmp_path / "Dockerfile").write_text(
        "ARG BASE=nvidia/cuda:12.4.1-base-ubuntu22.04\nFROM ${BASE} AS a\nFROM ubuntu\nFROM a\nFROM scratch\n")
    outcome = lock(tmp_path, registry)
    assert (tmp_path / "Dockerfile").read_text() == (
        f"ARG BASE=nvidia/cuda:12.4.1-base-ubuntu22.04@{cuda}\nFROM ${{BASE}} AS a\nFROM ubuntu:latest@{latest}\n"
        "FROM a\nFROM scratch\n")
    assert outcome.new.images["docker.io/library/ubuntu:latest"].implicit_tag
    assert run_verify(load(tmp_path)).exit_code == 0
    assert not lock(tmp_path, registry).changed  # lock twice == lock once


def test_dry_run_writes_nothing(tmp_path: Path, registry: FakeRegistry) -> None:
    registry.push("ubuntu:22.04", 1)
    (tmp_path / "Dockerfile").write_text("FROM ubuntu:22.04\n")
    outcome = lock(tmp_path, registry, dry_run=True)
    assert outcome.changed
    assert sorted(p.name for p in outcome.files) == ["Dockerfile", "pinrepro.lock"]
    assert (tmp_path / "Dockerfile").read_text() == "FROM ubuntu:22.04\n"
    assert not (tmp_path / "pinrepro.lock").exists()


@pytest.mark.parametrize(
    ("dockerfile", "error", "message"),
    [
        ("FROM ubuntu:nope\n", NotFoundError, "docker.io: ubuntu:nope not found"),
        ("FROM Ubuntu:22.04\n", DockerfileError, "other.Dockerfile:1: invalid image reference 'Ubuntu:22.04'"),
        ("ARG B=ubuntu:22.04@sha256:1\nFROM $B\n", DockerfileError, "other.Dockerfile:2: invalid image reference"),
        ("FROM\n", DockerfileError, "other.Dockerfile:1:"),
    ],
)
def test_bad_input_changes_no_file(tmp_path: Path, registry: FakeRegistry, dockerfile: str,
                                   error: type[Exception], message: str) -> None:
    registry.push("ubuntu:22.04", 1)
    (tmp_path / "Dockerfile").write_text("FROM ubuntu:22.04\n")
    (tmp_path / "other.Dockerfile").write_text(dockerfile)
    with pytest.raises(error) as info:
        lock(tmp_path, registry)
    assert str(info.value).startswith(message)
    assert (tmp_path / "Dockerfile").read_text() == "FROM ubuntu:22.04\n"
    assert not (tmp_path / "pinrepro.lock").exists()


def test_corrupted_lock_fails_lock_and_verify(tmp_path: Path, registry: FakeRegistry) -> None:
    (tmp_path / "Dockerfile").write_text("FROM ubuntu:22.04\n")
    (tmp_path / "pinrepro.lock").write_text("schema = 1\n[images\n")
    with pytest.raises(LockfileError, match="corrupted lock file"):
        lock(tmp_path, registry)
    with pytest.raises(LockfileError, match="corrupted lock file"):
        run_verify(load(tmp_path))
    assert (tmp_path / "Dockerfile").read_text() == "FROM ubuntu:22.04\n"


def test_verify_findings(tmp_path: Path, registry: FakeRegistry) -> None:
    a = registry.push("ubuntu:22.04", 1)
    registry.push("debian:12", 2)
    (tmp_path / "Dockerfile").write_text("FROM ubuntu:22.04\n")
    (tmp_path / "b.Dockerfile").write_text("FROM debian:12\n")
    lock(tmp_path, registry)
    (tmp_path / "Dockerfile").write_text(f"FROM ubuntu:22.04@{digest(9)}\nFROM alpine:3\nFROM python:3.11\n")
    (tmp_path / "b.Dockerfile").unlink()
    (tmp_path / "c.Dockerfile").write_text("ARG V\nFROM ubuntu:${V}\n")
    report = run_verify(load(tmp_path))
    assert [(f.location(), f.code) for f in report.findings] == [
        ("Dockerfile:1", "drift"), ("Dockerfile:2", "not-locked"), ("Dockerfile:3", "not-locked"),
        ("c.Dockerfile:2", "unresolved"), ("pinrepro.lock:7", "stale-lock-entry"),
    ]
    assert report.exit_code == 1
    assert f"pinned to sha256:{'0' * 12} but pinrepro.lock has {a[:19]}" in report.findings[0].message


def test_verify_online_reports_moved_tags_and_unpullable_digests(tmp_path: Path, registry: FakeRegistry) -> None:
    registry.push("ubuntu:22.04", 1)
    registry.push("debian:12", 2)
    (tmp_path / "Dockerfile").write_text("FROM ubuntu:22.04\nFROM debian:12\n")
    lock(tmp_path, registry)
    assert run_verify(load(tmp_path), online=True, client_factory=lambda: registry).exit_code == 0  # type: ignore[arg-type,return-value]
    registry.push("ubuntu:22.04", 3)
    del registry.tags["docker.io/library/debian:12"]
    del registry.by_digest[digest(2)]
    report = run_verify(load(tmp_path), online=True, client_factory=lambda: registry)  # type: ignore[arg-type,return-value]
    assert [(f.code, f.level) for f in report.findings] == [
        ("not-pullable", "error"), ("tag-gone", "warning"), ("tag-moved", "warning")]
    assert run_verify(load(tmp_path)).exit_code == 0


def test_lock_and_verify_close_the_registry_they_made(tmp_path: Path, registry: FakeRegistry) -> None:
    registry.push("ubuntu:22.04", 1)
    (tmp_path / "Dockerfile").write_text("FROM ubuntu:22.04\n")
    lock(tmp_path, registry)
    assert registry.closed == 1
    assert run_verify(load(tmp_path), online=True, client_factory=lambda: registry).exit_code == 0  # type: ignore[arg-type,return-value]
    assert registry.closed == 2


def test_scans_start_while_other_tags_are_still_being_asked(tmp_path: Path) -> None:
    """The first image's contents are read before the registry has answered for the second (issue #15): on a
    slow link the scans' round trips overlap the lookups' instead of following them."""
    import threading

    scanned = threading.Event()

    class Slow(FakeRegistry):
        def describe_many(self, refs: Sequence[ImageRef], *,
                          then: Callable[[ImageRef, ImageDescription], None] | None = None
                          ) -> dict[ImageRef, ImageDescription]:
            found = {}
            for ref in refs:
                found[ref] = self._lookup(ref)
                assert then is not None
                then(ref, found[ref])
                # Bounded: a lock that scans only after every answer fails here instead of hanging.
                assert scanned.wait(timeout=10), "no scan started before the next tag was asked"
            return found

        def scan(self, ref: ImageRef, platform_digest: str) -> dict[str, object]:
            scanned.set()
            return super().scan(ref, platform_digest)

    slow = Slow()
    slow.push("ubuntu:22.04", 1)
    slow.push("debian:12", 2)
    (tmp_path / "Dockerfile").write_text("FROM ubuntu:22.04\nFROM debian:12\n")
    outcome = lock(tmp_path, slow)
    assert outcome.resolved == ("docker.io/library/debian:12", "docker.io/library/ubuntu:22.04")
    assert sorted(slow.scanned) == [digest(100), digest(200)]
