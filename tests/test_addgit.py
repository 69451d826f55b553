"""``ADD <git url>#<ref>`` pinned to a commit, against a real ``git daemon`` on loopback (pinrepro.addgit)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinrepro import lockfile
from pinrepro.addgit import find_git_adds, is_git_source
from pinrepro.dockerfile import parse
from tests.support.cliproject import run
from tests.support.registry import free_port
from tests.support.tools import require_tool
from tests.support.waiting import port_open, wait_until

ENV = {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "T",
       "GIT_COMMITTER_EMAIL": "t@example.org"}


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    require_tool("git")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **ENV}, capture_output=True, text=True,
                            check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


class GitServer:
    """``git daemon`` serving bare repositories under ``base`` as git://127.0.0.1:<port>/<name>."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.url = f"git://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={base}", "--listen=127.0.0.1",
             f"--port={self.port}", str(base)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_until(lambda: self.process.poll() is not None or port_open(self.port), 30, interval=0.05) \
                or self.process.poll() is not None:
            self.stop()
            raise RuntimeError("git daemon did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[GitServer, Path]]:
    base = tmp_path / "served"
    base.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "tool.py").write_text("print(1)\n")
    git(work, "add", ".")
    git(work, "commit", "-qm", "one")
    git(work, "tag", "-a", "v1", "-m", "release 1")
    git(base, "clone", "-q", "--bare", str(work), "tool.git")
    running = GitServer(base)
    try:
        yield running, work
    finally:
        running.stop()


def test_git_add_pinned_to_the_commit_and_moved_on_upgrade(tmp_path: Path,
                                                           server: tuple[GitServer, Path]) -> None:
    daemon, work = server
    bare = daemon.base / "tool.git"
    v1 = git(bare, "rev-parse", "v1^{commit}")
    main = git(bare, "rev-parse", "main")
    root = tmp_path / "project"
    root.mkdir()
    text = (f"FROM scratch\nADD {daemon.url}/tool.git#v1 /src\nADD --keep-git-dir=true {daemon.url}/tool.git "
            "/head\nADD [\"" + daemon.url + "/tool.git#main:sub\", \"/sub\"]\n")
    (root / "Dockerfile").write_text(text)
    result = run(root, "lock")
    assert result.exit_code == 0, result.stderr
    assert (root / "Dockerfile").read_text() == (
        f"FROM scratch\nADD {daemon.url}/tool.git#{v1} /src\nADD --keep-git-dir=true {daemon.url}/tool.git#{main} "
        f"/head\nADD [\"{daemon.url}/tool.git#{main}:sub\", \"/sub\"]\n")
    lock = lockfile.read(root / "pinrepro.lock")
    assert lock is not None
    assert lock.urls[f"{daemon.url}/tool.git#v1"].checksum == v1
    assert lock.urls[f"{daemon.url}/tool.git#v1"].ref == "v1"
    assert lock.urls[f"{daemon.url}/tool.git#HEAD"].checksum == main
    assert run(root, "verify").exit_code == 0
    assert run(root, "lock").exit_code == 0
    assert f"#{v1} /src" in (root / "Dockerfile").read_text()

    # The tag is moved upstream: verify --online tells, lock keeps, lock --upgrade moves.
    (work / "tool.py").write_text("print(2)\n")
    git(work, "commit", "-qam", "two")
    git(work, "tag", "-f", "-a", "v1", "-m", "release 1, again")
    git(work, "push", "-q", "--force", str(bare), "main", "refs/tags/v1")
    v1_new = git(bare, "rev-parse", "v1^{commit}")
    online = run(root, "verify", "--online")
    assert f"ADD {daemon.url}/tool.git#v1 now points to {v1_new[:12]} (locked: {v1[:12]})" in online.stdout
    assert run(root, "lock").exit_code == 0
    assert f"#{v1} /src" in (root / "Dockerfile").read_text()
    assert run(root, "lock", "--upgrade").exit_code == 0
    assert f"#{v1_new} /src" in (root / "Dockerfile").read_text()
    assert run(root, "verify", "--online").exit_code == 0

    # Back to a ref by hand: unpinned, with file and line.
    (root / "Dockerfile").write_text(text)
    unpinned = run(root, "verify")
    assert unpinned.exit_code == 1 and "Dockerfile:2: error: ADD" in unpinned.stdout


def test_unknown_ref_is_one_line(tmp_path: Path, server: tuple[GitServer, Path]) -> None:
    daemon, _ = server
    root = tmp_path / "project"
    root.mkdir()
    (root / "Dockerfile").write_text(f"FROM scratch\nADD {daemon.url}/tool.git#nope /src\n")
    result = run(root, "lock")
    assert result.exit_code == 2
    assert result.stderr == (f"error: Dockerfile:2: ADD {daemon.url}/tool.git: the repository has no branch or tag "
                             "'nope' - check the ref after '#' in the ADD line\n")


@pytest.mark.parametrize(("word", "git_source"), [
    ("https://github.com/moby/buildkit.git#v0.10.1", True), ("git@github.com:o/r.git#main", True),
    ("git://h/r", True), ("ssh://git@h/r.git", True), ("https://h/tool.tar.gz", False), ("local.git", False),
])
def test_git_sources(word: str, git_source: bool) -> None:
    assert is_git_source(word) is git_source


def test_query_form_and_variables_are_reported() -> None:
    dockerfile = parse("FROM scratch\nADD https://h/r.git?ref=v1 /a\nADD https://h/${R}.git#v1 /b\n")
    assert [s.reason for s in find_git_adds(dockerfile)] == [
        "the query form (?ref=...) is not pinned yet; write <url>#<ref> instead", "the URL is built from a variable"]


def test_an_unreachable_repository_is_one_line_at_the_add(tmp_path: Path, server: tuple[GitServer, Path]) -> None:
    """Review of #12: the line named the project directory and gave the refresh bot's advice about pushing."""
    daemon, _ = server
    root = tmp_path / "project"
    root.mkdir()
    text = f"FROM scratch\nADD {daemon.url}/missing.git#main /src\n"
    (root / "Dockerfile").write_text(text)
    result = run(root, "lock")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: Dockerfile:2: ADD {daemon.url}/missing.git: `git ls-remote` failed")
    assert result.stderr.endswith("- check the URL, and that this machine can reach it (network, proxy, and "
                                  "credentials or an SSH key for a private repository)\n")
    assert result.stderr.count("\n") == 1 and "push" not in result.stderr
    assert (root / "Dockerfile").read_text() == text and not (root / "pinrepro.lock").exists()


@pytest.mark.parametrize("userinfo", ["bot:s3cr3t-token", "s3cr3t-token", "x-access-token:s3cr3t-token"])
def test_credentials_in_a_git_url_never_reach_lock_or_output(tmp_path: Path, userinfo: str) -> None:
    """Review of #12: ``https://user:token@host/repo.git#main`` was resolved and the token written to the lock key."""
    root = tmp_path / "project"
    root.mkdir()
    text = f"FROM scratch\nADD https://{userinfo}@127.0.0.1:1/org/tool.git#main /src\n"
    (root / "Dockerfile").write_text(text)
    result = run(root, "lock")
    assert result.exit_code == 0, result.output
    assert ("Dockerfile:2: warning: cannot pin ADD https://***@127.0.0.1:1/org/tool.git#main: the URL carries "
            "credentials") in result.stderr
    assert "s3cr3t-token" not in result.output + (root / "pinrepro.lock").read_text()
    assert (root / "Dockerfile").read_text() == text
    verify = run(root, "verify")
    assert "s3cr3t-token" not in verify.output
