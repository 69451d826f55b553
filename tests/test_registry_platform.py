"""registry/platform.py: the one home of platform and architecture names."""

from __future__ import annotations

import platform as stdlib_platform

import pytest

from pinrepro.registry.platform import (
    config_platform,
    dpkg_architecture,
    host_platform,
    index_platforms,
    normalise_arch,
    same_platform,
    uname_machine,
    without_variant,
)


@pytest.mark.parametrize(("machine", "arch"), [("x86_64", "amd64"), ("AMD64", "amd64"), ("aarch64", "arm64"),
                                               ("arm64", "arm64"), ("i686", "386"), ("ppc64le", "ppc64le"),
                                               ("s390x", "s390x")])
def test_architecture_names(machine: str, arch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert normalise_arch(machine) == arch
    monkeypatch.setattr(stdlib_platform, "machine", lambda: machine)
    assert host_platform() == f"linux/{arch}"


def test_uname_machine_is_the_inverse_for_the_cuda_platforms() -> None:
    assert uname_machine("linux/amd64") == "x86_64"
    assert uname_machine("linux/arm64") == "aarch64"
    assert uname_machine("linux/arm64/v8") == "aarch64"
    assert uname_machine("linux/s390x") is None
    assert uname_machine("windows/amd64") is None


def test_same_platform_counts_default_variants_and_aliases() -> None:
    assert same_platform("linux/arm64", "linux/arm64/v8")
    assert same_platform("linux/aarch64", "linux/arm64")
    assert same_platform("linux/amd64", "linux/amd64")
    assert not same_platform("linux/amd64", "linux/arm64")
    assert not same_platform("linux/arm64/v9", "linux/arm64")
    assert not same_platform("linux/arm/v6", "linux/arm/v7")


def test_without_variant() -> None:
    assert without_variant("linux/arm64/v8") == "linux/arm64"
    assert without_variant("linux/amd64") == "linux/amd64"


@pytest.mark.parametrize(("arch", "variant", "dpkg"), [("amd64", None, "amd64"), ("arm", "v7", "armhf"),
                                                       ("arm", "v6", "armel"), ("ppc64le", None, "ppc64el"),
                                                       ("sparc", None, None)])
def test_dpkg_names(arch: str, variant: str | None, dpkg: str | None) -> None:
    assert dpkg_architecture(arch, variant) == dpkg


def test_index_platforms_skip_attestations_and_keep_the_first() -> None:
    entries = [
        {"digest": "sha256:a", "mediaType": "m", "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": "sha256:att", "platform": {"os": "unknown", "architecture": "unknown"}},
        {"digest": "sha256:b", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"digest": "sha256:second", "platform": {"os": "linux", "architecture": "amd64"}},
        "not an entry",
        {"digest": 3, "platform": {"os": "linux", "architecture": "s390x"}},
    ]
    assert index_platforms(entries) == {"linux/amd64": ("sha256:a", "m"), "linux/arm64/v8": ("sha256:b", "")}


def test_config_platform() -> None:
    assert config_platform({"os": "linux", "architecture": "arm", "variant": "v7"}) == "linux/arm/v7"
    assert config_platform({}) == "unknown/unknown"
