"""verify as a gate: installs around the locks fail it; every finding has a place to show it at."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pinrepro.cli import cli

BYPASSES = (
    "FROM scratch\n"
    "RUN pip install requests\n"                                            # 2
    "RUN pip install -r requirements-dev.txt\n"                             # 3
    "RUN uv pip install --system torch\n"                                   # 4
    "RUN uv sync\n"                                                         # 5
    "RUN uv add httpx\n"                                                    # 6
    "RUN conda install -y numpy\n"                                          # 7
    "RUN mamba install -y scipy && micromamba install -y pandas\n"          # 8
    "RUN pipx install ruff\n"                                               # 9
    "RUN uv sync --locked && uv sync --frozen && pip --version\n"           # 10: fine
    "RUN python3 -m pip install --no-cache-dir ./dist/app.whl\n"            # 11: a local wheel, fine
)
EXPECTED = [
    (2, "install-unlocked"), (3, "install-not-a-lock"), (4, "install-unlocked"), (5, "uv-unlocked"),
    (6, "uv-unlocked"), (7, "conda-install"), (8, "conda-install"), (8, "conda-install"), (9, "pipx-install"),
]


def run(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "-C", str(root)], catch_exceptions=False)


@pytest.mark.parametrize("layers", [False, True])
def test_installs_that_bypass_the_locks_are_errors(tmp_path: Path, layers: bool) -> None:
    if layers:
        (tmp_path / "pinrepro.toml").write_text(
            '[[layers]]\nname = "base"\nrequirements = "requirements-base.in"\n'
            '[[layers]]\nname = "app"\nrequirements = "requirements-app.in"\nconstraints = ["base"]\n')
    (tmp_path / "Dockerfile").write_text(BYPASSES)
    # The lock of a project whose only FROM is scratch (and without layers to compile): no network needed.
    (tmp_path / "pinrepro.lock").write_text("schema = 1\n")
    data = json.loads(run(tmp_path, "verify", "--format", "json").stdout)
    found = [(f["line"], f["code"]) for f in data["findings"] if f["path"] == "Dockerfile"]
    assert sorted(found) == EXPECTED
    assert all(f["level"] == "error" for f in data["findings"] if f["path"] == "Dockerfile")
    assert data["exit_code"] == 1
    text = run(tmp_path, "verify")
    assert text.exit_code == 1
    assert "Dockerfile:2: error: installs requests from the index, outside the locks" in text.stdout


def test_a_lock_installed_without_hashes_or_without_no_deps(tmp_path: Path) -> None:
    (tmp_path / "pinrepro.toml").write_text(
        '[[layers]]\nname = "base"\nrequirements = "requirements-base.in"\n'
        '[[layers]]\nname = "app"\nrequirements = "requirements-app.in"\nconstraints = ["base"]\n')
    (tmp_path / "Dockerfile").write_text(
        "FROM scratch\n"
        "RUN pip install --require-hashes --no-deps -r requirements-base.lock\n"
        "RUN pip install --no-deps -r requirements-app.lock\n"
        "RUN pip install --require-hashes -r /tmp/requirements-app.lock\n"
    )
    (tmp_path / "pinrepro.lock").write_text("schema = 1\n")
    data = json.loads(run(tmp_path, "verify", "--format", "json").stdout)
    found = [(f["line"], f["code"]) for f in data["findings"] if f["path"] == "Dockerfile"]
    assert found == [(3, "install-no-hashes"), (4, "install-with-deps")]
