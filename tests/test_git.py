"""git.py with real git: a bare repository in tmp as the remote, a work clone, no machine configuration."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pinrepro.errors import GitError
from pinrepro.git import Git, Identity
from pinrepro.scrub import redact
from tests.support.gitrepos import Repos, make_repos, sh
from tests.support.gitrepos import isolated_git as isolated_git  # autouse fixture: no machine git configuration

BOT = Identity("pinrepro-bot", "bot@example.org")
TOKEN = "ghp_R3allySecretT0kenValue1234567890abcd"


@pytest.fixture
def repos(tmp_path: Path) -> Repos:
    return make_repos(tmp_path, {"Dockerfile": b"FROM python:3.11-slim\n", "run.sh": b"#!/bin/sh\n",
                                 "docs/README": b"hello\n"})


def test_commit_files_touches_nothing_but_the_object_store(repos: Repos) -> None:
    (repos.work / "run.sh").chmod(0o755)
    sh(repos.work, "update-index", "--chmod=+x", "run.sh")
    sh(repos.work, "commit", "--quiet", "-m", "exec")
    head = sh(repos.work, "rev-parse", "HEAD")
    (repos.work / "untracked.txt").write_text("mine\n")
    git = Git(repos.work)

    commit = git.commit_files({"Dockerfile": b"FROM python:3.11-slim@sha256:abc\n", "run.sh": b"#!/bin/sh\necho\n",
                               "new/pinrepro.lock": b"schema = 1\n"},
                              parent=head, message="refresh\n\nbody\n", author=BOT)

    assert git.parents_of(commit) == (head,)
    assert sh(repos.work, "diff", "--name-only", head, commit).splitlines() == [
        "Dockerfile", "new/pinrepro.lock", "run.sh"]
    assert sh(repos.work, "show", f"{commit}:Dockerfile") == "FROM python:3.11-slim@sha256:abc"
    assert sh(repos.work, "ls-tree", commit, "run.sh").split()[0] == "100755"  # mode kept
    assert sh(repos.work, "ls-tree", commit, "new/pinrepro.lock").split()[0] == "100644"
    assert sh(repos.work, "log", "-1", "--format=%an <%ae>|%cn <%ce>", commit) == (
        "pinrepro-bot <bot@example.org>|pinrepro-bot <bot@example.org>")
    assert sh(repos.work, "log", "-1", "--format=%B", commit) == "refresh\n\nbody"
    # HEAD, branch, index and work tree are exactly as before.
    assert sh(repos.work, "rev-parse", "HEAD") == head
    assert sh(repos.work, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert sh(repos.work, "status", "--porcelain") == "?? untracked.txt"
    assert (repos.work / "Dockerfile").read_bytes() == b"FROM python:3.11-slim\n"


def test_commit_applies_clean_filters_like_git_add(repos: Repos) -> None:
    (repos.work / ".gitattributes").write_text("*.lock text eol=crlf\n")
    sh(repos.work, "add", ".gitattributes")
    sh(repos.work, "commit", "--quiet", "-m", "attrs")
    git = Git(repos.work)
    commit = git.commit_files({"a.lock": b"x\r\ny\r\n"}, parent=git.head(), message="m", author=BOT)
    # The blob is normalised to LF, as `git add` would store it.
    blob = subprocess.run(["git", "cat-file", "blob", f"{commit}:a.lock"], cwd=repos.work, capture_output=True,
                          check=True).stdout
    assert blob == b"x\ny\n"


def test_push_and_remote_branch(repos: Repos) -> None:
    git = Git(repos.work)
    assert git.remote_branch("origin", "pinrepro/refresh") is None
    first = git.commit_files({"Dockerfile": b"one\n"}, parent=repos.main, message="1", author=BOT)
    git.push("origin", first, "pinrepro/refresh", expect=None)
    assert git.remote_branch("origin", "pinrepro/refresh") == first
    assert sh(repos.bare, "rev-parse", "refs/heads/pinrepro/refresh") == first
    # A second commit on the same base replaces the branch, as long as it still points where pinrepro saw it.
    second = git.commit_files({"Dockerfile": b"two\n"}, parent=repos.main, message="2", author=BOT)
    git.push("origin", second, "pinrepro/refresh", expect=first)
    assert sh(repos.bare, "rev-parse", "refs/heads/pinrepro/refresh") == second
    assert sh(repos.bare, "rev-parse", "refs/heads/main") == repos.main
    # When it moved since (or was expected not to exist) the push is refused, with git's reason in one line.
    third = git.commit_files({"Dockerfile": b"three\n"}, parent=repos.main, message="3", author=BOT)
    for stale in (first, None):
        with pytest.raises(GitError) as info:
            git.push("origin", third, "pinrepro/refresh", expect=stale)
        assert sh(repos.bare, "rev-parse", "refs/heads/pinrepro/refresh") == second
    assert str(info.value).startswith(f"{repos.work}: `git push` failed: ")
    assert "rejected" in str(info.value) or "failed to push" in str(info.value)


def test_fetch_brings_the_remote_commit(repos: Repos, tmp_path: Path) -> None:
    other = tmp_path / "other"
    sh(tmp_path, "clone", "--quiet", str(repos.bare), str(other))
    pushed = Git(other).commit_files({"x": b"x\n"}, parent=repos.main, message="x", author=BOT)
    Git(other).push("origin", pushed, "bot", expect=None)
    git = Git(repos.work)
    assert not git.has_object(pushed)
    git.fetch("origin", "bot")
    assert git.has_object(pushed)
    assert not (repos.work / ".git" / "FETCH_HEAD").exists()


def test_queries(repos: Repos, tmp_path: Path) -> None:
    git = Git(repos.work / "docs")
    assert git.toplevel() == repos.work.resolve()
    assert git.head() == repos.main
    assert git.current_branch() == "main"
    assert git.remote_url("origin") == str(repos.bare)
    assert git.relative(repos.work / "docs" / "README") == "docs/README"
    with pytest.raises(GitError, match=r"is outside the git work tree"):
        git.relative(tmp_path / "elsewhere")
    sh(repos.work, "checkout", "--quiet", "--detach")
    assert git.current_branch() is None


def test_remote_url_is_the_configured_one(repos: Repos) -> None:
    sh(repos.work, "remote", "set-url", "origin", "https://github.com/octo-org/octo-repo.git")
    sh(repos.work, "config", f"url.{repos.bare}.insteadOf", "https://github.com/octo-org/octo-repo.git")
    git = Git(repos.work)
    assert git.remote_url("origin") == "https://github.com/octo-org/octo-repo.git"
    assert git.remote_branch("origin", "main") == repos.main  # transport still rewritten to the bare repo


def test_missing_remote(repos: Repos) -> None:
    with pytest.raises(GitError) as info:
        Git(repos.work).remote_url("upstream")
    assert str(info.value) == (f"{repos.work}: git remote 'upstream' is not configured - add it with "
                               "`git remote add upstream <url>`, or set the refresh 'remote' key")


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(GitError) as info:
        Git(tmp_path).head()
    assert str(info.value) == (f"{tmp_path}: `git rev-parse` failed: fatal: not a git repository (or any of the "
                               "parent directories): .git - run pinrepro inside a git repository with at least one "
                               "commit")


def test_git_not_installed(tmp_path: Path) -> None:
    with pytest.raises(GitError) as info:
        Git(tmp_path, executable="git-that-does-not-exist").head()
    assert str(info.value) == "git is not installed - install git (Debian: apt-get install git)"


def test_push_failure_never_shows_a_token(repos: Repos) -> None:
    # A remote URL with a token in it (as some CI setups write) must not leak through git's error text.
    # Port 9 on loopback: nothing listens, so git fails at once without leaving the machine.
    sh(repos.work, "remote", "add", "leaky", f"http://x-access-token:{TOKEN}@127.0.0.1:9/octo/repo.git")
    git = Git(repos.work, secrets=(TOKEN,))
    with pytest.raises(GitError) as info:
        git.push("leaky", repos.main, "pinrepro/refresh", expect=None)
    text = str(info.value)
    assert TOKEN not in text
    assert text.startswith(f"{repos.work}: `git push` failed: ")
    assert text.endswith("- check that the remote exists and that this checkout may push to it (in GitHub Actions: "
                         "actions/checkout with persist-credentials left on, and `permissions: contents: write`)")


@pytest.mark.parametrize(("text", "expected"), [
    (f"fatal: unable to access 'https://x-access-token:{TOKEN}@github.com/o/r.git/'",
     "fatal: unable to access 'https://***@github.com/o/r.git/'"),
    (f"token {TOKEN} in plain text", "token *** in plain text"),
    ("ssh://git@github.com/o/r.git", "ssh://***@github.com/o/r.git"),
    ("nothing secret here", "nothing secret here"),
])
def test_redact(text: str, expected: str) -> None:
    assert redact(text, (TOKEN, "")) == expected


@pytest.mark.parametrize(("text", "identity"), [
    ("github-actions[bot] <41898282+github-actions[bot]@users.noreply.github.com>",
     Identity("github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com")),
    ("  Ada Lovelace   <ada@example.org> ", Identity("Ada Lovelace", "ada@example.org")),
])
def test_identity(text: str, identity: Identity) -> None:
    assert Identity.parse(text) == identity
    assert Identity.parse(str(identity)) == identity


@pytest.mark.parametrize("text", ["no email", "<a@b>", "Name <>", "Name <a b@c>", "Name a@b.c"])
def test_bad_identity(text: str) -> None:
    with pytest.raises(GitError) as info:
        Identity.parse(text)
    assert str(info.value) == f"'{text}' is not a git identity - write it as \"Name <email@example.com>\""


def test_the_repositorys_credential_helper_and_ssh_command_do_not_run(repos: Repos, tmp_path: Path) -> None:
    """Issue #16: the push authenticates with the user's own helper, never one the repository configured."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class AskForCredentials(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    log = tmp_path / "ran.log"
    log.write_text("")

    def tripwire(name: str) -> str:
        script = tmp_path / name
        script.write_text(f"#!/bin/sh\necho {name} >> '{log}'\nexit 1\n")
        script.chmod(0o755)
        return str(script)

    server = ThreadingHTTPServer(("127.0.0.1", 0), AskForCredentials)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sh(repos.work, "remote", "add", "web", f"http://127.0.0.1:{server.server_address[1]}/r.git")
        sh(repos.work, "remote", "add", "viassh", "ssh://git@127.0.0.1:9/r.git")
        sh(repos.work, "config", "credential.helper", tripwire("repo-helper"))
        sh(repos.work, "config", "core.sshCommand", tripwire("repo-ssh"))
        git = Git(repos.work)
        for remote in ("web", "viassh"):
            with pytest.raises(GitError):
                git.remote_branch(remote, "main")
        assert log.read_text() == ""
        # The user's own helper (global configuration) is still asked.
        Path(os.environ["GIT_CONFIG_GLOBAL"]).write_text(f"[credential]\n\thelper = {tripwire('user-helper')}\n")
        with pytest.raises(GitError):
            Git(repos.work).remote_branch("web", "main")
        assert log.read_text().split() == ["user-helper"]
    finally:
        server.shutdown()
        server.server_close()
