from __future__ import annotations

from pathlib import Path

import pytest

from pinrepro import lockfile
from pinrepro.errors import LockfileError
from pinrepro.lockfile import ImageLock, LayerLock, Lock, PlatformLock

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def sample() -> Lock:
    return Lock(
        images={
            "docker.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04": ImageLock(
                digest=D1,
                media_type="application/vnd.oci.image.index.v1+json",
                sites=("Dockerfile:3",),
                platforms={
                    "linux/amd64": PlatformLock(digest=D2, contents={"apt": {"zlib1g": "1:1.2.11", "bash": "5.1"}}),
                    "linux/arm64": PlatformLock(absent=True),
                },
            ),
            "docker.io/library/ubuntu:latest": ImageLock(digest=D2, media_type="m", implicit_tag=True),
        },
        layers={"base": LayerLock(requirements="b.in", lock="b.lock", input_sha256="i", output_sha256="o",
                                  options_sha256="p", resolver="pip-compile", resolver_version="7.6.2",
                                  python="3.11", constraints={})},
    )


def test_round_trip_and_stable_text() -> None:
    text = lockfile.dumps(sample())
    assert text.startswith("# This file is written by `pinrepro lock`.")
    assert "schema = 1" in text
    assert lockfile.loads(text) == sample()
    assert lockfile.dumps(lockfile.loads(text)) == text


def test_one_apt_package_per_line_sorted() -> None:
    text = lockfile.dumps(sample())
    apt = text.split('.apt]\n', 1)[1].splitlines()[:2]
    assert apt == ['bash = "5.1"', 'zlib1g = "1:1.2.11"']


def test_missing_lock_reads_as_none(tmp_path: Path) -> None:
    assert lockfile.read(tmp_path / "pinrepro.lock") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("schema = ", "corrupted lock file, not valid TOML"),
        ("schema = 2", "unsupported lock schema 2"),
        ("images = 1", "unsupported lock schema None"),
        ("schema = 1\nimages = 3", "corrupted lock file ('images' must be a table)"),
        ("schema = 1\n[images.x]\nmedia_type = 'm'",
         "corrupted lock file (image 'x': 'digest' must be a non-empty string)"),
        ("schema = 1\n[images.x]\ndigest = 'd'\nmedia_type = 'm'\nsites = 'Dockerfile'",
         "corrupted lock file ('sites' must be a list of strings)"),
    ],
)
def test_corrupted_lock_is_reported(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "pinrepro.lock"
    path.write_text(text)
    with pytest.raises(LockfileError) as info:
        lockfile.read(path)
    assert info.value.line().startswith(f"pinrepro.lock: {message}")


def test_every_key_dumps_writes_is_one_loads_knows() -> None:
    """Every field set, contents included: the lists of known keys (lockfile, inventory.contents) must keep up with
    what pinrepro writes, or its own lock would read as corrupted."""
    from pinrepro.inventory.contents import CudaInfo, PlatformContents
    from pinrepro.inventory.osrelease import OsInfo
    from pinrepro.lockfile import UrlLock

    contents = PlatformContents(
        os=OsInfo("ubuntu", "22.04", "jammy", "Ubuntu 22.04.4 LTS"), python="3.10.12",
        cuda=CudaInfo(version="12.4.1", cudnn="9.1.0.70-1", nccl="2.21.5-1", cublas="12.4.5.8-1",
                      min_driver="550.54.15", min_driver_compat="525", require=("cuda>=12.4",), require_implied=True,
                      require_disabled=True),
        apt={"libc6": "2.35-0ubuntu3.8"}, created="2024-04-17T20:11:03Z", labels={"maintainer": "NVIDIA"},
        notes=("1 dpkg stanza could not be read",))
    full = Lock(
        images={"docker.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04": ImageLock(
            digest=D1, media_type="m", sites=("Dockerfile:1",), implicit_tag=True,
            platforms={"linux/amd64": PlatformLock(digest=D2, contents=contents.to_toml()),
                       "linux/arm64": PlatformLock(absent=True)})},
        layers={"base": LayerLock(requirements="b.in", lock="b.lock", input_sha256="i", output_sha256="o",
                                  options_sha256="p", resolver="uv", resolver_version="0.5.1", python="3.11",
                                  constraints={"sys": "x"}, platforms={"linux/amd64": "b-amd64.lock"})},
        urls={"https://example.org/a.tgz": UrlLock(checksum=D1, size=10, sites=("Dockerfile:2",), ref="v1")},
        apt={"stages": {"Dockerfile:1": {"linux/amd64": {"curl": "7.81.0"}}}},
    )
    loaded = lockfile.loads(lockfile.dumps(full))
    assert loaded == full
    platform = loaded.images["docker.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04"].platforms["linux/amd64"]
    assert platform.contents is not None
    assert PlatformContents.from_toml({"digest": D2, **platform.contents}) == contents
