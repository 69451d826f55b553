"""The scan as `pinrepro lock` runs it (run_lock -> _ImageResolver -> scan_platform) against the real registry:
the contents land in the lock, and the layer cache under $XDG_CACHE_HOME means a repeated `lock --upgrade`
downloads no blob it has read before - counted with the registry client's own ``blob_bytes``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pinrepro import lockfile
from pinrepro.config import load
from pinrepro.inventory.cache import Cache
from pinrepro.inventory.contents import PlatformContents
from pinrepro.inventory.osrelease import OsInfo
from pinrepro.lock import LockOutcome, LockServices, Upgrade, run_lock
from pinrepro.registry.authn import AnonymousKeychain
from pinrepro.registry.client import RegistryClient
from tests.support import images as im
from tests.support import pushing
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.realregistry

UBUNTU = b'ID=ubuntu\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\n'
ENV = ["PATH=/usr/local/cuda/bin:/usr/bin:/bin", "CUDA_VERSION=12.4.1", "NCCL_VERSION=2.21.5-1",
       "NVIDIA_REQUIRE_CUDA=cuda>=12.4 brand=tesla,driver>=470,driver<471"]


def stanza(name: str, version: str) -> str:
    return f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n\n"


# os-release only in the bottom layer and nothing of interest in the top one: a first scan reads every layer,
# so a later scan that reads none of the lower ones can only have taken them from the cache.
BASE: im.LayerSpec = {
    "etc/os-release": UBUNTU,
    "var/lib/dpkg/status": stanza("libc6", "2.35-0ubuntu3.7").encode(),
    "usr/lib/big.so": os.urandom(256 * 1024),  # random: gzip cannot shrink it, so its bytes are visible
}
APT: im.LayerSpec = {
    "var/lib/dpkg/status": (stanza("libc6", "2.35-0ubuntu3.7") + stanza("libnccl2", "2.21.5-1+cuda12.4")).encode(),
}


def top(marker: bytes) -> im.LayerSpec:
    return {"opt/app/marker": marker}


def publish(layout: Path, registry: RegistryServer, repo: str, marker: bytes) -> im.BuiltImage:
    """Push a one-platform index (as real base images are; a bare image manifest is the xfail test below) to
    ``repo:12.4.1``, its top layer holding ``marker``; returns its one image."""
    image = im.build_image(layout, None, [BASE, APT, top(marker)], env=ENV)
    tag = marker.decode()
    im.build_index(layout, tag, [image])
    pushing.push(layout, tag, registry.host, repo, "12.4.1")
    return image


def client() -> RegistryClient:
    # As run_lock builds its own: the client's config reads and the scan share one content-addressed cache.
    return RegistryClient(AnonymousKeychain(), blob_cache=Cache())


def blob_size(layout: Path, *digests: str) -> int:
    return sum(len(im.read_blob(layout, digest)) for digest in digests)


@pytest.fixture
def project(tmp_path: Path, registry: RegistryServer) -> tuple[Path, str, str]:
    """A project whose Dockerfile names a fresh repository; returns (project root, repository, lock key)."""
    repo = f"inv-lock/{tmp_path.name.lower()}"
    root = tmp_path / "project"
    root.mkdir()
    (root / "Dockerfile").write_text(f"FROM {registry.host}/{repo}:12.4.1\nRUN true\n")
    return root, repo, f"{registry.host}/{repo}:12.4.1"


def lock(root: Path, c: RegistryClient, *, upgrade: bool = False) -> LockOutcome:
    return run_lock(load(root), upgrade=Upgrade(everything=upgrade), services=LockServices(registry=lambda: c))


def contents(root: Path, key: str) -> PlatformContents:
    read = lockfile.read(root / "pinrepro.lock")
    assert read is not None
    recorded = read.images[key].platforms["linux/amd64"].contents
    assert recorded is not None
    return PlatformContents.from_toml(recorded)


def test_lock_records_contents_and_a_second_upgrade_downloads_nothing(
    tmp_path: Path, registry: RegistryServer, project: tuple[Path, str, str],
) -> None:
    root, repo, key = project
    layout = tmp_path / "layout"
    image = publish(layout, registry, repo, b"one")

    with client() as c:
        first = lock(root, c)
        assert c.blob_bytes == blob_size(layout, image.config_digest, *image.layer_digests)
    assert first.changed
    recorded = contents(root, key)
    assert recorded.os == OsInfo("ubuntu", "22.04", "jammy")
    assert dict(recorded.apt) == {"libc6": "2.35-0ubuntu3.7", "libnccl2": "2.21.5-1+cuda12.4"}
    assert recorded.cuda is not None
    assert (recorded.cuda.version, recorded.cuda.nccl, recorded.cuda.min_driver) == ("12.4.1", "2.21.5", "550.54.15")
    # One apt package per line in the lock, so that a diff of the lock reads well.
    text = (root / "pinrepro.lock").read_text()
    assert '\nlibc6 = "2.35-0ubuntu3.7"\nlibnccl2 = "2.21.5-1+cuda12.4"\n' in text

    # The tag did not move: --upgrade asks the registry (HEAD) and downloads no blob.
    with client() as c:
        again = lock(root, c, upgrade=True)
        assert c.blob_bytes == 0
    assert not again.changed

    # The lock lost its contents (a fresh lock, as in a second checkout): the same digests are scanned again,
    # but the manifest, config and every layer come from the cache - zero blob bytes, the same contents.
    (root / "pinrepro.lock").unlink()
    with client() as c:
        relocked = lock(root, c, upgrade=True)
        assert c.blob_bytes == 0
    assert relocked.changed
    assert contents(root, key) == recorded
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "pinrepro"
    for digest in image.layer_digests:
        assert (cache / "layers-v1" / "sha256" / f"{digest.split(':')[1]}.json").is_file()


def test_moved_tag_downloads_only_its_new_config_and_layer(
    tmp_path: Path, registry: RegistryServer, project: tuple[Path, str, str],
) -> None:
    root, repo, key = project
    layout = tmp_path / "layout"
    old = publish(layout, registry, repo, b"one")
    with client() as c:
        lock(root, c)
    before = contents(root, key)

    # Upstream rebuilds the tag: same base and apt layers, a new top layer (so a new config and digest).
    new = publish(layout, registry, repo, b"two")
    assert new.layer_digests[:2] == old.layer_digests[:2] and new.layer_digests[2] != old.layer_digests[2]
    with client() as c:
        moved = lock(root, c, upgrade=True)
        # Unchanged layers cost nothing: only the new config and the new top layer are downloaded.
        assert c.blob_bytes == blob_size(layout, new.config_digest, new.layer_digests[2])
    assert moved.changed
    read = lockfile.read(root / "pinrepro.lock")
    assert read is not None
    assert read.images[key].platforms["linux/amd64"].digest == new.digest
    assert contents(root, key) == before  # nothing inside moved but the app layer

    (root / "pinrepro.lock").unlink()
    with client() as c:
        lock(root, c, upgrade=True)
        assert c.blob_bytes == 0


def test_single_platform_image_relock_downloads_nothing(
    tmp_path: Path, registry: RegistryServer, project: tuple[Path, str, str],
) -> None:
    root, repo, _ = project
    layout = tmp_path / "layout"
    image = im.build_image(layout, "bare", [BASE, APT, top(b"one")], env=ENV)  # no index above it
    pushing.push(layout, "bare", registry.host, repo, "12.4.1")
    with client() as c:
        lock(root, c)
        # describe() reads the config to learn the platform; the scan finds it in the shared cache.
        assert c.blob_bytes == blob_size(layout, image.config_digest, *image.layer_digests)
    (root / "pinrepro.lock").unlink()
    with client() as c:
        lock(root, c, upgrade=True)
        assert c.blob_bytes == 0


def test_scans_get_as_many_threads_as_the_lookups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scan waiting for a layer another scan reads holds a thread, not a request: with only as many scan threads
    as the per-host cap, every scan queued behind such waits asked for its manifest late (issue #15)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "Dockerfile").write_text("FROM example.com/app:1\n")
    from pinrepro.lockflow.images import ImageResolver

    with RegistryClient(AnonymousKeychain(), per_registry=3) as client, \
            ImageResolver(load(tmp_path), LockServices(registry=lambda: client)) as resolver:
        _, threads = resolver._scanner()
    assert threads == client.max_workers == 6
