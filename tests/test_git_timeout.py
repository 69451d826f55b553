"""git's network commands are bounded: a remote that accepts the connection and then never answers (a stuck ssh,
a proxy that swallows packets) stops `refresh --open-pr` and `lock` with one line naming the remote, exit 2.

The stalled remote is a loopback TCP server for the git:// protocol that accepts and says nothing. pinrepro runs as
a real subprocess with a wall-clock limit of its own, so a regression fails the test instead of hanging it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gitrepos import Repos, sh, worktree
from tests.support.gitrepos import isolated_git as isolated_git  # autouse fixture: no machine git configuration
from tests.support.refresh import ENV
from tests.support.refresh import project as project  # fixture

# pinrepro must give up after PINREPRO_GIT_TIMEOUT; this is only the test's own guard against a hang.
GUARD = 60


@pytest.fixture
def silent_remote() -> Iterator[int]:
    """A port that accepts git:// connections, reads the request and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(connection)  # kept open, never written to

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in held:
            connection.close()
        server.close()


def pinrepro(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    full.pop("GITHUB_API_URL", None)
    return subprocess.run([sys.executable, "-m", "pinrepro", *args, "-C", str(cwd)], capture_output=True, text=True,
                          env=full, timeout=GUARD, check=False)


def test_refresh_stops_when_the_remote_never_answers(project: Repos, silent_remote: int) -> None:
    sh(project.work, "remote", "set-url", "origin", f"git://127.0.0.1:{silent_remote}/octo-org/octo-repo.git")
    before = worktree(project.work)
    result = pinrepro(project.work, "refresh", "--open-pr", env={**ENV, "PINREPRO_GIT_TIMEOUT": "2"})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "`git ls-remote` got no answer from remote 'origin' in 2 seconds" in lines[0]
    assert "PINREPRO_GIT_TIMEOUT" in lines[0]
    assert "Traceback" not in result.stderr and ENV["GITHUB_TOKEN"] not in result.stderr + result.stdout
    assert worktree(project.work) == before


def test_lock_stops_when_an_add_git_remote_never_answers(tmp_path: Path, silent_remote: int) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM scratch\nADD git://127.0.0.1:{silent_remote}/tools.git#main /src\n")
    before = worktree(tmp_path)
    result = pinrepro(tmp_path, "lock", env={"PINREPRO_GIT_TIMEOUT": "1.5"})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"got no answer from remote 'git://127.0.0.1:{silent_remote}/tools.git' in 1.5 seconds" in lines[0]
    assert worktree(tmp_path) == before


@pytest.mark.parametrize("value", ["soon", "0", "-3", "nan", "1e9"])
def test_a_bad_git_timeout_is_one_line(tmp_path: Path, value: str) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nADD git://127.0.0.1:9/tools.git#main /src\n")
    before = worktree(tmp_path)
    result = pinrepro(tmp_path, "lock", env={"PINREPRO_GIT_TIMEOUT": value})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: environment: PINREPRO_GIT_TIMEOUT='{value}' is not a number of seconds - set PINREPRO_GIT_TIMEOUT "
        "to a positive number of seconds (default 300), or unset it"]
    assert worktree(tmp_path) == before
