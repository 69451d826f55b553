"""Defects found reviewing #8 and #16 through the CLI, each pinned by a test that failed before its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from pinrepro import lockfile
from tests.support.registry import RegistryServer
from tests.test_lock_follows_reference import locked, push, run, unique


@pytest.mark.realregistry
def test_from_platform_from_an_arg_with_a_literal_default_records_that_platform(
        tmp_path: Path, registry: RegistryServer) -> None:
    """`ARG JETSON=linux/arm64` + `FROM --platform=${JETSON}` pulls linux/arm64, as the literal flag does: the
    lock records that platform, not the configured linux/amd64 (and warns of no missing amd64 image)."""
    host, ns = registry.host, unique(tmp_path)
    jetpack = push(registry, tmp_path / "layout", f"{ns}/nvidia/l4t-jetpack", "r36", "jetpack", arch="arm64")
    project = tmp_path / "project"
    project.mkdir()
    (project / "Dockerfile").write_text(
        "ARG JETSON_PLATFORM=linux/arm64\n"
        f"FROM --platform=${{JETSON_PLATFORM}} {host}/{ns}/nvidia/l4t-jetpack:r36 AS jetson\n"
        f"FROM --platform=$BUILDPLATFORM {host}/{ns}/nvidia/l4t-jetpack:r36 AS tools\n"
    )
    result = run(project, "lock")
    assert result.exit_code == 0, result.output
    assert "has no" in result.stderr  # the $BUILDPLATFORM stage still pulls the configured linux/amd64
    lock = lockfile.read(project / "pinrepro.lock")
    assert lock is not None
    assert {k: sorted(v.platforms) for k, v in lock.images.items()} == {
        f"{host}/{ns}/nvidia/l4t-jetpack:r36": ["linux/amd64", "linux/arm64"]}
    (project / "Dockerfile").write_text(
        "ARG JETSON_PLATFORM=linux/arm64\n"
        f"FROM --platform=${{JETSON_PLATFORM}} {host}/{ns}/nvidia/l4t-jetpack:r36 AS jetson\n"
    )
    result = run(project, "lock")
    assert result.exit_code == 0 and "has no" not in result.stderr, result.output
    lock = lockfile.read(project / "pinrepro.lock")
    assert lock is not None
    assert {k: sorted(v.platforms) for k, v in lock.images.items()} == {
        f"{host}/{ns}/nvidia/l4t-jetpack:r36": ["linux/arm64"]}
    assert locked(project) == {f"{host}/{ns}/nvidia/l4t-jetpack:r36": jetpack}
    verify = run(project, "verify", "--strict")
    assert (verify.exit_code, verify.stdout) == (0, ""), verify.output


@pytest.mark.realregistry
@pytest.mark.parametrize("digest", ["md5:" + "a" * 64, "sha512:" + "b" * 64])
def test_a_digest_docker_cannot_use_is_a_dockerfile_error(tmp_path: Path, registry: RegistryServer,
                                                         digest: str) -> None:
    """`FROM img:1@md5:...` is refused by docker build (go-digest knows sha256/384/512 only): one line naming the
    Dockerfile and line, exit 2, before any registry is asked (it was a registry error after four retries)."""
    host, ns = registry.host, unique(tmp_path)
    push(registry, tmp_path / "layout", f"{ns}/app", "1", "app")
    project = tmp_path / "project"
    project.mkdir()
    text = f"FROM scratch\nFROM {host}/{ns}/app:1@{digest}\n"
    (project / "Dockerfile").write_text(text)
    for command in (["lock"], ["verify"]):
        result = run(project, *command)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: Dockerfile:2: invalid image reference"), lines
        assert "is not a digest algorithm" in lines[0] or "has exactly 128 lower-case hex digits" in lines[0]
    assert sorted(p.name for p in project.iterdir()) == ["Dockerfile"]
    assert (project / "Dockerfile").read_text() == text
