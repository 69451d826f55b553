"""The example service (examples/ml-service) really builds: `pinrepro lock`, then `buildah bud` of the pinned
Dockerfile exactly as the example writes it, and the built image checked against the lock.

The nvidia/cuda tags the Dockerfile names are seeded into the tests' registry the way `make demo` seeds its
look-alikes (the same CUDA environment, resolved through the same `mirrors` setting), but this time from a
runnable root file system: the debootstrapped Debian bookworm of tests/support/debian.py. Like real nvidia/cuda
images, it is not where the service's Python comes from: the example installs python3.11 and python3.11-venv
with apt (pinned like tini and libgomp1, from the real Debian archive, used live because its snapshot service is
out of reach) and installs the locks into a virtual environment. The requirement locks carry the tests' loopback
wheel index (`--index-url`, from `index_url`), so pip inside the build fetches from loopback only.

One build (it takes minutes); every test reads its results. Never skipped under CI=true.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from packaging.utils import canonicalize_name

from pinrepro import lockfile
from pinrepro.cli import cli
from pinrepro.lockfile import Lock
from pinrepro.reqfile import parse_lock
from tests.support.debian import Buildah, rootfs_packages, rootfs_tar
from tests.support.example import ROOT, demo
from tests.support.images import OCI_INDEX, OCI_MANIFEST, compress, layer_tar, sha256_digest
from tests.support.pushing import put_manifest, upload_blob
from tests.support.registry import RegistryServer
from tests.support.tools import require_tool
from tests.support.wheelhouse import Wheelhouse, serve

pytestmark = [pytest.mark.realregistry, pytest.mark.realbuild]

TAGS = ("12.4.1-devel-ubuntu22.04", "12.4.1-runtime-ubuntu22.04")


@dataclass(frozen=True)
class Built:
    project: Path
    lock: Lock
    base_packages: dict[str, str]
    dpkg: dict[str, str]
    pip_freeze: set[str]
    config: dict[str, Any]
    verify: tuple[int, str]
    check: tuple[int, str]


def _seed(buildah: Buildah, registry: RegistryServer, tar: Path) -> None:
    """nvidia/cuda look-alike tags in ``registry``: the Debian rootfs (pushed once by buildah), with the CUDA
    environment in its config, indexed for linux/amd64 and linux/arm64 (the example's platforms; the arm64
    entry shares the amd64 layers - it is resolved by `lock`, never run)."""
    marker = b"a look-alike of nvidia/cuda for pinrepro's tests\n"
    buildah.image_from_tar(tar, {"etc/pinrepro-lookalike": marker}, "localhost/cuda-lookalike:base")
    pushed = buildah.push("localhost/cuda-lookalike:base", f"{registry.host}/nvidia/cuda:debian-rootfs")
    cuda_env = demo().CUDA_ENV
    with tarfile.open(tar) as archive:
        member = archive.extractfile("./var/lib/dpkg/status")
        assert member is not None
        status = member.read()
    # apt resolving for arm64 must see arm64 packages installed, or every installed package's dependencies
    # look unmet: the arm64 entry gets one more layer, the same dpkg status with its architecture.
    arm64_status = layer_tar({"var/lib/dpkg/status": status.replace(b"Architecture: amd64\n",
                                                                     b"Architecture: arm64\n")})
    arm64_layer = compress(arm64_status, "gzip")
    with requests.Session() as http:
        base = f"{registry.url}/v2/nvidia/cuda"
        manifest = http.get(f"{base}/manifests/{pushed}", headers={"Accept": OCI_MANIFEST}, timeout=60).json()
        config = http.get(f"{base}/blobs/{manifest['config']['digest']}", timeout=60).json()
        for tag in TAGS:
            entries = []
            for arch, variant in (("amd64", None), ("arm64", "v8")):
                child = json.loads(json.dumps(config))
                child["architecture"] = arch
                child.pop("variant", None)
                if variant:
                    child["variant"] = variant
                env = [e for e in child["config"].get("Env", []) if not e.startswith("PATH=")]
                child["config"]["Env"] = [*cuda_env, *env]
                child["config"]["Labels"] = {"com.nvidia.cudnn.version": "", "maintainer": "NVIDIA CORPORATION",
                                             "pinrepro.test.flavour": tag}
                layers = list(manifest["layers"])
                if arch == "arm64":
                    child["rootfs"]["diff_ids"] = [*child["rootfs"]["diff_ids"], sha256_digest(arm64_status)]
                    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                   "digest": upload_blob(http, registry.url, "nvidia/cuda", arm64_layer),
                                   "size": len(arm64_layer)})
                blob = json.dumps(child, sort_keys=True).encode()
                upload_blob(http, registry.url, "nvidia/cuda", blob)
                body = {**manifest, "mediaType": OCI_MANIFEST, "layers": layers,
                        "config": {**manifest["config"], "digest": sha256_digest(blob), "size": len(blob)}}
                data = json.dumps(body, sort_keys=True).encode()
                digest = put_manifest(http, registry.url, "nvidia/cuda", sha256_digest(data), data, OCI_MANIFEST)
                platform = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
                entries.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": len(data),
                                "platform": platform})
            index_doc = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
            put_manifest(http, registry.url, "nvidia/cuda", tag, index_doc, OCI_INDEX)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, registry: RegistryServer) -> Iterator[Built]:
    require_tool("apt-get")
    tar = rootfs_tar()
    base_packages = rootfs_packages(tar)
    work = tmp_path_factory.mktemp("example-build")
    house = Wheelhouse(work / "wheels")
    house.add("numpy", "1.26.4")
    house.add("fastapi", "0.115.5", "starlette>=0.40")
    house.add("starlette", "0.41.3")
    house.add("uvicorn", "0.32.1")
    with serve(house.root) as url:
        index = f"{url}/simple"
        buildah = Buildah(work / "buildah")
        # buildah resolves docker.io/nvidia/cuda through the tests' registry, as pinrepro does through `mirrors`.
        conf = work / "registries.conf"
        # Short names are Docker Hub's, as for Docker.
        conf.write_text('unqualified-search-registries = ["docker.io"]\n'
                        f'[[registry]]\nprefix = "docker.io/nvidia/cuda"\n'
                        f'location = "{registry.host}/nvidia/cuda"\ninsecure = true\n')
        buildah.env["CONTAINERS_REGISTRIES_CONF"] = str(conf)
        _seed(buildah, registry, tar)
        project = work / "ml-service"
        shutil.copytree(ROOT / "examples" / "ml-service", project)
        config = project / "pyproject.toml"
        config.write_text(config.read_text().replace("[tool.pinrepro]\n",
                                                     f'[tool.pinrepro]\nindex_url = "{index}"\n', 1)
                          + f'\n[tool.pinrepro.mirrors]\n"docker.io" = "{registry.host}"\n'
                          # The real archive's snapshot service is not reachable from here: used live.
                          '\n[tool.pinrepro.apt.snapshot_url]\ndebian = "off"\n')
        locked = CliRunner().invoke(cli, ["lock", "-C", str(project)], catch_exceptions=False)
        assert locked.exit_code == 0, locked.output
        lock = lockfile.read(project / "pinrepro.lock")
        assert lock is not None
        # BuildKit sets TARGETARCH by itself; buildah 1.28 does not, so it is passed as Docker would set it.
        buildah.bud(project, "localhost/ml-service:built", "TARGETARCH=amd64", docker_format=True)
        dpkg = buildah.installed("localhost/ml-service:built")
        freeze = set(buildah.output("localhost/ml-service:built", "pip", "freeze").split())
        inspect = json.loads(buildah("inspect", "--type", "image", "localhost/ml-service:built"))
    verify = CliRunner().invoke(cli, ["verify", "--strict", "-C", str(project)], catch_exceptions=False)
    check = CliRunner().invoke(cli, ["check", "--strict", "-C", str(project)], catch_exceptions=False)
    yield Built(project, lock, base_packages, dpkg, freeze, inspect["Docker"]["config"],
                (verify.exit_code, verify.output), (check.exit_code, check.output))


def test_installed_packages_are_the_locked_closure(built: Built) -> None:
    stage = built.lock.apt["stages"]["Dockerfile:runtime"]["linux/amd64"]
    expected = dict(built.base_packages)
    for name, value in stage["closure"].items():
        expected[name.split(":")[0]] = value.split()[0]
    assert built.dpkg == expected
    named = ("tini", "libgomp1", "python3.11", "python3.11-venv")
    assert set(named) == set(stage["pins"])
    assert {"tini", "libgomp1"} <= set(built.dpkg) - set(built.base_packages)  # python3.11 is in the base here
    pinned = (built.project / "Dockerfile").read_text()
    assert " ".join(f"{name}={stage['pins'][name]}" for name in named) + " &&" in pinned
    builder = built.lock.apt["stages"]["Dockerfile:builder"]["linux/amd64"]
    assert {"python3.11", "python3.11-venv"} == set(builder["pins"])
    froms = [line for line in pinned.splitlines() if line.startswith("FROM ")]
    assert len(froms) == 2 and all("@sha256:" in line for line in froms)


def test_pip_freeze_equals_the_amd64_requirement_lock(built: Built) -> None:
    locked = set()
    for name in ("requirements-base.amd64.lock", "requirements-app.amd64.lock"):
        text = (built.project / name).read_text()
        assert "\n--index-url http://127.0.0.1:" in text  # pip in the build fetches from loopback only
        locked |= {f"{e.name}=={e.version}" for e in parse_lock(text)}
    assert locked == {f"{canonicalize_name(n)}=={v}" for n, _, v in (line.partition("==") for line in built.pip_freeze)}
    assert {"numpy==1.26.4", "fastapi==0.115.5", "starlette==0.41.3", "uvicorn==0.32.1"} == locked


def test_runs_as_a_non_root_user_with_a_healthcheck(built: Built) -> None:
    assert built.config["User"] == "app"
    assert built.config["Healthcheck"]["Test"][0] == "CMD"
    assert "/ready" in built.config["Healthcheck"]["Test"][-1]


def test_verify_and_check_pass(built: Built) -> None:
    assert built.verify[0] == 0, built.verify[1]
    assert built.check[0] == 0, built.check[1]
