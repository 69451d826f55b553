"""`make demo`: a local registry seeded with example CUDA images, then `pinrepro lock`, `verify` and `check`.

The example service (examples/ml-service) builds FROM nvidia/cuda. The demo cannot reach Docker Hub, so it
starts Debian's docker-registry on loopback, pushes look-alike nvidia/cuda images there (two platforms, real
CUDA environment variables, an os-release and a dpkg status), and points pinrepro at it with the `mirrors`
setting - exactly how a team resolves through a pull-through cache. The Dockerfile keeps saying nvidia/cuda.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.aptrepo import AptRepo, Deb  # noqa: E402
from tests.support.images import build_two_platform  # noqa: E402
from tests.support.pushing import push_http  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402

APT_KEY = "/usr/share/keyrings/demo-archive.gpg"

CUDA_ENV = [
    "PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "NVIDIA_REQUIRE_CUDA=cuda>=12.4 brand=tesla,driver>=470,driver<471 brand=tesla,driver>=525,driver<526",
    "NV_CUDA_CUDART_VERSION=12.4.127-1",
    "NV_CUDA_COMPAT_PACKAGE=cuda-compat-12-4",
    "CUDA_VERSION=12.4.1",
    "NV_LIBCUBLAS_VERSION=12.4.5.8-1",
    "NV_LIBNCCL_PACKAGE_VERSION=2.21.5-1",
    "NCCL_VERSION=2.21.5-1",
    "NVIDIA_VISIBLE_DEVICES=all",
    "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
]
OS_RELEASE = b'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\nID=ubuntu\n'
DPKG_STATUS = b"".join(
    b"Package: %s\nStatus: install ok installed\nArchitecture: amd64\nVersion: %s\n\n" % (name, version)
    for name, version in [
        (b"libc6", b"2.35-0ubuntu3.7"), (b"python3.11", b"3.11.0~rc1-1~22.04"),
        (b"cuda-cudart-12-4", b"12.4.127-1"), (b"libnccl2", b"2.21.5-1+cuda12.4"),
    ]
)


def run(*args: str, cwd: Path) -> int:
    print(f"\n$ {' '.join(args)}", flush=True)
    return subprocess.call(args, cwd=cwd)


@contextlib.contextmanager
def example_project(workdir: Path) -> Iterator[Path]:
    """The example service copied into ``workdir``, configured for the local archive and registry this starts
    (both running while the context is open). tests/test_check_example.py uses it as well."""
    # The Ubuntu archive is out of reach too: a signed local apt repository with a snapshot service
    # stands in for it, and the images' apt sources point at it.
    archive = AptRepo(workdir / "apt", architectures=("amd64", "arm64"))
    for deb in (Deb("tini", "0.19.0-1"), Deb("libgomp1", "12.3.0-1ubuntu1~22.04", depends="gcc-12-base"),
                Deb("gcc-12-base", "12.3.0-1ubuntu1~22.04"), Deb("python3.11", "3.11.0~rc1-1~22.04"),
                Deb("python3.11-venv", "3.11.0~rc1-1~22.04", depends="python3.11")):
        archive.add(deb)
    archive.publish()
    archive.start()
    try:
        with RegistryServer(workdir / "registry") as registry:
            layout = workdir / "layout"
            apt_files = {"etc/apt/sources.list": archive.sources_line(APT_KEY).encode(),
                         APT_KEY.lstrip("/"): archive.keyring.read_bytes()}
            for flavour in ("devel", "runtime"):
                tag = f"12.4.1-{flavour}-ubuntu22.04"
                layers = [{"etc/os-release": OS_RELEASE, "var/lib/dpkg/status": DPKG_STATUS, **apt_files},
                          {f"usr/local/cuda/{flavour}.txt": flavour.encode()}]
                build_two_platform(layout, tag, layers, env=CUDA_ENV)
                digest = push_http(layout, tag, registry.url, "nvidia/cuda", tag)
                print(f"seeded {registry.host}/nvidia/cuda:{tag} ({digest[:19]}, linux/amd64 + linux/arm64)")

            project = workdir / "ml-service"
            shutil.copytree(ROOT / "examples" / "ml-service", project)
            with (project / "pyproject.toml").open("a") as config:
                config.write(f'\n[tool.pinrepro.mirrors]\n"docker.io" = "{registry.host}"\n')
                config.write(f'\n[tool.pinrepro.apt.snapshot_url]\nubuntu = "{archive.snapshot_template}"\n')
            yield project
    finally:
        archive.stop()


def main() -> int:
    pinrepro = str(Path(sys.executable).with_name("pinrepro"))
    with tempfile.TemporaryDirectory(prefix="pinrepro-demo-") as tmp, example_project(Path(tmp)) as project:
        status = run(pinrepro, "lock", cwd=project)
        if status == 0:
            print("\n--- the Dockerfile's FROM lines and apt pins now:")
            for line in (project / "Dockerfile").read_text().splitlines():
                if line.upper().startswith(("FROM", "ARG")) or "apt-get install" in line:
                    print(line)
            print("\n--- pinrepro.apt/runtime/sources.list (the locked archive snapshot the build mounts):")
            print((project / "pinrepro.apt/runtime/sources.list").read_text(), end="")
            run(pinrepro, "manifest", cwd=project)
            status = run(pinrepro, "verify", cwd=project)
            if status == 0:
                status = run(pinrepro, "check", cwd=project)
        return status


if __name__ == "__main__":
    raise SystemExit(main())
