"""The command line users expect: -C anywhere, the project found upward, --dry-run that writes nothing, help
that matches the README, colour only where it belongs, shell completion."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pinrepro.cli import cli
from tests.support import images as im
from tests.support.registry import RegistryServer


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def unpinned_project(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\nFROM ubuntu:22.04\n")
    return root


def test_dash_c_before_and_after_the_command(tmp_path: Path) -> None:
    project = unpinned_project(tmp_path / "svc")
    before = invoke("-C", str(project), "verify", "--format", "json")
    after = invoke("verify", "--format", "json", "-C", str(project))
    assert before.exit_code == after.exit_code == 1, before.output
    assert before.stdout == after.stdout
    assert '"code": "not-locked"' in before.stdout
    # After the command wins, as the nearer one does for git's -C.
    elsewhere = unpinned_project(tmp_path / "other")
    (elsewhere / "Dockerfile").write_text("FROM scratch\n")
    both = invoke("-C", str(project), "verify", "-C", str(elsewhere), "--format", "json")
    assert '"not-locked"' not in both.stdout


@pytest.mark.parametrize("marker", ["pinrepro.toml", "pyproject.toml", "pinrepro.lock"])
def test_project_root_is_found_upward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, marker: str) -> None:
    project = unpinned_project(tmp_path / "repo")
    content = {"pinrepro.toml": "", "pyproject.toml": "[tool.pinrepro]\n", "pinrepro.lock": "schema = 1\n"}[marker]
    (project / marker).write_text(content)
    deeper = project / "services" / "api"
    deeper.mkdir(parents=True)
    # A pyproject.toml of a sub-package without [tool.pinrepro] is not the project's root.
    (project / "services" / "pyproject.toml").write_text("[project]\nname = 'api'\n")
    monkeypatch.chdir(deeper)
    result = invoke("verify", "--format", "json")
    assert result.exit_code == 1
    assert '"path": "Dockerfile"' in result.stdout and '"line": 2' in result.stdout
    monkeypatch.chdir(tmp_path)  # above every marker: the current directory, as before
    assert '"path": "Dockerfile"' not in invoke("verify", "--format", "json").stdout


@pytest.mark.realregistry
def test_dry_run_never_creates_a_file(tmp_path: Path, registry: RegistryServer, isolated_home: Path) -> None:
    layout = tmp_path / "layout"
    name = "dry" + hashlib.sha1(str(tmp_path).encode()).hexdigest()[:8]
    im.build_image(layout, name, [{"etc/os-release": b"ID=ubuntu\n"}])
    im.push_http(layout, name, registry.url, f"{name}/app", "1")
    project = tmp_path / "project"
    project.mkdir()
    (project / "Dockerfile").write_text(f"FROM {registry.host}/{name}/app:1\n")
    before, home_before = tree(project), tree(isolated_home)
    for args in (["lock", "--dry-run"], ["lock", "--check"], ["lock", "--dry-run", "--format", "json"]):
        result = invoke(*args, "-C", str(project))
        assert result.exit_code in (0, 1), result.output
        assert tree(project) == before
        assert tree(isolated_home) == home_before, sorted(set(tree(isolated_home)) - set(home_before))
