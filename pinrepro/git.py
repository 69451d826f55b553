"""The one module that runs ``git``.

The refresh bot commits with plumbing (a temporary index, ``hash-object``, ``commit-tree``) instead of
``checkout``/``add``/``commit``: the user's branch, index and working tree stay exactly as they were, and a
repository's own hooks and ``commit.gpgsign`` settings cannot stall an unattended CI run.

Credentials: pinrepro never hands a token to git. It pushes to the configured remote as is, so the credential
``actions/checkout`` persists for the workflow (or the user's own credential helper / SSH key) does the push.
That way no token can end up in ``.git/config``, in a process list, or in git's error output (README: CI section).
Error text from git is still scrubbed of URL user-info, in case a remote URL was configured with a token in it.

Nothing the repository configures runs (issue #16): the bot may run in a checkout whose ``.git/config`` or hooks
someone else wrote, so every call pins the settings through which git would start a program - fsmonitor, hooks,
askpass, ``ext::`` transports, filter and diff drivers, the remote's upload/receive-pack programs, and the
credential helpers and ssh command the repository (not the user) configured.
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
from pinrepro.scrub import redact

# https://user:token@host/... -> https://***@host/...
_IDENTITY = re.compile(r"^\s*(?P<name>[^<>]+?)\s*<(?P<email>[^<>\s]+)>\s*$")
_REGULAR_FILE = "100644"
_SYMLINK = "120000"
# `git -c` settings on every call: none of them names a program any more. hooksPath=/dev/null disables every hook
# (pre-push, reference-transaction, post-index-change, ...), including the ones in .git/hooks.
_NEUTRAL_CONFIG = (
    "core.fsmonitor=false", "core.hooksPath=/dev/null", "core.askPass=", "protocol.ext.allow=never",
    "diff.external=", "commit.gpgSign=false", "tag.gpgSign=false",
)
# Per driver name found in the configuration: an empty command is no command; `required` would turn that into
# an error, so it goes too (git's convert.c treats "" like unset).
_DRIVER_KEYS = {"filter": ("clean", "smudge", "process"), "diff": ("textconv", "command")}
_DRIVER_CONFIG = re.compile(r"^(?P<kind>filter|diff)\.(?P<name>.+)\.(?P<key>[^.]+)$", re.IGNORECASE)
# Programs the push needs to authenticate: the user's own (system, global, -c) stay, the repository's go.
_PROGRAM_KEYS = r"^(filter\..*|diff\..*|credential\..*helper|core\.sshcommand)$"
_REPOSITORY_SCOPES = {"local", "worktree"}
# ls-remote, fetch and push end after this many seconds: a remote that accepts the connection and then says
# nothing (a stuck ssh, a proxy, a firewall that drops packets) must not stall `lock` or an unattended bot. Generous,
# because the bot's fetch in a shallow CI checkout may bring history with it.
DEFAULT_NETWORK_TIMEOUT = 300.0
TIMEOUT_ENV = "PINREPRO_GIT_TIMEOUT"


def _overrides_for(listing: str) -> list[str]:
    """``git config -c`` values neutralising what ``git config --show-scope -z --get-regexp`` listed."""
    fields = listing.split("\0")
    entries: dict[str, list[tuple[str, str]]] = {}
    drivers: set[tuple[str, str]] = set()
    for scope, item in zip(fields[0::2], fields[1::2], strict=False):
        key, _, value = item.partition("\n")
        match = _DRIVER_CONFIG.match(key)
        if match and match["kind"].lower() in _DRIVER_KEYS:
            drivers.add((match["kind"].lower(), match["name"]))
        elif key:
            entries.setdefault(key, []).append((scope, value))
    overrides: list[str] = []
    for kind, name in sorted(drivers):
        overrides += [f"{kind}.{name}.{key}=" for key in _DRIVER_KEYS[kind]]
        if kind == "filter":
            overrides.append(f"filter.{name}.required=false")
    for key, values in sorted(entries.items()):
        if not any(scope in _REPOSITORY_SCOPES for scope, _ in values):
            continue
        kept = [value for scope, value in values if scope not in _REPOSITORY_SCOPES]
        if key == "core.sshcommand":
            overrides.append(f"core.sshCommand={kept[-1] if kept else 'ssh'}")
        else:
            # An empty helper resets git's list; then the user's own helpers again, in their order.
            overrides += [f"{key}=", *(f"{key}={value}" for value in kept)]
    return overrides


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


class Git:
    """git commands run in one repository (``cwd`` may be any directory inside the work tree)."""

    def __init__(self, cwd: Path, *, secrets: Sequence[str] = (), executable: str = "git",
                 network_timeout: float | None = None) -> None:
        self.cwd = cwd
        self._secrets = tuple(secrets)
        self._executable = executable
        self._overrides: tuple[str, ...] | None = None
        self.network_timeout = network_timeout if network_timeout is not None else network_timeout_from_env()

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

    def show(self, revision: str, path: str) -> bytes | None:
        """The bytes of ``path`` (relative to the top level) at ``revision``; None when it has no such file.

        GitError when ``revision`` names no commit, so a typo is not mistaken for "the file did not exist".
        """
        if revision.startswith("-"):
            raise GitError(f"'{revision}' is not a git revision", fix="name a branch, tag or commit")
        if self._run("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}", check=False).returncode != 0:
            raise GitError(f"'{revision}' is neither a file nor a git revision", where=str(self.cwd),
                           fix="pass the path of a lock file, or a branch, tag or commit (e.g. origin/main)")
        result = self._run("show", f"{revision}:{path}", check=False)
        return result.stdout if result.returncode == 0 else None

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
                mode = self._mode(parent, path)
                if mode == _SYMLINK:
                    # Writing text there would turn the link into a broken one; callers pass the link's target.
                    raise GitError(f"{path} is a symbolic link in {parent[:12]}; pinrepro writes through it",
                                   where=str(self.cwd), fix="report this: the bot should have written the target")
                blob = self.blob_of(path, data, write=True)
                entries.append(f"{mode} {blob}\t{path}\n")
            self._run("update-index", "--index-info", stdin="".join(entries).encode(), env=index_env)
            tree = self._text("write-tree", env=index_env)
        people = {
            "GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": author.name, "GIT_COMMITTER_EMAIL": author.email,
        }
        return self._text("commit-tree", "--no-gpg-sign", tree, "-p", parent, "-F", "-", stdin=message.encode(),
                          env=people)

    def blob_of(self, path: str, data: bytes, *, write: bool = False) -> str:
        """The blob id ``data`` gets at ``path``: --path applies the repository's built-in conversions
        (.gitattributes eol=..., as `git add` would); filter drivers are switched off in every call."""
        return self._text("hash-object", *(["-w"] if write else []), "--stdin", f"--path={path}", stdin=data)

    def blob_at(self, commit: str, path: str) -> str | None:
        """The blob id of ``path`` in ``commit``, or None when the commit has no such file."""
        out = self._text("ls-tree", "-z", commit, "--", path).rstrip("\0")
        if not out:
            return None
        meta, _, _ = out.partition("\t")
        _mode, kind, sha = meta.split(" ")
        return sha if kind == "blob" else None

    def commit_text(self, commit: str) -> tuple[Identity, str]:
        """The committer and the message of ``commit`` (which must be in the object store)."""
        raw = self._run("cat-file", "commit", commit).stdout.decode("utf-8", "replace")
        header, _, message = raw.partition("\n\n")
        committer = Identity("", "")
        for line in header.splitlines():
            if line.startswith("committer "):
                match = re.match(r"committer (?P<name>.*?) <(?P<email>[^<>]*)>", line)
                if match:
                    committer = Identity(match["name"], match["email"])
        return committer, message

    def remote_branch(self, remote: str, branch: str) -> str | None:
        """The commit ``branch`` points at on ``remote``, or None when the remote has no such branch."""
        out = self._run("ls-remote", "--upload-pack=git-upload-pack", "--heads", remote, f"refs/heads/{branch}",
                        remote=remote).stdout.decode().strip()
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            if ref == f"refs/heads/{branch}":
                return sha
        return None

    def fetch(self, remote: str, branch: str) -> None:
        """Fetch ``branch`` from ``remote`` into the object store; no local ref or FETCH_HEAD is written."""
        self._run("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--upload-pack=git-upload-pack", remote,
                  f"refs/heads/{branch}", remote=remote)

    def push(self, remote: str, commit: str, branch: str, *, expect: str | None) -> None:
        """Make ``branch`` on ``remote`` point at ``commit``, only if it still points at ``expect`` (None: only if it
        does not exist): a commit someone pushed since pinrepro looked is never overwritten."""
        lease = f"--force-with-lease=refs/heads/{branch}:{expect or ''}"
        self._run("push", "--quiet", "--no-verify", "--receive-pack=git-receive-pack", lease, remote,
                  f"{commit}:refs/heads/{branch}", remote=remote)

    def ls_remote(self, url: str, ref: str) -> dict[str, str]:
        """Ref name -> object that ``url`` advertises for ``ref`` (``HEAD``, a branch or a tag, with the peeled
        ``refs/tags/<ref>^{}`` entry - the commit - for an annotated tag)."""
        if url.startswith("-"):
            raise GitError(f"'{url}' is not a repository URL", fix="write the URL in full")
        out = self._run("ls-remote", "--upload-pack=git-upload-pack", url, ref, f"{ref}^{{}}",
                        remote=url).stdout.decode().strip()
        refs: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, name = line.partition("\t")
            refs[name] = sha
        return refs

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
             check: bool = True, remote: str | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run git; ``remote`` (the remote's name or URL) marks a network command, which gets a time limit."""
        timeout = self.network_timeout if remote is not None else None
        full_env = dict(os.environ)
        # Never wait for a password prompt in CI; the C locale keeps git's messages stable for the error line.
        full_env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "LANGUAGE": ""})
        full_env.pop("GIT_INDEX_FILE", None)
        if env:
            full_env.update(env)
        try:
            result = subprocess.run(
                [self._executable, *self._config_overrides(full_env), *args], cwd=self.cwd, input=stdin,
                capture_output=True, env=full_env, check=False, timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise GitError(f"`git {args[0]}` got no answer from remote '{redact(remote or '', self._secrets)}' "
                           f"in {timeout:g} seconds and was stopped", where=str(self.cwd),
                           fix=f"check the network path to the remote (ssh, proxy, VPN), or allow more time with "
                               f"{TIMEOUT_ENV}=<seconds>") from None
        except FileNotFoundError:
            raise GitError("git is not installed", fix="install git (Debian: apt-get install git)") from None
        except NotADirectoryError:
            raise GitError(f"{self.cwd} is not a directory", fix="pass the project directory with -C") from None
        if check and result.returncode != 0:
            raise GitError(self._failure(args, result.stderr), where=str(self.cwd), fix=_fix_for(args[0]))
        return result

    def _config_overrides(self, env: Mapping[str, str]) -> tuple[str, ...]:
        """``-c`` options that switch off every program the configuration names (see the module's docstring)."""
        if self._overrides is None:
            try:
                # Reading the configuration runs nothing; its include files are read as git would.
                listed = subprocess.run(
                    [self._executable, *(arg for item in _NEUTRAL_CONFIG for arg in ("-c", item)), "config",
                     "--show-scope", "-z", "--get-regexp", _PROGRAM_KEYS],
                    cwd=self.cwd, capture_output=True, env=dict(env), check=False,
                ).stdout.decode("utf-8", "replace")
            except (FileNotFoundError, NotADirectoryError):
                listed = ""
            overrides = [*_NEUTRAL_CONFIG, *_overrides_for(listed)]
            self._overrides = tuple(item for pair in (("-c", o) for o in overrides) for item in pair)
        return self._overrides

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


def network_timeout_from_env(environ: Mapping[str, str] | None = None) -> float:
    """The time limit of git's network commands: PINREPRO_GIT_TIMEOUT (seconds), else the default."""
    raw = (os.environ if environ is None else environ).get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_NETWORK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise GitError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds", where="environment",
                       fix=f"set {TIMEOUT_ENV} to a positive number of seconds (default {DEFAULT_NETWORK_TIMEOUT:g}), "
                           "or unset it")
    return value


def _fix_for(command: str) -> str:
    if command in {"push", "fetch", "ls-remote"}:
        return ("check that the remote exists and that this checkout may push to it (in GitHub Actions: "
                "actions/checkout with persist-credentials left on, and `permissions: contents: write`)")
    if command == "rev-parse":
        return "run pinrepro inside a git repository with at least one commit"
    return "run the same git command by hand to see the full error"
