"""The example service (examples/ml-service) passes `pinrepro check` with no finding - after a real `pinrepro
lock`, as `make demo` does it: nvidia/cuda look-alikes (real CUDA environment) on Debian's docker-registry,
reached through the `mirrors` setting, and the Python layers compiled against a local wheel index."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pinrepro import lockfile
from pinrepro.cli import cli
from tests.support.images import build_two_platform, push_http
from tests.support.registry import RegistryServer
from tests.wheelhouse import Wheelhouse

pytestmark = pytest.mark.realregistry

ROOT = Path(__file__).resolve().parent.parent
CUDA_ENV = [
    "PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "NVIDIA_REQUIRE_CUDA=cuda>=12.4 brand=tesla,driver>=470,driver<471 brand=tesla,driver>=525,driver<526",
    "CUDA_VERSION=12.4.1",
    "NV_LIBCUBLAS_VERSION=12.4.5.8-1",
    "NCCL_VERSION=2.21.5-1",
]
OS_RELEASE = b'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\nID=ubuntu\n'
DPKG = b"Package: python3.11\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.11.0~rc1-1~22.04\n\n"


def test_example_service_passes_check(tmp_path: Path) -> None:
    house = Wheelhouse(tmp_path / "wheels")
    house.add("numpy", "1.26.4")
    house.add("fastapi", "0.115.5", "starlette>=0.40")
    house.add("starlette", "0.41.3")
    house.add("uvicorn", "0.32.1")
    with RegistryServer(tmp_path / "registry") as registry:
        for flavour in ("devel", "runtime"):
            tag = f"12.4.1-{flavour}-ubuntu22.04"
            layout = tmp_path / "layout"
            build_two_platform(layout, tag, [{"etc/os-release": OS_RELEASE, "var/lib/dpkg/status": DPKG},
                                             {f"usr/local/cuda/{flavour}.txt": flavour.encode()}], env=CUDA_ENV)
            push_http(layout, tag, registry.url, "nvidia/cuda", tag)
        project = tmp_path / "ml-service"
        shutil.copytree(ROOT / "examples" / "ml-service", project)
        config = project / "pyproject.toml"
        # The wheel index replaces PyPI for every layer; the mirror stands in for Docker Hub.
        text = config.read_text().replace("[tool.pinrepro]\n", f'[tool.pinrepro]\nindex_url = "{house.index_url}"\n')
        config.write_text(text + f'\n[tool.pinrepro.mirrors]\n"docker.io" = "{registry.host}"\n')
        locked = CliRunner().invoke(cli, ["lock", "-C", str(project)], catch_exceptions=False)
        assert locked.exit_code == 0, locked.output
    lock = lockfile.read(project / "pinrepro.lock")
    assert lock is not None and len(lock.images) == 2
    checked = CliRunner().invoke(cli, ["check", "-C", str(project), "--strict", "--format", "json"],
                                 catch_exceptions=False)
    report = json.loads(checked.stdout)
    assert (checked.exit_code, report["findings"], report["suppressed"]) == (0, [], [])
    assert report["notes"] == []  # compose.yaml is there: item 10 was checked too
