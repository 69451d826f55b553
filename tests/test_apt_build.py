"""The whole story for real: a debootstrapped Debian image, `pinrepro lock`, `buildah bud` of the pinned
Dockerfile, and the built image checked against the lock; then the archive moves on and a rebuild still gets
the locked versions, from the snapshot.

Building images is slow and CPU-heavy, so the module builds twice in all (one module fixture) and every test
reads its results. Never skipped under CI=true: a missing tool or root there is a failure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from packaging.utils import canonicalize_name

from pinrepro import lockfile
from pinrepro.cli import cli
from pinrepro.lockfile import Lock
from pinrepro.reqfile import parse_lock
from tests.support.aptrepo import AptRepo, Deb
from tests.support.debian import Buildah, rootfs_packages, rootfs_tar
from tests.support.registry import RegistryServer
from tests.support.tools import require_tool
from tests.support.wheelhouse import Wheelhouse, serve

pytestmark = [pytest.mark.realregistry, pytest.mark.realbuild]

KEY = "/usr/share/keyrings/pinrepro-test.gpg"
MOUNT = "--mount=type=bind,source=pinrepro.apt,target=/run/pinrepro.apt"
DOCKERFILE = f"""\
# syntax=docker/dockerfile:1
FROM {{host}}/debian-test:bookworm AS base
RUN {MOUNT} \\
    export APT_CONFIG=/run/pinrepro.apt/base/apt.conf && apt-get update -q && \\
    apt-get install -y -q --no-install-recommends pr-tool && rm -rf /var/lib/apt/lists/*

FROM base AS app
ARG PIP_INDEX_URL
COPY requirements.lock /tmp/requirements.lock
RUN {MOUNT} \\
    export APT_CONFIG=/run/pinrepro.apt/app/apt.conf && apt-get update -q && \\
    apt-get install -y -q --no-install-recommends pr-extra ca-certificates curl && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv && \\
    /opt/venv/bin/pip install -q --no-cache-dir --require-hashes --no-deps -r /tmp/requirements.lock
"""


@dataclass(frozen=True)
class Built:
    project: Path
    lock: Lock
    dockerfile: str
    base_packages: dict[str, str]
    dpkg_first: dict[str, str]
    dpkg_second: dict[str, str]
    pip_freeze: set[str]
    verify_output: str
    verify_exit: int
    lock_output: str


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, registry: RegistryServer) -> Iterator[Built]:
    require_tool("apt-get")
    tar = rootfs_tar()
    base_packages = rootfs_packages(tar)
    work = tmp_path_factory.mktemp("apt-build")
    repo = AptRepo(work / "repo")
    for deb in (Deb("pr-lib", "1.0"), Deb("pr-tool", "1.0", depends="pr-lib (>= 1.0)"), Deb("pr-doc", "1.0"),
                Deb("pr-extra", "1.0", depends="pr-tool", recommends="pr-doc")):
        repo.add(deb)
    repo.publish()
    repo.start()
    house = Wheelhouse(work / "wheels")
    house.add("alpha", "1.0")
    house.add("beta", "2.0", "alpha>=1.0")
    buildah = Buildah(work / "buildah")
    with contextlib.ExitStack() as stack:
        stack.callback(repo.stop)
        index = f"{stack.enter_context(serve(house.root))}/simple"
        # The Debian base as an image of its own: today's debootstrap plus the tests' repository and its key.
        buildah.image_from_tar(tar, {"etc/apt/sources.list.d/pinrepro-test.list": repo.sources_line(KEY).encode(),
                                     KEY: repo.keyring.read_bytes()}, "localhost/debian-test:bookworm")
        buildah.push("localhost/debian-test:bookworm", f"{registry.host}/debian-test:bookworm")
        project = work / "project"
        project.mkdir()
        (project / "Dockerfile").write_text(DOCKERFILE.format(host=registry.host))
        (project / "requirements.in").write_text("beta\n")
        (project / "pinrepro.toml").write_text(
            f'python = "3.11"\nindex_url = "{index}"\n'
            '[[layers]]\nname = "app"\nrequirements = "requirements.in"\n'
            # The tests' repository has a snapshot service; the real archive's is not reachable from here.
            f'[apt.snapshot_url]\n"{repo.url}" = "{repo.snapshot_template}"\ndebian = "off"\n'
        )
        result = CliRunner().invoke(cli, ["lock", "-C", str(project)],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        verify = CliRunner().invoke(cli, ["verify", "--strict", "-C", str(project)],
                                    catch_exceptions=False)
        lock = lockfile.read(project / "pinrepro.lock")
        assert lock is not None
        arg = f"PIP_INDEX_URL={index}"
        buildah.bud(project, "localhost/apt-app:first", arg)
        first = buildah.installed("localhost/apt-app:first")
        freeze = set(buildah.output("localhost/apt-app:first", "/opt/venv/bin/pip", "freeze").split())

        # The archive moves on: newer versions published, the locked ones gone from the index.
        repo.add(Deb("pr-tool", "2.0", depends="pr-lib (>= 2.0)"))
        repo.add(Deb("pr-lib", "2.0"))
        repo.remove("pr-tool", "1.0")
        repo.remove("pr-lib", "1.0")
        repo.publish()
        buildah.bud(project, "localhost/apt-app:second", arg)
        second = buildah.installed("localhost/apt-app:second")
        yield Built(project, lock, (project / "Dockerfile").read_text(), base_packages, first, second, freeze,
                    verify.output, verify.exit_code, result.output)


def _expected(built: Built) -> dict[str, str]:
    packages = dict(built.base_packages)
    for stage in ("Dockerfile:base", "Dockerfile:app"):
        for name, value in built.lock.apt["stages"][stage]["linux/amd64"]["closure"].items():
            packages[name.split(":")[0]] = value.split()[0]
    return packages


def test_dockerfile_is_pinned_and_verifies(built: Built) -> None:
    assert "--no-install-recommends pr-tool=1.0 && rm" in built.dockerfile
    pins = built.lock.apt["stages"]["Dockerfile:app"]["linux/amd64"]["pins"]
    assert set(pins) == {"pr-extra", "ca-certificates", "curl"}
    assert f"pr-extra=1.0 ca-certificates={pins['ca-certificates']} curl={pins['curl']} && rm" in built.dockerfile
    assert built.verify_exit == 0, built.verify_output
    # The real archive is used live here (its snapshot service is out of reach): lock says so, once per stage.
    assert built.lock_output.count("/debian (etc/apt/sources.list:1 in ") == 2
    assert "is used live, snapshots are off for it" in built.lock_output


def test_installed_packages_equal_the_locked_closure(built: Built) -> None:
    assert built.dpkg_first == _expected(built)
    assert {"pr-lib", "pr-tool", "pr-extra", "curl", "libcurl4"} <= set(built.dpkg_first)
    assert "pr-doc" not in built.dpkg_first  # only recommended, and the RUN line says --no-install-recommends


def test_pip_freeze_equals_the_requirement_lock(built: Built) -> None:
    entries = parse_lock((built.project / "requirements.lock").read_text())
    assert {f"{e.name}=={e.version}" for e in entries} == {
        f"{canonicalize_name(n)}=={v}" for n, _, v in (line.partition("==") for line in built.pip_freeze)}


def test_rebuild_after_the_archive_moved_gets_the_same_versions(built: Built) -> None:
    assert built.dpkg_second == built.dpkg_first
    assert built.dpkg_second["pr-tool"] == "1.0"
