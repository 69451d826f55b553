"""Review of #9 and #10 through the CLI: verify must fail when the lock no longer matches what the build
would install, and lock must stay one line, exit 2, files unchanged on bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import images as im
from tests.support import pushing
from tests.support.aptproject import make_project
from tests.support.aptrepo import AptRepo
from tests.support.cliproject import clean_env, layered_project, pinrepro, run, snapshot
from tests.support.registry import RegistryServer, free_port
from tests.support.wheelhouse import Wheelhouse, serve

pytestmark = pytest.mark.realregistry


@pytest.fixture
def project(tmp_path: Path, registry: RegistryServer, apt_repo: AptRepo) -> Path:
    return make_project(tmp_path, registry, apt_repo)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    house = Wheelhouse(tmp_path_factory.mktemp("review-c-wheels"))
    house.add("helper", "1.0")
    with serve(house.root) as url:
        yield f"{url}/simple"


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


@pytest.mark.parametrize("resolver", ["pip-compile", "uv"])
@pytest.mark.parametrize("option", ["--extra-index-url", "-i", "--find-links"])
def test_an_index_written_in_a_requirement_file_is_refused(tmp_path: Path, index: str, resolver: str,
                                                           option: str) -> None:
    """pytorch's README pattern, ``--extra-index-url .../cu124`` in the .in file: the resolver used it, but the
    lock named only the configured index (so ``pip install -r`` in the image could not find ``+cu124``) and a
    dead index there was never probed (pip-compile: exit 0 from the other indexes). One line, exit 2 instead."""
    dead = f"http://${{INDEX_USER}}:${{INDEX_TOKEN}}@127.0.0.1:{free_port()}/simple"
    root = layered_project(tmp_path / "p", f'resolver = "{resolver}"\nindex_url = "{index}"\n',
                     {"base": f"{option} {dead}\nhelper\n"})
    before = snapshot(root)

    done = pinrepro(root, "lock", env=clean_env(INDEX_USER="bot", INDEX_TOKEN="pw-0d4e1f"), timeout=60)

    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: requirements-base.in:1: {option} {dead} sets a package index in a "
                                  "requirement file"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "pw-0d4e1f" not in done.stdout + done.stderr
    assert snapshot(root) == before


def test_an_unreadable_apt_source_with_a_password_is_reported_without_it(tmp_path: Path, registry: RegistryServer,
                                                                         apt_repo: AptRepo) -> None:
    root = make_project(tmp_path, registry, apt_repo, repo="debian-private")
    layout = tmp_path / "private-layout"
    # A private mirror whose credentials sit in the URI (apt allows it), written without its suite.
    im.build_image(layout, "deb", [{"etc/os-release": b"ID=debian\nVERSION_CODENAME=bookworm\n",
                                    "etc/apt/sources.list": b"deb https://bot:s3cret-pw@127.0.0.1:9/debian\n"}])
    pushing.push(layout, "deb", registry.host, "debian-private", "bookworm")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    result = run(root, "lock")
    assert result.exit_code == 2, result.output
    assert "etc/apt/sources.list:1: cannot read the apt source 'deb https://127.0.0.1:9/debian'" in result.output
    assert "s3cret-pw" not in result.output
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_an_install_inside_if_or_for_is_pinned_and_verified(project: Path) -> None:
    edit(project, "RUN apt-get install -y pr-extra && rm -rf /var/lib/apt/lists/*\n",
         "RUN if true; then apt-get install -y pr-extra; fi \\\n && for x in 1; do apt-get install -y pr-doc; done\n")
    result = run(project, "lock")
    assert result.exit_code == 0, result.output
    text = (project / "Dockerfile").read_text()
    assert "then apt-get install -y pr-extra=1.0; fi" in text and "do apt-get install -y pr-doc=1.0; done" in text
    assert codes(project) == set()
    edit(project, "pr-doc=1.0;", "pr-doc=1.0 pr-lib;")
    assert "apt-unpinned" in codes(project)


@pytest.mark.parametrize("copy", ["COPY extra.list /etc/apt/sources.list.d/extra.list",
                                  'ADD ["extra.sources", "/etc/apt/sources.list.d/"]', "COPY apt/ /etc/apt/"])
def test_a_repository_copied_in_makes_the_stage_unpinnable(project: Path, copy: str) -> None:
    """A sources file COPYed into the stage adds a repository the base image does not have, as an
    ``echo deb ... > sources.list.d`` does: its installs are reported with the line, never resolved from the
    base image's sources (a version from the wrong repository)."""
    edit(project, "FROM base AS app\n", f"FROM base AS app\n{copy}\n")
    result = run(project, "lock")
    assert result.exit_code == 0, result.output
    assert "Dockerfile:5: warning: this COPY adds an apt repository" in result.output.replace("ADD", "COPY")
    text = (project / "Dockerfile").read_text()
    assert "pr-tool=1.0" in text and "install -y pr-extra &&" in text
    report = json.loads(run(project, "verify", "--format", "json").output)
    assert ("apt-repository", 5) in {(f["code"], f["line"]) for f in report["findings"]}


@pytest.mark.parametrize("run_line", ["RUN bash -c 'apt-get install -y pr-extra'",
                                      'RUN ["apt-get", "install", "-y", "pr-extra"]'])
def test_an_install_pinrepro_cannot_read_is_reported_not_silently_floating(project: Path, run_line: str) -> None:
    edit(project, "RUN apt-get install -y pr-extra && rm -rf /var/lib/apt/lists/*", run_line)
    assert run(project, "lock").exit_code == 0
    report = json.loads(run(project, "verify", "--format", "json").output)
    assert ("apt-hidden", 5) in {(f["code"], f["line"]) for f in report["findings"]}


def test_a_name_with_its_native_architecture_is_pinned(project: Path) -> None:
    """apt's Inst line drops the native ``:amd64``: the pin was never written and verify asked for a lock that
    could not help."""
    edit(project, "install -y pr-extra", "install -y pr-extra:amd64")
    assert run(project, "lock").exit_code == 0
    assert "install -y pr-extra:amd64=1.0 &&" in (project / "Dockerfile").read_text()
    assert codes(project) == set()
