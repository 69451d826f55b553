"""The one module that runs ``git``.

The refresh bot commits with plumbing (a temporary index, ``hash-object``, ``commit-tree``) instead of
``checkout``/``add``/``commit``: the user's branch, index and working tree stay exactly as they were, and a
repository's own hooks and ``commit.gpgsign`` settings cannot stall an unattended CI run.

Credentials: pinrepro never hands a token to git. It pushes to the configured remote as is, so the credential
``actions/checkout`` persists for the workflow (or the user's own credential helper / SSH key) does the push.
That way no token can end up in ``.git/config``, in a process list, or in git's error output (README: CI section).
Error text from git is still scrubbed of URL user-info, in case a remote URL was configured with a token in it.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pinrepro.errors import GitError

# https://user:token@host/... -> https://***@host/...
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
_IDENTITY = re.compile(r"^\s*(?P<name>[^<>]+?)\s*<(?P<email>[^<>\s]+)>\s*$")
_REGULAR_FILE = "100644"


@dataclass(frozen=True)
class Identity:
    """Who the bot's commits are by (author and committer alike)."""

    name: str
    email: str

    @classmethod
    def parse(cls, text: str) -> Identity:
        match = _IDENTITY.match(text)
        if not match:
            raise GitError(f"'{text}' is not a git identity", fix='write it as "Name <email@example.com>"')
        return cls(match["name"], match["email"])

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` with URL user-info and every given secret replaced by ``***``."""
    text = _URL_USERINFO.sub(r"\g<scheme>***@", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class Git:
    """git commands run in one repository (``cwd`` may be any directory inside the work tree)."""

    def __init__(self, cwd: Path, *, secrets: Sequence[str] = (), executable: str = "git") -> None:
        self.cwd = cwd
        self._secrets = tuple(secrets)
        self._executable = executable

    def __repr__(self) -> str:
        return f"Git({str(self.cwd)!r})"

    # -- queries -------------------------------------------------------------------------------------------

    def toplevel(self) -> Path:
        """The root of the work tree; GitError when ``cwd`` is not inside one."""
        return Path(self._text("rev-parse", "--show-toplevel")).resolve()

    def head(self) -> str:
        """The commit HEAD points at."""
        return self._text("rev-parse", "--verify", "HEAD^{commit}")

    def current_branch(self) -> str | None:
        """The checked-out branch name, or None when HEAD is detached (as in a pull_request workflow)."""
        result = self._run("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        if result.returncode != 0:
            return None
        return result.stdout.decode().strip() or None

    def remote_url(self, remote: str) -> str:
        """The URL as configured (``url.<base>.insteadOf`` rewrites are not applied: the configured URL names the
        GitHub repository even where a mirror or a test redirects the transport)."""
        result = self._run("config", "--get", f"remote.{remote}.url", check=False)
        if result.returncode != 0:
            raise GitError(f"git remote '{remote}' is not configured", where=str(self.cwd),
                           fix=f"add it with `git remote add {remote} <url>`, or set the refresh 'remote' key")
        return result.stdout.decode().strip()

    def tree_of(self, commit: str) -> str:
        return self._text("rev-parse", "--verify", f"{commit}^{{tree}}")

    def parents_of(self, commit: str) -> tuple[str, ...]:
        line = self._text("rev-list", "--parents", "-n", "1", commit)
        return tuple(line.split()[1:])

    def relative(self, path: Path) -> str:
        """``path`` relative to the top level, in the form git stores it."""
        top = self.toplevel()
        resolved = path.resolve()
        try:
            return PurePosixPath(resolved.relative_to(top).as_posix()).as_posix()
        except ValueError:
            raise GitError(f"{path} is outside the git work tree {top}",
                           fix="run pinrepro inside the repository that holds the project") from None

    # -- writes --------------------------------------------------------------------------------------------

    def commit_files(self, files: Mapping[str, bytes], *, parent: str, message: str, author: Identity) -> str:
        """A new commit on top of ``parent`` whose tree is ``parent``'s with ``files`` replaced; its sha.

        Nothing outside the object store changes: no branch moves, the index and the work tree stay untouched.
        """
        with tempfile.TemporaryDirectory(prefix="pinrepro-git-") as tmp:
            index_env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self._run("read-tree", parent, env=index_env)
            entries: list[str] = []
            for path, data in sorted(files.items()):
                # --path applies the repository's clean filters (.gitattributes eol=...), as `git add` would.
                blob = self._text("hash-object", "-w", "--stdin", f"--path={path}", stdin=data)
                entries.append(f"{self._mode(parent, path)} {blob}\t{path}\n")
            self._run("update-index", "--index-info", stdin="".join(entries).encode(), env=index_env)
            tree = self._text("write-tree", env=index_env)
        people = {
            "GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": author.name, "GIT_COMMITTER_EMAIL": author.email,
        }
        return self._text("commit-tree", tree, "-p", parent, "-F", "-", stdin=message.encode(), env=people)

    def remote_branch(self, remote: str, branch: str) -> str | None:
        """The commit ``branch`` points at on ``remote``, or None when the remote has no such branch."""
        out = self._text("ls-remote", "--heads", remote, f"refs/heads/{branch}")
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            if ref == f"refs/heads/{branch}":
                return sha
        return None

    def fetch(self, remote: str, branch: str) -> None:
        """Fetch ``branch`` from ``remote`` into the object store; no local ref or FETCH_HEAD is written."""
        self._run("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote, f"refs/heads/{branch}")

    def push(self, remote: str, commit: str, branch: str, *, force: bool) -> None:
        """Make ``branch`` on ``remote`` point at ``commit`` (force: the branch belongs to the bot)."""
        refspec = f"{'+' if force else ''}{commit}:refs/heads/{branch}"
        self._run("push", "--quiet", "--no-verify", remote, refspec)

    def has_object(self, sha: str) -> bool:
        return self._run("cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0

    # -- plumbing ------------------------------------------------------------------------------------------

    def _mode(self, parent: str, path: str) -> str:
        # Keep an existing file's mode (an executable script stays executable); new files are regular.
        out = self._text("ls-tree", parent, "--", path)
        return out.split(" ", 1)[0] if out else _REGULAR_FILE

    def _text(self, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None) -> str:
        return self._run(*args, stdin=stdin, env=env).stdout.decode().strip()

    def _run(self, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None,
             check: bool = True) -> subprocess.CompletedProcess[bytes]:
        full_env = dict(os.environ)
        # Never wait for a password prompt in CI; the C locale keeps git's messages stable for the error line.
        full_env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "LANGUAGE": ""})
        full_env.pop("GIT_INDEX_FILE", None)
        if env:
            full_env.update(env)
        try:
            result = subprocess.run(
                [self._executable, *args], cwd=self.cwd, input=stdin, capture_output=True, env=full_env,
                check=False,
            )
        except FileNotFoundError:
            raise GitError("git is not installed", fix="install git (Debian: apt-get install git)") from None
        except NotADirectoryError:
            raise GitError(f"{self.cwd} is not a directory", fix="pass the project directory with -C") from None
        if check and result.returncode != 0:
            raise GitError(self._failure(args, result.stderr), where=str(self.cwd), fix=_fix_for(args[0]))
        return result

    def _failure(self, args: Sequence[str], stderr: bytes) -> str:
        lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
        # git's most telling line is usually the last "fatal:"/"error:" one; a rejected push is told by the
        # remote's own words ("remote: ...") and the "! [remote rejected] ... (reason)" line, so keep those.
        telling = [line for line in lines if line.startswith(("fatal:", "error:", "remote:", "!"))] or lines
        answer = [line for line in lines if line.startswith("!")] + \
            [line for line in lines if line.startswith("remote:") and line != "remote:"]
        chosen = "; ".join(answer[:8]) if args[0] == "push" and answer else (telling[-1] if telling else "no output")
        detail = redact(chosen, self._secrets)
        return f"`git {args[0]}` failed: {detail}"


def _fix_for(command: str) -> str:
    if command in {"push", "fetch", "ls-remote"}:
        return ("check that the remote exists and that this checkout may push to it (in GitHub Actions: "
                "actions/checkout with persist-credentials left on, and `permissions: contents: write`)")
    if command == "rev-parse":
        return "run pinrepro inside a git repository with at least one commit"
    return "run the same git command by hand to see the full error"
