"""The example service (examples/ml-service) passes `pinrepro check` with no finding - after a real `pinrepro
lock`, set up exactly as `make demo` sets it up (examples/demo.py: nvidia/cuda look-alikes with a real CUDA
environment on Debian's docker-registry, a signed local apt archive with a snapshot service), with the Python
layers compiled against a local wheel index instead of PyPI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pinrepro import lockfile
from pinrepro.cli import cli
from tests.support.example import demo
from tests.support.tools import require_tool
from tests.support.wheelhouse import Wheelhouse

pytestmark = pytest.mark.realregistry

def test_example_service_passes_check(tmp_path: Path) -> None:
    require_tool("apt-get")  # apt pinning resolves the runtime stage's apt installs with the host's apt-get
    house = Wheelhouse(tmp_path / "wheels")
    house.add("numpy", "1.26.4")
    house.add("fastapi", "0.115.5", "starlette>=0.40")
    house.add("starlette", "0.41.3")
    house.add("uvicorn", "0.32.1")
    with demo().example_project(tmp_path / "demo") as project:
        config = project / "pyproject.toml"
        # The wheel index replaces PyPI for every layer.
        config.write_text(config.read_text().replace("[tool.pinrepro]\n",
                                                     f'[tool.pinrepro]\nindex_url = "{house.index_url}"\n', 1))
        locked = CliRunner().invoke(cli, ["lock", "-C", str(project)], catch_exceptions=False)
        assert locked.exit_code == 0, locked.output
        lock = lockfile.read(project / "pinrepro.lock")
        assert lock is not None and len(lock.images) == 2
        checked = CliRunner().invoke(cli, ["check", "-C", str(project), "--strict", "--format", "json"],
                                     catch_exceptions=False)
    report = json.loads(checked.stdout)
    assert (checked.exit_code, report["findings"], report["suppressed"]) == (0, [], [])
    assert report["notes"] == []  # compose.yaml is there: item 10 was checked too
