"""The refresh tests' project and fakes: a git project seeded with the scenario's old files, a stand-in for
``run_lock`` that "resolves" to the scenario's new files, and the GitHub API mocked with `responses`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import responses
from click.testing import CliRunner, Result
from responses import matchers

from pinrepro.cli import cli
from pinrepro.config import Config
from pinrepro.findings import Finding
from pinrepro.lockfile import Lock
from tests.support.gitrepos import Repos, make_repos, sh
from tests.support.scenario import scenario

TOKEN = "ghs_RefreshT0kenThatMustNeverLeak0123456"
API = "https://api.github.com"
PULLS = f"{API}/repos/octo-org/octo-repo/pulls"
BRANCH = "pinrepro/refresh"
ENV = {"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": "octo-org/octo-repo"}


@dataclass(frozen=True)
class FakeOutcome:
    old: Lock | None
    new: Lock
    files: Mapping[Path, bytes]
    old_files: Mapping[Path, bytes | None]
    findings: list[Finding] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.files)


class FakeLock:
    """Stands in for pinrepro.lock.run_lock: "resolves" to ``target`` and rewrites what differs, like the real one."""

    def __init__(self, target: Mapping[str, bytes], old: Lock | None = None, new: Lock | None = None) -> None:
        self.target = dict(target)
        self.old = old
        self.new = new
        self.calls: list[dict[str, Any]] = []

    def __call__(self, config: Config, **kwargs: Any) -> FakeOutcome:
        self.calls.append(kwargs)
        files: dict[Path, bytes] = {}
        old_files: dict[Path, bytes | None] = {}
        for name, data in self.target.items():
            path = config.root / name
            current = path.read_bytes() if path.exists() else None
            if current != data:
                files[path] = data
                old_files[path] = current
        if not kwargs.get("dry_run"):
            for path, data in files.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        new = self.new or Lock()
        return FakeOutcome(self.old if files else new, new, files, old_files,
                           [Finding("Dockerfile", 1, "warning", "absent-platform", "no linux/arm64")])


def _texts(files: Mapping[Path, bytes | None], root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): data for path, data in files.items() if data is not None}


@pytest.fixture
def project(tmp_path: Path) -> Repos:
    s = scenario(Path("/x"))
    return make_repos(tmp_path, _texts(s.old_files, Path("/x")))


def upstream(version: int) -> tuple[dict[str, bytes], Lock, Lock]:
    """What `lock --upgrade` produces after ``version`` upstream releases (1: the scenario, 2: one more)."""
    s = scenario(Path("/x"))
    target = _texts(s.files, Path("/x"))
    if version == 2:
        target["requirements-base.lock"] = target["requirements-base.lock"].replace(b"numpy==2.1.3",
                                                                                    b"numpy==2.2.0")
    return target, s.old, s.new


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def list_open(api: responses.RequestsMock, answer: list[dict[str, Any]]) -> None:
    api.get(PULLS, json=answer, match=[
        matchers.query_param_matcher({"head": f"octo-org:{BRANCH}", "state": "open", "per_page": "100"}),
        matchers.header_matcher({"Authorization": f"Bearer {TOKEN}", "X-GitHub-Api-Version": "2022-11-28",
                                 "Accept": "application/vnd.github+json"}),
    ])


def remote_branch(repos: Repos) -> str | None:
    out = sh(repos.bare, "for-each-ref", "--format=%(objectname)", f"refs/heads/{BRANCH}")
    return out or None


def record_pushes(repos: Repos) -> Path:
    """A pre-receive hook on the remote that logs every ref update pushed to it: "pushes nothing" is observed, not
    inferred from the branch's commit (a push of an identical commit would leave that unchanged too)."""
    log = repos.bare.parent / "pushes.log"
    log.write_text("")
    hook = repos.bare / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\ncat >> '{log}'\n")
    hook.chmod(0o755)
    return log


def pushed_refs(log: Path) -> list[str]:
    return [line.split()[2] for line in log.read_text().splitlines()]


def assert_no_token_on_disk(repos: Repos) -> None:
    for config in (repos.work / ".git" / "config", repos.bare / "config"):
        assert TOKEN not in config.read_text()


def cli_refresh(repos: Repos, *args: str, env: Mapping[str, str | None] = ENV) -> Result:
    # GITHUB_API_URL of the machine running the tests must not redirect the mocked API.
    return CliRunner().invoke(cli, ["refresh", "-C", str(repos.work), *args],
                              env={"GITHUB_API_URL": None, **env}, catch_exceptions=False)


def assert_token_hidden(result: Result, repos: Repos) -> None:
    assert TOKEN not in result.stdout and TOKEN not in result.stderr
    assert_no_token_on_disk(repos)
