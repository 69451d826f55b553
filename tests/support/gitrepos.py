"""Real git repositories in tmp for tests: a bare remote with a work clone, and no machine configuration."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.tools import require_tool


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The machine's ~/.gitconfig and /etc/gitconfig must not matter (user, signing, hooks, default branch).

    Autouse in every module that imports it (``from tests.support.gitrepos import isolated_git as isolated_git``).
    """
    require_tool("git")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)


def sh(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.org",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.org"}
    result = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def worktree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` but ``.git`` (where git itself writes objects): for "every file as it was"."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(root).parts}


@dataclass(frozen=True)
class Repos:
    bare: Path
    work: Path
    main: str  # the commit main points at


def make_repos(tmp_path: Path, files: dict[str, bytes]) -> Repos:
    """A bare remote with one commit on main holding ``files``, and a clone of it."""
    bare = tmp_path / "remote.git"
    sh(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    seed = tmp_path / "seed"
    sh(tmp_path, "init", "--quiet", "--initial-branch=main", str(seed))
    for name, data in files.items():
        (seed / name).parent.mkdir(parents=True, exist_ok=True)
        (seed / name).write_bytes(data)
    sh(seed, "add", "--all")
    sh(seed, "commit", "--quiet", "-m", "initial")
    sh(seed, "push", "--quiet", str(bare), "main")
    work = tmp_path / "work"
    sh(tmp_path, "clone", "--quiet", str(bare), str(work))
    return Repos(bare, work, sh(work, "rev-parse", "HEAD"))
