"""Review of #9 and #10 through the CLI: verify must fail when the lock no longer matches what the build
would install, and lock must stay one line, exit 2, files unchanged on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.aptrepo import AptRepo
from tests.support.registry import RegistryServer
from tests.test_apt_lock import make_project, run

pytestmark = pytest.mark.realregistry


@pytest.fixture
def project(tmp_path: Path, registry: RegistryServer, apt_repo: AptRepo) -> Path:
    return make_project(tmp_path, registry, apt_repo)


def codes(root: Path) -> set[str]:
    result = run(root, "verify", "--format", "json")
    return {f["code"] for f in json.loads(result.output)["findings"] if f["level"] == "error"}


def edit(root: Path, old: str, new: str) -> None:
    text = (root / "Dockerfile").read_text()
    assert old in text
    (root / "Dockerfile").write_text(text.replace(old, new))


def test_verify_flags_an_install_whose_recommends_changed_since_lock(project: Path) -> None:
    """Dropping --no-install-recommends keeps every pin but installs pr-doc too: the closure is not the lock's."""
    assert run(project, "lock").exit_code == 0
    edit(project, "--no-install-recommends ", "")
    assert "apt-drift" in codes(project)


def test_verify_flags_a_target_release_added_after_lock(project: Path) -> None:
    assert run(project, "lock").exit_code == 0
    edit(project, "install -y pr-extra", "install -y -t pinrepro pr-extra")
    assert "apt-drift" in codes(project)


def test_verify_flags_an_arg_default_that_names_another_package(project: Path) -> None:
    edit(project, "FROM base AS app\n", "FROM base AS app\nARG TOOL=pr-doc\n")
    edit(project, "install -y pr-extra", 'install -y pr-extra "$TOOL"')
    assert run(project, "lock").exit_code == 0
    assert codes(project) == set()
    edit(project, "ARG TOOL=pr-doc", "ARG TOOL=pr-lib")
    assert "apt-drift" in codes(project)


def test_a_heredoc_run_is_pinned_and_verified(project: Path) -> None:
    edit(project, "RUN apt-get install -y pr-extra && rm -rf /var/lib/apt/lists/*\n",
         "RUN <<EOF\nset -e\napt-get install -y pr-extra\nEOF\n")
    assert run(project, "lock").exit_code == 0
    assert "apt-get install -y pr-extra=1.0\n" in (project / "Dockerfile").read_text()
    assert codes(project) == set()
    edit(project, "pr-extra=1.0\n", "pr-extra=1.0 pr-lib\n")
    assert "apt-unpinned" in codes(project)
