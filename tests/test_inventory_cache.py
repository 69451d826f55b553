"""The content-addressed cache (layer facts, small blobs) and building contents from facts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pinrepro.inventory.cache import LAYER_SCHEMA, Cache, default_cache_dir
from pinrepro.inventory.dpkg import Package, StatusFile
from pinrepro.inventory.imageconfig import ImageConfig
from pinrepro.inventory.layers import FileFact, LayerFacts
from pinrepro.inventory.overlay import Overlay
from pinrepro.inventory.scan import apt_table, build_contents

DIGEST = "sha256:" + "c" * 64
FACTS = LayerFacts(
    files={"var/lib/dpkg/status": FileFact(kind="file", status=StatusFile((Package("bash", "5", "amd64"),), 2))},
    whiteouts=frozenset({"etc/os-release"}),
    opaque=frozenset({"usr/local/bin"}),
)


def test_layer_round_trip(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    assert cache.layer(DIGEST) is None
    cache.put_layer(DIGEST, FACTS)
    assert cache.layer(DIGEST) == FACTS
    path = tmp_path / f"layers-v{LAYER_SCHEMA}" / "sha256" / ("c" * 64 + ".json")
    assert json.loads(path.read_text())["digest"] == DIGEST
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left behind


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"[]", b'{"schema": 1}', b'{"schema": 99, "digest": "x", "facts": {}}',
     json.dumps({"schema": LAYER_SCHEMA, "digest": "sha256:" + "d" * 64, "facts": {}}).encode(),
     json.dumps({"schema": LAYER_SCHEMA, "digest": DIGEST, "facts": {"files": {"x": {"kind": "dir"}},
                                                                      "whiteouts": [], "opaque": []}}).encode()],
)
def test_corrupt_or_foreign_entries_are_ignored(tmp_path: Path, content: bytes) -> None:
    cache = Cache(tmp_path)
    path = tmp_path / f"layers-v{LAYER_SCHEMA}" / "sha256" / ("c" * 64 + ".json")
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    assert cache.layer(DIGEST) is None
    cache.put_layer(DIGEST, FACTS)  # rebuilt
    assert cache.layer(DIGEST) == FACTS


def test_blobs_are_verified_on_read(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    data = b'{"architecture": "amd64"}'
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    cache.put_blob(digest, data)
    assert cache.blob(digest) == data
    (tmp_path / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(b"tampered")
    assert cache.blob(digest) is None


def test_bad_digests_never_become_paths(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    cache.put_blob("sha256:../../etc/passwd", b"x")
    cache.put_layer("md5:abc", FACTS)
    assert not (tmp_path / "c").exists()
    assert cache.blob("sha256:../../etc/passwd") is None


def test_unwritable_cache_costs_speed_not_correctness(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cache = Cache(blocker / "cache")
    cache.put_layer(DIGEST, FACTS)  # no exception
    assert cache.layer(DIGEST) is None


def test_default_cache_dir() -> None:
    assert default_cache_dir({"XDG_CACHE_HOME": "/x/cache", "HOME": "/home/u"}) == Path("/x/cache/pinrepro")
    assert default_cache_dir({"XDG_CACHE_HOME": "relative", "HOME": "/home/u"}) == Path("/home/u/.cache/pinrepro")
    assert default_cache_dir({"HOME": "/home/u"}) == Path("/home/u/.cache/pinrepro")


def test_contents_note_unreadable_stanzas_and_missing_os() -> None:
    overlay = Overlay()
    overlay.add(FACTS)
    config = ImageConfig.parse(b'{"architecture": "amd64", "os": "linux"}', where="r", digest=DIGEST)
    contents = build_contents(config, overlay)
    assert dict(contents.apt) == {"bash": "5"}
    assert contents.notes == (
        "no os-release found (etc/os-release, usr/lib/os-release): the OS is unknown",
        "var/lib/dpkg/status: 2 unreadable stanza(s) skipped; the apt list may be incomplete",
    )


def test_apt_table_guesses_native_arch_only_when_unknown() -> None:
    packages = (Package("a1", "1", "arm64"), Package("b1", "1", "arm64"), Package("c1", "1", "amd64"),
                Package("d1", "1", "all"))
    assert apt_table(packages, None) == {"a1": "1", "b1": "1", "c1:amd64": "1", "d1": "1"}
    assert apt_table(packages, "amd64") == {"a1:arm64": "1", "b1:arm64": "1", "c1": "1", "d1": "1"}


@pytest.mark.parametrize("data", [b"", b"null", b"[1]", b"\xff"])
def test_config_that_is_not_an_object(data: bytes) -> None:
    from pinrepro.errors import InventoryError

    with pytest.raises(InventoryError) as caught:
        ImageConfig.parse(data, where="reg/repo", digest=DIGEST)
    assert caught.value.line() == (
        f"reg/repo: config blob {DIGEST} is not a JSON object - the image is not a container image, or the "
        "registry is damaged; check the reference"
    )


def test_config_shapes() -> None:
    config = ImageConfig.parse(json.dumps({
        "architecture": "arm64", "variant": "v8", "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PYTHON_VERSION=3.12.1", "X"], "Labels": {
            "org.opencontainers.image.version": "1", "com.nvidia.volumes.needed": "nvidia_driver", "other": "x"}},
    }).encode(), where="r", digest=DIGEST)
    assert config.python == "3.12.1"
    assert config.labels_of_interest == {"com.nvidia.volumes.needed": "nvidia_driver",
                                         "org.opencontainers.image.version": "1"}
    assert ImageConfig.parse(b'{"config": {"Env": ["PYTHON_VERSION=latest"]}}', where="r", digest=DIGEST).python \
        is None
