"""The manifest from a lock: text table, JSON document, and the diff between two locks."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from pinrepro import lockfile
from pinrepro.errors import LockfileError
from pinrepro.inventory.contents import CudaInfo, PlatformContents
from pinrepro.inventory.osrelease import OsInfo
from pinrepro.lockdiff import Change, ImageDiff, LockDiff, diff
from pinrepro.lockfile import ImageLock, Lock, PlatformLock
from pinrepro.manifest import render_diff_text, render_json, render_text

D = {c: "sha256:" + c * 64 for c in "abcdef0123"}
CUDA = CudaInfo(
    version="12.4.0", cudnn="9.1.0.70", nccl="2.20.5", cublas="12.4.2.65", min_driver="550.54.14",
    min_driver_compat="525", require=("cuda>=12.4", "brand=tesla,driver>=470,driver<471"),
)
CUDA_CONTENTS = PlatformContents(
    os=OsInfo("ubuntu", "22.04", "jammy", "Ubuntu 22.04.4 LTS"),
    python="3.10.12",
    cuda=CUDA,
    apt={"libc6": "2.35-0ubuntu3.6", "libc6:i386": "2.35-0ubuntu3.6", "libnccl2": "2.20.5-1+cuda12.4"},
    created="2024-03-05T10:11:12Z",
    labels={"org.opencontainers.image.version": "12.4.0"},
)
PY_CONTENTS = PlatformContents(os=OsInfo("debian", "12", "bookworm"), python="3.11.9", apt={"bash": "5.2.15-2+b2"})


def make_lock(cuda: PlatformContents = CUDA_CONTENTS, cuda_digest: str = D["a"], py_digest: str = D["c"],
              extra: dict[str, ImageLock] | None = None) -> Lock:
    return Lock(images={
        "nvcr.io/nvidia/cuda:12.4.0-devel-ubuntu22.04": ImageLock(
            digest=cuda_digest, media_type="application/vnd.oci.image.index.v1+json",
            sites=("Dockerfile:1",),
            platforms={
                "linux/amd64": PlatformLock(digest=D["b"], contents=cuda.to_toml()),
                "linux/s390x": PlatformLock(absent=True),
            },
        ),
        "docker.io/library/python:3.11": ImageLock(
            digest=py_digest, media_type="application/vnd.oci.image.index.v1+json",
            platforms={"linux/amd64": PlatformLock(digest=D["d"], contents=PY_CONTENTS.to_toml())},
        ),
        **(extra or {}),
    })


def test_lockfile_round_trip_keeps_contents() -> None:
    lock = make_lock()
    text = lockfile.dumps(lock)
    # One apt package per line, one NVIDIA_REQUIRE_CUDA clause per line.
    assert '\n"libc6:i386" = "2.35-0ubuntu3.6"\n' in text
    assert '\nrequire = [\n    "cuda>=12.4",\n    "brand=tesla,driver>=470,driver<471",\n]\n' in text
    again = lockfile.loads(text)
    platform = again.images["nvcr.io/nvidia/cuda:12.4.0-devel-ubuntu22.04"].platforms["linux/amd64"]
    assert platform.contents is not None
    assert PlatformContents.from_toml(platform.contents) == CUDA_CONTENTS
    assert render_text(again) == render_text(lock)


def test_render_text() -> None:
    assert render_text(make_lock()) == (
        f"docker.io/library/python:3.11  {D['c'][:19]}\n"
        f"  linux/amd64  {D['d'][:19]}\n"
        "    os      debian 12 (bookworm)\n"
        "    python  3.11.9\n"
        "    cuda    none\n"
        "    apt     1 packages\n"
        "\n"
        f"nvcr.io/nvidia/cuda:12.4.0-devel-ubuntu22.04  {D['a'][:19]}\n"
        f"  linux/amd64  {D['b'][:19]}\n"
        "    os          ubuntu 22.04 (jammy)\n"
        "    python      3.10.12\n"
        "    cuda        12.4.0 (cuDNN 9.1.0.70, NCCL 2.20.5, cuBLAS 12.4.2.65)\n"
        "    min driver  550.54.14 (>= 525 with minor-version compatibility)\n"
        "    apt         3 packages\n"
        "    created     2024-03-05T10:11:12Z\n"
        "  linux/s390x  absent: the image has no such platform"
    )


def test_render_text_unknowns_and_packages() -> None:
    contents = PlatformContents(cuda=CudaInfo(version="13.2.0", min_driver_compat="580", require_disabled=True),
                                apt={"zlib1g": "1:1.2.13"}, notes=("var/lib/dpkg/status: 2 unreadable stanza(s)",))
    lock = Lock(images={"r/x:1": ImageLock(digest=D["e"], media_type="m", platforms={
        "linux/arm64/v8": PlatformLock(digest=D["f"], contents=contents.to_toml()),
        "linux/amd64": PlatformLock(digest=D["0"]),
    })})
    assert render_text(lock, packages=True).splitlines()[1:] == [
        f"  linux/amd64  {D['0'][:19]}",
        "    contents not recorded",
        f"  linux/arm64/v8  {D['f'][:19]}",
        "    os          unknown",
        "    python      unknown",
        "    cuda        13.2.0",
        "    min driver  unknown (>= 580 with minor-version compatibility)",
        "    require     NVIDIA_DISABLE_REQUIRE=true: the runtime does not check the driver",
        "    apt         1 packages",
        "    note: var/lib/dpkg/status: 2 unreadable stanza(s)",
        "      zlib1g  1:1.2.13",
    ]
    assert render_text(Lock()) == "no images are pinned in the lock"


def test_render_json_shape() -> None:
    document = render_json(make_lock())
    json.dumps(document)  # serialisable
    assert [image["ref"] for image in document["images"]] == [
        "docker.io/library/python:3.11", "nvcr.io/nvidia/cuda:12.4.0-devel-ubuntu22.04",
    ]
    cuda_image = document["images"][1]
    assert cuda_image["digest"] == D["a"]
    amd64 = cuda_image["platforms"]["linux/amd64"]
    assert amd64["digest"] == D["b"]
    assert amd64["os"] == {"id": "ubuntu", "version_id": "22.04", "codename": "jammy",
                           "pretty_name": "Ubuntu 22.04.4 LTS"}
    assert amd64["python"] == "3.10.12"
    assert amd64["cuda"] == {
        "version": "12.4.0", "cudnn": "9.1.0.70", "nccl": "2.20.5", "cublas": "12.4.2.65",
        "min_driver": "550.54.14", "min_driver_compat": "525",
        "require": ["cuda>=12.4", "brand=tesla,driver>=470,driver<471"],
        "require_implied": False, "require_disabled": False,
    }
    assert amd64["apt"] == {"libc6": "2.35-0ubuntu3.6", "libc6:i386": "2.35-0ubuntu3.6",
                            "libnccl2": "2.20.5-1+cuda12.4"}
    assert amd64["recorded"] is True and amd64["absent"] is False
    assert cuda_image["platforms"]["linux/s390x"]["absent"] is True
    assert document["images"][0]["platforms"]["linux/amd64"]["cuda"] is None


def test_diff_of_equal_locks_is_empty() -> None:
    result = diff(make_lock(), make_lock())
    assert result == LockDiff()
    assert result.empty
    assert render_diff_text(result) == "the manifest did not change"


def moved_locks() -> tuple[Lock, Lock]:
    """An old lock and a new one: an image removed, one added, and the CUDA image moved with new contents."""
    newer = replace(
        CUDA_CONTENTS,
        cuda=replace(CUDA, version="12.4.1", min_driver="550.54.15", cublas="12.4.5.8"),
        apt={"libc6": "2.35-0ubuntu3.7", "libnccl2": "2.20.5-1+cuda12.4", "libcudnn9-cuda-12": "9.1.0.70-1"},
        python="3.10.14",
    )
    extra = {"ghcr.io/x/new:1": ImageLock(digest=D["1"], media_type="m")}
    old = make_lock(extra={"ghcr.io/x/gone:1": ImageLock(digest=D["2"], media_type="m")})
    new = make_lock(newer, cuda_digest=D["e"], extra=extra)
    new = replace(new, images={**new.images, "nvcr.io/nvidia/cuda:12.4.0-devel-ubuntu22.04": replace(
        new.images["nvcr.io/nvidia/cuda:12.4.0-devel-ubuntu22.04"],
        platforms={**new.images["nvcr.io/nvidia/cuda:12.4.0-devel-ubuntu22.04"].platforms,
                   "linux/amd64": PlatformLock(digest=D["f"], contents=newer.to_toml())})})
    return old, new


def test_diff_reports_images_fields_and_apt() -> None:
    result = diff(*moved_locks())
    assert result.images == (
        ImageDiff("ghcr.io/x/gone:1", D["2"], None),
        ImageDiff("ghcr.io/x/new:1", None, D["1"]),
        ImageDiff("nvcr.io/nvidia/cuda:12.4.0-devel-ubuntu22.04", D["a"], D["e"],
                  "2024-03-05T10:11:12Z", "2024-03-05T10:11:12Z"),
    )
    assert [image.kind for image in result.images] == ["removed", "added", "moved"]
    (platform,) = result.platforms
    assert platform.digest == Change("digest", D["b"], D["f"])
    assert platform.fields == (
        Change("python", "3.10.12", "3.10.14"),
        Change("cuda", "12.4.0", "12.4.1"),
        Change("cublas", "12.4.2.65", "12.4.5.8"),
        Change("min_driver", "550.54.14", "550.54.15"),
    )
    assert platform.min_driver == Change("min_driver", "550.54.14", "550.54.15")
    assert platform.apt == (
        Change("libc6", "2.35-0ubuntu3.6", "2.35-0ubuntu3.7"),
        Change("libc6:i386", "2.35-0ubuntu3.6", None),
        Change("libcudnn9-cuda-12", None, "9.1.0.70-1"),
    )
    assert [c.kind for c in platform.apt] == ["changed", "removed", "added"]
    assert render_diff_text(result) == "\n".join([
        f"removed  ghcr.io/x/gone:1  {D['2'][:19]}",
        f"added    ghcr.io/x/new:1  {D['1'][:19]}",
        f"moved    nvcr.io/nvidia/cuda:12.4.0-devel-ubuntu22.04  {D['a'][:19]} -> {D['e'][:19]}",
        "",
        "nvcr.io/nvidia/cuda:12.4.0-devel-ubuntu22.04  linux/amd64",
        f"  digest      {D['b'][:19]} -> {D['f'][:19]}",
        "  Python      3.10.12 -> 3.10.14",
        "  CUDA        12.4.0 -> 12.4.1",
        "  cuBLAS      12.4.2.65 -> 12.4.5.8",
        "  min driver  550.54.14 -> 550.54.15",
        "  apt: 1 added, 1 removed, 1 changed",
        "    ~ libc6 2.35-0ubuntu3.6 -> 2.35-0ubuntu3.7",
        "    - libc6:i386 2.35-0ubuntu3.6",
        "    + libcudnn9-cuda-12 9.1.0.70-1",
    ])


def test_diff_does_not_compare_unrecorded_contents() -> None:
    old = make_lock()
    unrecorded = replace(old.images["docker.io/library/python:3.11"],
                         platforms={"linux/amd64": PlatformLock(digest=D["d"])})
    new = replace(old, images={**old.images, "docker.io/library/python:3.11": unrecorded})
    assert diff(old, new).empty


def test_diff_platform_disappears() -> None:
    old = make_lock()
    image = old.images["docker.io/library/python:3.11"]
    new = replace(old, images={**old.images, "docker.io/library/python:3.11": replace(
        image, platforms={"linux/amd64": PlatformLock(absent=True)})})
    (platform,) = diff(old, new).platforms
    assert platform.fields == (Change("platform", "present", "absent"),)
    assert platform.apt == ()


def test_corrupt_contents_is_a_lockfile_error() -> None:
    lock = Lock(images={"r/x:1": ImageLock(digest=D["e"], media_type="m", platforms={
        "linux/amd64": PlatformLock(digest=D["f"], contents={"apt": {"bash": 5}})})})
    with pytest.raises(LockfileError) as caught:
        render_text(lock)
    assert caught.value.line() == (
        "pinrepro.lock [r/x:1]: corrupted lock file: platform contents 'apt' must be a table of strings - restore it "
        "from version control, or run `pinrepro lock --upgrade` to record the contents anew"
    )


def test_diff_to_json() -> None:
    document = diff(*moved_locks()).to_json()
    assert json.loads(json.dumps(document)) == document
    assert document == {
        "changed": True,
        "images": [
            {"ref": "ghcr.io/x/gone:1", "change": "removed", "old_digest": D["2"], "new_digest": None,
             "old_created": None, "new_created": None},
            {"ref": "ghcr.io/x/new:1", "change": "added", "old_digest": None, "new_digest": D["1"],
             "old_created": None, "new_created": None},
            {"ref": "nvcr.io/nvidia/cuda:12.4.0-devel-ubuntu22.04", "change": "moved", "old_digest": D["a"],
             "new_digest": D["e"], "old_created": "2024-03-05T10:11:12Z", "new_created": "2024-03-05T10:11:12Z"},
        ],
        "platforms": [{
            "ref": "nvcr.io/nvidia/cuda:12.4.0-devel-ubuntu22.04",
            "platform": "linux/amd64",
            "digest": {"old": D["b"], "new": D["f"]},
            "fields": {
                "python": {"old": "3.10.12", "new": "3.10.14"},
                "cuda": {"old": "12.4.0", "new": "12.4.1"},
                "cublas": {"old": "12.4.2.65", "new": "12.4.5.8"},
                "min_driver": {"old": "550.54.14", "new": "550.54.15"},
            },
            "apt": {
                "added": {"libcudnn9-cuda-12": "9.1.0.70-1"},
                "removed": {"libc6:i386": "2.35-0ubuntu3.6"},
                "changed": {"libc6": {"old": "2.35-0ubuntu3.6", "new": "2.35-0ubuntu3.7"}},
            },
        }],
    }
    assert LockDiff().to_json() == {"changed": False, "images": [], "platforms": []}


def test_diff_text_tells_unknown_from_absent() -> None:
    """A Python image that gains CUDA: its CUDA was absent ("none"); an OS nobody could read is "unknown"."""
    old = make_lock()
    image = old.images["docker.io/library/python:3.11"]
    before = replace(PY_CONTENTS, os=None)
    after = replace(PY_CONTENTS, cuda=CudaInfo(version="13.2.0", min_driver_compat="580"))
    old = replace(old, images={**old.images, "docker.io/library/python:3.11": replace(
        image, platforms={"linux/amd64": PlatformLock(digest=D["d"], contents=before.to_toml())})})
    new = replace(old, images={**old.images, "docker.io/library/python:3.11": replace(
        image, platforms={"linux/amd64": PlatformLock(digest=D["d"], contents=after.to_toml())})})
    assert render_diff_text(diff(old, new)) == "\n".join([
        "docker.io/library/python:3.11  linux/amd64",
        "  OS                   unknown -> debian 12 (bookworm)",
        "  CUDA                 none -> 13.2.0",
        "  min driver           none -> unknown",
        "  min driver (compat)  none -> 580",
    ])
