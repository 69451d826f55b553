"""A real Debian base image and a daemonless builder: ``debootstrap`` and ``buildah``, as root.

``debootstrap --variant=minbase --include=python3-venv,python3-pip bookworm`` runs against the Debian archive (the one
network the tests may use) once a day: its tar is cached under ``$PINREPRO_TEST_CACHE`` (default
``/var/tmp/pinrepro-test-cache``), keyed by the date, so the suite pays ~30-60 s once and seconds afterwards.
buildah runs with ``STORAGE_DRIVER=vfs`` and ``BUILDAH_ISOLATION=chroot`` (no overlay, no user namespaces)
and its own storage directory, so nothing leaks between sessions or into the host's containers.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import shutil
import subprocess
import tarfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from pinrepro.inventory.dpkg import Package
from tests.support.tools import in_ci, require_tool

SUITE = "bookworm"
_DEBOOTSTRAP_TIMEOUT_S = 1200
_BUILD_TIMEOUT_S = 1500


def require_root() -> None:
    if os.geteuid() == 0:
        return
    reason = "debootstrap and buildah (chroot isolation) need root"
    if in_ci():
        pytest.fail(f"{reason}; CI=true, so this is a failure - run the tests as root in the CI image")
    pytest.skip(reason)


def cache_root() -> Path:
    return Path(os.environ.get("PINREPRO_TEST_CACHE", "/var/tmp/pinrepro-test-cache"))


def rootfs_tar() -> Path:
    """Today's minbase bookworm root file system as a tar, made once per day (and per cache directory)."""
    require_root()
    require_tool("debootstrap")
    cache = cache_root()
    cache.mkdir(parents=True, exist_ok=True)
    day = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    target = cache / f"debootstrap-{SUITE}-minbase-venv-pip-{day}.tar"
    # Two xdist workers must not both bootstrap: the second waits for the first's tar.
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        work = cache / f"rootfs-{day}-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        try:
            _run(["debootstrap", "--variant=minbase", "--include=python3-venv,python3-pip", SUITE, str(work)],
                 timeout=_DEBOOTSTRAP_TIMEOUT_S)
            partial = target.with_suffix(".partial")
            _run(["tar", "--numeric-owner", "-C", str(work), "-cf", str(partial), "."], timeout=600)
            partial.rename(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        # Only this variant's older days: a worktree on another variant keeps its own tar.
        for old in cache.glob(f"debootstrap-{SUITE}-minbase-venv-pip-*.tar"):
            if old != target:
                old.unlink()
    return target


class Buildah:
    """buildah with private storage under ``root``."""

    def __init__(self, root: Path) -> None:
        require_root()
        self.binary = require_tool("buildah")
        self.root = root
        (root / "storage").mkdir(parents=True, exist_ok=True)
        (root / "run").mkdir(parents=True, exist_ok=True)
        (root / "auth.json").write_text("{}\n")  # no logins: the tests' registry is anonymous
        self.env = {**os.environ, "STORAGE_DRIVER": "vfs", "BUILDAH_ISOLATION": "chroot",
                    "REGISTRY_AUTH_FILE": str(root / "auth.json")}

    def __call__(self, *args: str, timeout: float = _BUILD_TIMEOUT_S) -> str:
        argv = [self.binary, "--root", str(self.root / "storage"), "--runroot", str(self.root / "run"),
                "--storage-driver", "vfs", *args]
        return _run(argv, timeout=timeout, env=self.env)

    def image_from_tar(self, tar: Path, files: Mapping[str, bytes], tag: str) -> None:
        """An image of ``tar`` plus ``files`` (image path -> content) in a second layer."""
        container = self("from", "scratch").strip()
        try:
            self("add", container, str(tar), "/")
            extra = self.root / f"extra-{tag.replace('/', '_').replace(':', '_')}"
            shutil.rmtree(extra, ignore_errors=True)
            for path, data in files.items():
                target = extra / path.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            self("config", "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                 "--cmd", "/bin/bash", container)
            self("commit", "-q", container, f"{tag}-rootfs")
            self("rm", container)
            container = self("from", f"{tag}-rootfs").strip()
            self("copy", container, f"{extra}/", "/")
            self("commit", "-q", container, tag)
        finally:
            subprocess.run([self.binary, "--root", str(self.root / "storage"), "--runroot", str(self.root / "run"),
                            "--storage-driver", "vfs", "rm", container], env=self.env, capture_output=True,
                           timeout=120, check=False)

    def push(self, image: str, destination: str) -> str:
        digest_file = self.root / "pushed-digest"
        self("push", "--tls-verify=false", "--format", "oci", "--digestfile", str(digest_file), image,
             f"docker://{destination}")
        return digest_file.read_text().strip()

    def bud(self, context: Path, tag: str, *build_args: str, docker_format: bool = False) -> str:
        args = [arg for item in build_args for arg in ("--build-arg", item)]
        if docker_format:
            args += ["--format", "docker"]  # OCI image configs have no HEALTHCHECK: buildah drops it there
        return self("bud", "--network", "host", "--tls-verify=false", "--layers=false", "--pull-always", *args,
                    "-f", str(context / "Dockerfile"), "-t", tag, str(context))

    def installed(self, image: str) -> dict[str, str]:
        """Package -> version of what dpkg has installed in ``image``."""
        out = self.output(image, "dpkg-query", "-W", "-f", "${Package}\\t${Version}\\n")
        return dict(line.split("\t", 1) for line in out.splitlines() if line)

    def output(self, image: str, *command: str) -> str:
        # Once, on a loaded machine, `buildah run` exited 0 with no stdout at all (the command's output lost under
        # chroot isolation); every command run here prints something, so an empty answer is asked again once.
        for _ in range(2):
            container = self("from", "--pull-never", image).strip()
            try:
                out = self("run", container, "--", *command, timeout=300)
            finally:
                self("rm", container)
            if out.strip():
                return out
        raise AssertionError(f"buildah run {image} {' '.join(command)} printed nothing, twice")


def _run(argv: list[str], *, timeout: float, env: Mapping[str, str] | None = None) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{argv[0]} {argv[1:4]} took more than {timeout} s") from None
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(argv[:6])} failed ({result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def rootfs_packages(tar: Path) -> dict[str, str]:
    """Package -> version of the dpkg status inside the root file system ``tar``."""
    from pinrepro.inventory.dpkg import parse_status

    with tarfile.open(tar) as archive:
        member = archive.extractfile("./var/lib/dpkg/status")
        assert member is not None, f"{tar} has no dpkg status"
        return {p.name: p.version for p in parse_status(member.read()).packages}


def dpkg_query_installed(dpkg_query: str, status: Path, workdir: Path) -> set[Package]:
    """The oracle: what ``dpkg-query -W`` says is installed in a copy of ``status`` (config-files and
    half-removed packages are listed by dpkg-query but are not installed, so they are dropped here too)."""
    admin = workdir / "dpkg-admin"
    (admin / "updates").mkdir(parents=True)
    shutil.copy(status, admin / "status")
    out = subprocess.run(
        [dpkg_query, f"--admindir={admin}", "-W",
         "-f=${db:Status-Want} ${db:Status-Status} ${Package} ${Architecture} ${Version}\n"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    installed: set[Package] = set()
    for line in out.splitlines():
        want, state, name, arch, version = line.split(" ")
        if want in ("install", "hold") and state not in ("not-installed", "config-files"):
            installed.add(Package(name, version, arch))
    return installed
