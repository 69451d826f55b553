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
