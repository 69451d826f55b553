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
