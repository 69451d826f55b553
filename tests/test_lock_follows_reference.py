"""What pinrepro.lock says is what the build pulls: a digest follows its reference, never a changed one.

End to end through the CLI against the real registry of the test suite; the registry's answer for each tag
(pushed here) is the oracle.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pinrepro import lockfile
from tests.support import images as im
from tests.support import pushing
from tests.support.cliproject import locked, push, run, snapshot, unique
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.realregistry


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


@pytest.mark.parametrize("where", ["from-line", "arg-default", "repository-path"])
def test_changed_arg_resolves_the_new_reference(tmp_path: Path, registry: RegistryServer, project: Path,
                                                where: str) -> None:
    host, ns = registry.host, unique(tmp_path)
    layout = tmp_path / "layout"
    if where == "repository-path":
        old = push(registry, layout, f"{ns}/gaudi-docker/1.20.0/ubuntu22.04/pytorch", "latest", "old")
        new = push(registry, layout, f"{ns}/gaudi-docker/1.21.0/ubuntu22.04/pytorch", "latest", "new")
        template = "ARG VER={v}\nFROM {host}/{ns}/gaudi-docker/${{VER}}/ubuntu22.04/pytorch:latest{pin}\n"
        versions = ("1.20.0", "1.21.0")
        new_key = f"{host}/{ns}/gaudi-docker/1.21.0/ubuntu22.04/pytorch:latest"
    else:
        old = push(registry, layout, f"{ns}/nvidia/cuda", "12.8.1-devel-ubuntu22.04", "old")
        new = push(registry, layout, f"{ns}/nvidia/cuda", "12.9.0-devel-ubuntu22.04", "new")
        template = (
            "ARG CUDA_VERSION={v}\nFROM {host}/{ns}/nvidia/cuda:${{CUDA_VERSION}}-devel-ubuntu22.04{pin}\n"
            if where == "from-line" else
            "ARG CUDA_VERSION={v}\nARG BASE={host}/{ns}/nvidia/cuda:${{CUDA_VERSION}}-devel-ubuntu22.04{pin}\n"
            "FROM ${{BASE}}\n"
        )
        versions = ("12.8.1", "12.9.0")
        new_key = f"{host}/{ns}/nvidia/cuda:12.9.0-devel-ubuntu22.04"
    dockerfile = project / "Dockerfile"
    dockerfile.write_text(template.format(v=versions[0], host=host, ns=ns, pin=""))
    assert run(project, "lock").exit_code == 0
    assert dockerfile.read_text() == template.format(v=versions[0], host=host, ns=ns, pin=f"@{old}")

    # The user bumps the ARG and leaves the old digest where it was.
    dockerfile.write_text(template.format(v=versions[1], host=host, ns=ns, pin=f"@{old}"))
    result = run(project, "lock")
    assert result.exit_code == 0, result.output
    assert dockerfile.read_text() == template.format(v=versions[1], host=host, ns=ns, pin=f"@{new}")
    assert locked(project) == {new_key: new}
    assert "Dockerfile:2: note: " in result.stderr if where == "from-line" else "note: " in result.stderr
    assert run(project, "verify", "--strict").exit_code == 0


def test_hand_edited_tag_and_hand_written_digest_get_the_registry_digest(
    tmp_path: Path, registry: RegistryServer, project: Path
) -> None:
    host, ns = registry.host, unique(tmp_path)
    layout = tmp_path / "layout"
    one = push(registry, layout, f"{ns}/app", "1", "one")
    two = push(registry, layout, f"{ns}/app", "2", "two")
    dockerfile = project / "Dockerfile"
    dockerfile.write_text(f"FROM {host}/{ns}/app:1\n")
    assert run(project, "lock").exit_code == 0
    # The tag text is edited by hand; the digest of tag 1 stays behind it.
    dockerfile.write_text(f"FROM {host}/{ns}/app:2@{one}\n")
    assert run(project, "lock").exit_code == 0
    assert dockerfile.read_text() == f"FROM {host}/{ns}/app:2@{two}\n"
    assert locked(project) == {f"{host}/{ns}/app:2": two}
    # In a project without a lock, a digest written next to a tag is checked against that tag too.
    (project / "pinrepro.lock").unlink()
    dockerfile.write_text(f"FROM {host}/{ns}/app:1@{two}\n")
    result = run(project, "lock")
    assert result.exit_code == 0
    assert dockerfile.read_text() == f"FROM {host}/{ns}/app:1@{one}\n"
    assert f"Dockerfile:1: note: {host}/{ns}/app:1 was written with {two[:19]}" in result.stderr
    assert run(project, "verify", "--strict").exit_code == 0


def test_digest_only_from_is_kept_and_an_older_checkout_is_resolved_again(
    tmp_path: Path, registry: RegistryServer, project: Path
) -> None:
    host, ns = registry.host, unique(tmp_path)
    layout = tmp_path / "layout"
    first = push(registry, layout, f"{ns}/app", "1", "first")
    dockerfile = project / "Dockerfile"
    dockerfile.write_text(f"FROM {host}/{ns}/app@{first}\n")
    assert run(project, "lock").exit_code == 0
    assert dockerfile.read_text() == f"FROM {host}/{ns}/app@{first}\n"
    assert locked(project) == {f"{host}/{ns}/app@{first}": first}

    # Version 1 of the Dockerfile is locked, then version 2 (tag 2); tag 1 moves upstream meanwhile.
    dockerfile.write_text(f"FROM {host}/{ns}/app:1\n")
    assert run(project, "lock").exit_code == 0
    older = dockerfile.read_text()
    push(registry, layout, f"{ns}/app", "2", "two")
    dockerfile.write_text(f"FROM {host}/{ns}/app:2\n")
    assert run(project, "lock").exit_code == 0
    moved = push(registry, layout, f"{ns}/app", "1", "moved")
    # `git checkout HEAD~1 -- Dockerfile`: the lock no longer knows tag 1, so its digest is asked again.
    dockerfile.write_text(older)
    assert run(project, "lock").exit_code == 0
    assert dockerfile.read_text() == f"FROM {host}/{ns}/app:1@{moved}\n"
    assert locked(project) == {f"{host}/{ns}/app:1": moved}


def test_arg_default_that_is_another_image_arg(tmp_path: Path, registry: RegistryServer, project: Path) -> None:
    host, ns = registry.host, unique(tmp_path)
    digest = push(registry, tmp_path / "layout", f"{ns}/ubuntu", "24.04", "noble")
    dockerfile = project / "Dockerfile"
    template = ("ARG BASE_IMAGE={host}/{ns}/ubuntu:24.04{pin}\nARG INTEL_BASE_IMAGE=${{BASE_IMAGE}}\n"
                "FROM ${{BASE_IMAGE}} AS a\nFROM ${{INTEL_BASE_IMAGE}} AS b\n")
    dockerfile.write_text(template.format(host=host, ns=ns, pin=""))
    result = run(project, "lock")
    assert result.exit_code == 0, result.output
    assert dockerfile.read_text() == template.format(host=host, ns=ns, pin=f"@{digest}")
    assert locked(project) == {f"{host}/{ns}/ubuntu:24.04": digest}
    assert run(project, "verify", "--strict").exit_code == 0
    before = snapshot(project)
    assert run(project, "lock").exit_code == 0
    assert snapshot(project) == before


@pytest.mark.parametrize("bad", ["md5:" + "0" * 32, "sha256:" + "a" * 63, "sha256:" + "A" * 64])
def test_a_digest_that_is_not_sha256_is_a_corrupt_lock(tmp_path: Path, registry: RegistryServer, project: Path,
                                                        bad: str) -> None:
    host, ns = registry.host, unique(tmp_path)
    digest = push(registry, tmp_path / "layout", f"{ns}/app", "1", "one")
    (project / "Dockerfile").write_text(f"FROM {host}/{ns}/app:1\n")
    assert run(project, "lock").exit_code == 0
    lock_path = project / "pinrepro.lock"
    lock_path.write_text(lock_path.read_text().replace(f'digest = "{digest}"', f'digest = "{bad}"', 1))
    (project / "Dockerfile").write_text(f"FROM {host}/{ns}/app:1\n")
    before = snapshot(project)
    for command in (["lock"], ["verify"], ["manifest"]):
        result = run(project, *command)
        assert result.exit_code == 2, (command, result.output)
        assert result.stderr.startswith("error: pinrepro.lock: corrupted lock file")
        assert f"'{bad}', not sha256:<64 lower-case hex digits>" in result.stderr
        assert snapshot(project) == before


def test_from_platform_literal_records_what_the_build_pulls(tmp_path: Path, registry: RegistryServer,
                                                            project: Path) -> None:
    """ollama's shape: per-arch base stages with a literal --platform, chosen by base-${TARGETARCH}."""
    host, ns = registry.host, unique(tmp_path)
    layout = tmp_path / "layout"
    rocm = push(registry, layout, f"{ns}/rocm/dev-almalinux-8", "6.3.3-complete", "rocm", arch="amd64")
    alma = push(registry, layout, f"{ns}/almalinux", "8", "alma", arch="arm64")
    built = im.build_two_platform(layout, f"{ns}-golang", [{"etc/os-release": b"ID=debian\n"}])
    golang = pushing.push_http(layout, f"{ns}-golang", registry.url, f"{ns}/golang", "1.24")
    assert golang == built.digest
    (project / "pinrepro.toml").write_text('platforms = ["linux/amd64", "linux/arm64"]\n')
    dockerfile = project / "Dockerfile"
    dockerfile.write_text(
        "ARG FLAVOR=${TARGETARCH}\n"
        "ARG ROCMVERSION=6.3.3\n"
        f"FROM --platform=linux/amd64 {host}/{ns}/rocm/dev-almalinux-8:${{ROCMVERSION}}-complete AS base-amd64\n"
        f"FROM --platform=linux/arm64 {host}/{ns}/almalinux:8 AS base-arm64\n"
        "FROM base-${TARGETARCH} AS base\n"
        f"FROM --platform=$BUILDPLATFORM {host}/{ns}/golang:1.24 AS build\n"
        "FROM --platform=linux/amd64 scratch AS amd64\n"
        "FROM --platform=linux/arm64 scratch AS arm64\n"
        "FROM ${FLAVOR} AS archive\n"
    )
    result = run(project, "lock")
    assert result.exit_code == 0, result.output
    assert "has no" not in result.stderr and "cannot pin" not in result.stderr, result.stderr
    lock = lockfile.read(project / "pinrepro.lock")
    assert lock is not None
    platforms = {key.rsplit("/", 1)[-1]: sorted(image.platforms) for key, image in lock.images.items()}
    assert platforms == {"dev-almalinux-8:6.3.3-complete": ["linux/amd64"], "almalinux:8": ["linux/arm64"],
                         "golang:1.24": ["linux/amd64", "linux/arm64"]}
    assert locked(project)[f"{host}/{ns}/almalinux:8"] == alma
    assert locked(project)[f"{host}/{ns}/rocm/dev-almalinux-8:6.3.3-complete"] == rocm
    verify = run(project, "verify", "--strict")
    assert (verify.exit_code, verify.stdout) == (0, ""), verify.output
    before = snapshot(project)
    assert run(project, "lock").exit_code == 0
    assert snapshot(project) == before
    # An arm64-only image (l4t-jetpack) in an amd64 project: its own platform, no warning about amd64.
    (project / "pinrepro.toml").unlink()
    jetpack = push(registry, layout, f"{ns}/nvidia/l4t-jetpack", "r36.4.0", "jetpack", arch="arm64")
    dockerfile.write_text(f"FROM --platform=linux/arm64 {host}/{ns}/nvidia/l4t-jetpack:r36.4.0\n")
    result = run(project, "lock")
    assert result.exit_code == 0 and "has no" not in result.stderr, result.output
    lock = lockfile.read(project / "pinrepro.lock")
    assert lock is not None
    assert {k: sorted(v.platforms) for k, v in lock.images.items()} == {
        f"{host}/{ns}/nvidia/l4t-jetpack:r36.4.0": ["linux/arm64"]}
    assert locked(project) == {f"{host}/{ns}/nvidia/l4t-jetpack:r36.4.0": jetpack}
    assert run(project, "verify", "--strict").exit_code == 0


def test_one_note_per_from_whose_digest_beats_a_build_arg(tmp_path: Path, registry: RegistryServer,
                                                           project: Path) -> None:
    host, ns = registry.host, unique(tmp_path)
    layout = tmp_path / "layout"
    app = push(registry, layout, f"{ns}/app", "1", "app")
    push(registry, layout, f"{ns}/tool", "2", "tool")
    (project / "Dockerfile").write_text(
        f"ARG VER=1\nARG TOOL={host}/{ns}/tool:2\nFROM {host}/{ns}/app:${{VER}} AS a\nFROM ${{TOOL}}\n"
        f"FROM {host}/{ns}/app:${{VER}}\n")
    result = run(project, "lock")
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if ": note: " in line]
    assert notes == [
        f"Dockerfile:{line}: note: '{host}/{ns}/app:${{VER}}' is pinned to {app[:19]}: `docker build --build-arg "
        "VER=...` still pulls that digest, whatever tag the ARG names (the digest wins); to build another "
        "version, change the default of VER here and run `pinrepro lock`"
        for line in (3, 5)
    ]
    assert run(project, "verify", "--strict").exit_code == 0
