"""scan_platform against the real registry: images built here with realistic configs, pushed with skopeo,
and the manifest checked against what was put in. Also the cache, early stopping, and damaged blobs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from pinrepro.errors import InventoryError, PinreproError
from pinrepro.inventory.cache import LAYER_SCHEMA, Cache
from pinrepro.inventory.contents import PlatformContents
from pinrepro.inventory.osrelease import OsInfo
from pinrepro.inventory.scan import scan_platform
from pinrepro.reference import ImageRef
from pinrepro.registry.authn import AnonymousKeychain
from pinrepro.registry.client import PlatformManifest, RegistryClient
from tests.support import images as im
from tests.support import pushing
from tests.support.debian import dpkg_query_installed
from tests.support.registry import RegistryServer
from tests.support.tools import in_ci

pytestmark = pytest.mark.realregistry

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "inventory"
CUDA_124_ENV = json.loads((FIXTURES / "cuda-12.4.0-devel-env.json").read_text())
CUDA_132_ENV = json.loads((FIXTURES / "cuda-13.2.0-devel-arm64-env.json").read_text())
UBUNTU = b'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nID=ubuntu\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\n'
DEBIAN = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'
LABELS = {
    "org.opencontainers.image.source": "https://example.invalid/app",
    "com.nvidia.cudnn.version": "9.1.0.70",
    "maintainer": "NVIDIA CORPORATION <cudatools@nvidia.com>",
}


def stanza(name: str, version: str, arch: str = "amd64", status: str = "install ok installed") -> str:
    return f"Package: {name}\nStatus: {status}\nPriority: optional\nArchitecture: {arch}\nVersion: {version}\n" \
           f"Description: {name}\n test package\n\n"


BASE_PACKAGES = [("base-files", "12ubuntu4.6"), ("libc6", "2.35-0ubuntu3.6"), ("libfoo1", "1.0-1")]
APT_PACKAGES = [
    ("base-files", "12ubuntu4.6"), ("libc6", "2.35-0ubuntu3.6"), ("libnccl2", "2.20.5-1+cuda12.4"),
    ("libcudnn9-cuda-12", "9.1.0.70-1"), ("python3", "3.10.6-1~22.04"), ("python3.10", "3.10.12-1~22.04.4"),
    ("python3.10-minimal", "3.10.12-1~22.04.4"),
]


def cuda_layers() -> list[im.LayerSpec]:
    base: im.LayerSpec = {
        "usr/lib/os-release": UBUNTU,
        "etc/os-release": im.Symlink("../usr/lib/os-release"),
        "var/lib/dpkg/status": "".join(stanza(n, v) for n, v in BASE_PACKAGES).encode(),
        "usr/lib/x86_64-linux-gnu/libfoo.so.1": b"\x7fELF foo",
        "usr/share/doc/libfoo1/copyright": b"foo",
    }
    apt = "".join(stanza(n, v) for n, v in APT_PACKAGES)
    apt += stanza("libfoo1", "1.0-1", status="deinstall ok config-files")  # removed by apt-get purge later
    apt += stanza("libc6", "2.35-0ubuntu3.6", arch="i386")  # multiarch
    apt_layer: im.LayerSpec = {
        "var/lib/dpkg/status": apt.encode(),
        # apt-get remove libfoo1: its files are whited out.
        "usr/lib/x86_64-linux-gnu/libfoo.so.1": None,
        "usr/share/doc/libfoo1": None,
        "usr/local/bin/python3.9": b"\x7fELF hand-built python",
    }
    top: im.LayerSpec = {
        # The app layer empties /usr/local/bin: the hand-built python below is gone.
        im.opaque("usr/local/bin"): b"",
        "usr/local/bin/app": im.File(b"#!/bin/sh\n", 0o755),
        "opt/app/data.bin": os.urandom(4096),
    }
    return [base, apt_layer, top]


EXPECTED_APT = {
    "base-files": "12ubuntu4.6", "libc6": "2.35-0ubuntu3.6", "libc6:i386": "2.35-0ubuntu3.6",
    "libcudnn9-cuda-12": "9.1.0.70-1", "libnccl2": "2.20.5-1+cuda12.4", "python3": "3.10.6-1~22.04",
    "python3.10": "3.10.12-1~22.04.4", "python3.10-minimal": "3.10.12-1~22.04.4",
}


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("inventory-layout")


def client() -> RegistryClient:
    return RegistryClient(AnonymousKeychain())


def platform_of(image: im.BuiltImage) -> PlatformManifest:
    return PlatformManifest(image.digest, image.media_type, image.config_digest)


def push(layout: Path, registry: RegistryServer, tag: str, repo: str = "inv/app") -> ImageRef:
    pushing.push(layout, tag, registry.host, repo, tag)
    return ImageRef.parse(f"{registry.host}/{repo}:{tag}")


def test_cuda_image_manifest_matches_what_was_built(layout: Path, registry: RegistryServer) -> None:
    image = im.build_image(layout, "cuda", cuda_layers(), env=CUDA_124_ENV, labels=LABELS,
                           created="2024-03-05T10:11:12.123456789Z", manifest_format="docker")
    ref = push(layout, registry, "cuda")
    with client() as c:
        contents = scan_platform(c, ref, platform_of(image), cache=None)
        # Every layer was needed (os-release is only in the base layer).
        assert c.blob_bytes == sum(len(im.read_blob(layout, d)) for d in (image.config_digest, *image.layer_digests))
    assert contents.os == OsInfo("ubuntu", "22.04", "jammy", "Ubuntu 22.04.4 LTS")
    assert contents.python == "3.10.12"  # dpkg's: the /usr/local/bin python was hidden by the opaque dir
    assert dict(contents.apt) == EXPECTED_APT
    assert contents.created == "2024-03-05T10:11:12.123456789Z"
    assert dict(contents.labels) == {k: v for k, v in LABELS.items() if k != "maintainer"}
    assert contents.notes == ()
    cuda = contents.cuda
    assert cuda is not None
    assert (cuda.version, cuda.cudnn, cuda.nccl, cuda.cublas) == ("12.4.0", "9.1.0.70", "2.20.5", "12.4.2.65")
    assert (cuda.min_driver, cuda.min_driver_compat) == ("550.54.14", "525")
    assert cuda.require[0] == "cuda>=12.4" and len(cuda.require) == 31
    assert not cuda.require_implied and not cuda.require_disabled
    assert PlatformContents.from_toml(contents.to_toml()) == contents


def test_multi_platform_index_zstd(layout: Path, registry: RegistryServer) -> None:
    layers: list[im.LayerSpec] = [{
        "etc/os-release": UBUNTU,
        "var/lib/dpkg/status": (stanza("libc6", "2.39-0ubuntu8", "arm64")
                                + stanza("tzdata", "2024a-3", "all")).encode(),
    }]
    amd = im.build_image(layout, None, layers, env=CUDA_124_ENV, compression="zstd")
    arm = im.build_image(layout, None, layers, env=CUDA_132_ENV, arch="arm64", variant="v8", compression="zstd")
    im.build_index(layout, "multi", [amd, arm])
    ref = push(layout, registry, "multi")
    with client() as c:
        description = c.describe(ref)
        assert sorted(description.platforms) == ["linux/amd64", "linux/arm64/v8"]
        arm_contents = scan_platform(c, ref, description.platforms["linux/arm64/v8"], cache=None)
        amd_contents = scan_platform(c, ref, description.platforms["linux/amd64"], cache=None)
    assert arm_contents.cuda is not None and amd_contents.cuda is not None
    assert arm_contents.cuda.version == "13.2.0"
    assert arm_contents.cuda.min_driver is None  # 13.2 is newer than the table: unknown, not guessed
    assert arm_contents.cuda.to_toml()["min_driver"] == "unknown"
    assert arm_contents.cuda.min_driver_compat == "580"
    assert arm_contents.cuda.nccl is None
    # The same layer is native arm64 there, foreign on amd64.
    assert dict(arm_contents.apt) == {"libc6": "2.39-0ubuntu8", "tzdata": "2024a-3"}
    assert dict(amd_contents.apt) == {"libc6:arm64": "2.39-0ubuntu8", "tzdata": "2024a-3"}
    assert amd_contents.cuda.version == "12.4.0"


def test_stops_reading_once_everything_is_found(layout: Path, registry: RegistryServer) -> None:
    big = os.urandom(1 << 20)
    layers: list[im.LayerSpec] = [
        {"etc/os-release": DEBIAN, "var/lib/dpkg/status": stanza("old", "1").encode(), "big1": big},
        {"big2": big + b"2"},
        # A squashed top layer: everything we look for is here.
        {"etc/os-release": DEBIAN, "var/lib/dpkg/status": stanza("bash", "5.2.15-2+b2").encode()},
    ]
    image = im.build_image(layout, "early", layers, env=["PYTHON_VERSION=3.11.9", "PATH=/usr/bin"])
    ref = push(layout, registry, "early")
    with client() as c:
        contents = scan_platform(c, ref, platform_of(image), cache=None)
        top_and_config = [image.layer_digests[-1], image.config_digest]
        assert c.blob_bytes == sum(len(im.read_blob(layout, digest)) for digest in top_and_config)
    assert dict(contents.apt) == {"bash": "5.2.15-2+b2"}
    assert (contents.python, contents.cuda) == ("3.11.9", None)


def test_second_scan_downloads_nothing_and_a_corrupt_entry_is_rebuilt(
    layout: Path, registry: RegistryServer, tmp_path: Path,
) -> None:
    image = im.build_image(layout, "cached", cuda_layers(), env=CUDA_124_ENV)
    ref = push(layout, registry, "cached")
    cache = Cache(tmp_path / "cache")
    with client() as c:
        first = scan_platform(c, ref, platform_of(image), cache=cache)
        assert c.blob_bytes > 0
    with client() as c:
        second = scan_platform(c, ref, platform_of(image), cache=cache)
        assert c.blob_bytes == 0
    assert second == first
    # Corrupt one layer's entry: it is ignored, that layer alone is downloaded again, and the entry rewritten.
    entry = tmp_path / "cache" / f"layers-v{LAYER_SCHEMA}" / "sha256" / (image.layer_digests[0].split(":")[1] + ".json")
    assert entry.exists()
    entry.write_text('{"schema": 1, "digest": "truncated')
    with client() as c:
        third = scan_platform(c, ref, platform_of(image), cache=cache)
        assert c.blob_bytes == len(im.read_blob(layout, image.layer_digests[0]))
    assert third == first
    assert json.loads(entry.read_text())["digest"] == image.layer_digests[0]
    # Default location: $XDG_CACHE_HOME/pinrepro (tests point XDG_CACHE_HOME at a tmp dir).
    assert Cache().root == Path(os.environ["XDG_CACHE_HOME"]) / "pinrepro"


def test_host_dpkg_database_matches_dpkg_query(layout: Path, registry: RegistryServer, tmp_path: Path) -> None:
    dpkg_query = shutil.which("dpkg-query")
    dpkg = shutil.which("dpkg")
    status = Path("/var/lib/dpkg/status")
    if not (dpkg_query and dpkg and status.exists() and Path("/etc/os-release").exists()):
        if in_ci():
            pytest.fail("dpkg, dpkg-query, /var/lib/dpkg/status and /etc/os-release are needed under CI=true")
        pytest.skip("not a Debian-based host")
    native = subprocess.run([dpkg, "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
    docker_arch = {"amd64": "amd64", "arm64": "arm64", "ppc64el": "ppc64le", "s390x": "s390x"}.get(native)
    if docker_arch is None:
        pytest.skip(f"no Docker platform for dpkg architecture {native}")
    os_release = Path("/etc/os-release")
    layer: dict[str, bytes | im.Symlink] = {"var/lib/dpkg/status": status.read_bytes()}
    if os_release.is_symlink():
        target = os.readlink(os_release)
        layer["etc/os-release"] = im.Symlink(target)
        layer[os.path.normpath(os.path.join("etc", target))] = os_release.read_bytes()
    else:
        layer["etc/os-release"] = os_release.read_bytes()
    image = im.build_image(layout, "host", [layer], arch=docker_arch)  # type: ignore[list-item]
    ref = push(layout, registry, "host")
    with client() as c:
        contents = scan_platform(c, ref, platform_of(image), cache=None)
    expected = {(p.name if p.architecture in (native, "all") else f"{p.name}:{p.architecture}", p.version)
                for p in dpkg_query_installed(dpkg_query, status, tmp_path)}
    assert set(contents.apt.items()) == expected
    assert len(expected) > 50
    host_values = dict(line.split("=", 1) for line in os_release.read_text().splitlines() if "=" in line)
    assert contents.os is not None
    assert contents.os.id == host_values["ID"].strip('"')
    assert contents.os.version_id == host_values.get("VERSION_ID", "").strip('"') or None


def _upload(registry: RegistryServer, repo: str, tag: str, layers: list[bytes], config: dict[str, object]) -> tuple[
        ImageRef, PlatformManifest]:
    session = requests.Session()
    config_bytes = json.dumps(config).encode()
    config_digest = pushing.upload_blob(session, registry.url, repo, config_bytes)
    descriptors = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": pushing.upload_blob(session, registry.url, repo, blob), "size": len(blob)}
                   for blob in layers]
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": im.OCI_MANIFEST,
        "config": {"mediaType": im.OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": descriptors,
    }).encode()
    digest = pushing.put_manifest(session, registry.url, repo, tag, manifest, im.OCI_MANIFEST)
    session.close()
    return ImageRef.parse(f"{registry.host}/{repo}:{tag}"), PlatformManifest(digest, im.OCI_MANIFEST, config_digest)


CONFIG = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}


def test_truncated_gzip_layer(registry: RegistryServer) -> None:
    blob = im.compress(im.layer_tar({"etc/os-release": DEBIAN, "data": os.urandom(50_000)}), "gzip")
    truncated = blob[: len(blob) - 3000]
    ref, platform = _upload(registry, "inv/bad", "truncated", [truncated], CONFIG)
    with client() as c, pytest.raises(InventoryError) as caught:
        scan_platform(c, ref, platform, cache=None)
    assert caught.value.line().startswith(
        f"{registry.host}/inv/bad: layer {im.sha256_digest(truncated)} (application/vnd.oci.image.layer.v1.tar+gzip)"
        " is not a valid gzip-compressed tar stream: "
    )


def test_layer_that_does_not_match_its_digest(registry: RegistryServer, tmp_path: Path) -> None:
    blob = im.compress(im.layer_tar({"etc/os-release": DEBIAN, "data": os.urandom(50_000)}), "gzip")
    ref, platform = _upload(registry, "inv/bad", "tampered", [blob], CONFIG)
    digest = im.sha256_digest(blob)
    hex_digest = digest.split(":")[1]
    stored = registry.workdir / "storage" / "docker" / "registry" / "v2" / "blobs" / "sha256" / hex_digest[:2] / \
        hex_digest / "data"
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes: what a broken proxy or disk would serve
    stored.write_bytes(bytes(data))
    cache = Cache(tmp_path / "cache")
    with client() as c, pytest.raises(PinreproError) as caught:
        scan_platform(c, ref, platform, cache=cache)
    assert f"{registry.host}/inv/bad" in caught.value.line()
    assert "digest" in caught.value.line() and digest in caught.value.line()
    assert cache.layer(digest) is None  # nothing was cached from bad bytes


def test_config_without_env_and_no_dpkg(registry: RegistryServer) -> None:
    blob = im.compress(im.layer_tar({"bin/busybox": b"\x7fELF"}), "gzip")
    ref, platform = _upload(registry, "inv/bare", "bare", [blob], {**CONFIG, "config": None})
    with client() as c:
        contents = scan_platform(c, ref, platform, cache=None)
    assert contents == PlatformContents(
        os=None, python=None, cuda=None, apt={}, created=None, labels={},
        notes=("no os-release found (etc/os-release, usr/lib/os-release): the OS is unknown",),
    )
    assert contents.to_toml() == {"apt": {}, "notes": list(contents.notes)}


def test_index_digest_is_refused(layout: Path, registry: RegistryServer) -> None:
    amd = im.build_image(layout, None, [{"etc/os-release": DEBIAN}])
    index = im.build_index(layout, "idx", [amd])
    ref = push(layout, registry, "idx")
    with client() as c, pytest.raises(InventoryError) as caught:
        scan_platform(c, ref, PlatformManifest(index.digest, index.media_type, None), cache=None)
    assert caught.value.line() == (
        f"{registry.host}/inv/app: manifest {index.digest} is not a single-platform image manifest - pass the "
        "digest of a platform's manifest, not of the index"
    )


def test_distroless_status_d_with_a_deleted_package(layout: Path, registry: RegistryServer) -> None:
    def entry(name: str, version: str) -> bytes:
        return f"Package: {name}\nVersion: {version}\nArchitecture: amd64\nMaintainer: x\n".encode()

    layers: list[im.LayerSpec] = [
        {
            "usr/lib/os-release": DEBIAN,  # no etc/os-release at all: os-release(5) falls back to usr/lib
            "var/lib/dpkg/status.d/base-files": entry("base-files", "12.4+deb12u5"),
            "var/lib/dpkg/status.d/base-files.md5sums": b"0123  etc/debian_version\n",
            "var/lib/dpkg/status.d/tzdata": entry("tzdata", "2024a-0+deb12u1"),
            "usr/share/zoneinfo/UTC": b"TZif",
        },
        # "Removing" tzdata the distroless way: its stanza and its files are whited out.
        {"var/lib/dpkg/status.d/tzdata": None, "usr/share/zoneinfo": None},
        {"var/lib/dpkg/status.d/libssl3": entry("libssl3", "3.0.11-1~deb12u2")},
    ]
    image = im.build_image(layout, "distroless", layers, compression="zstd")
    ref = push(layout, registry, "distroless")
    with client() as c:
        contents = scan_platform(c, ref, platform_of(image), cache=None)
    assert dict(contents.apt) == {"base-files": "12.4+deb12u5", "libssl3": "3.0.11-1~deb12u2"}
    assert contents.os == OsInfo("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)")
    assert contents.python is None
