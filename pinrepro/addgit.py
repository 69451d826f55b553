"""``ADD <git url>#<ref>`` pinned to the commit the ref names, so the build cannot pick up a moved branch or tag.

BuildKit reads an ADD source as Git when it is ``git://``, ``ssh://``, ``git@host:path`` or an HTTP(S) URL whose
path ends in ``.git``; the fragment is ``#<ref>[:<subdir>]`` and a ref may be a commit. pinrepro resolves the ref
with ``git ls-remote`` and writes the commit into the fragment (``#<commit>[:<subdir>]``); the lock keeps the ref
the user wrote (key ``<url>#<ref>``, ``ref``), so ``lock --upgrade`` re-resolves it and ``verify --online``
reports when it moved. The query form (``?ref=...``) and URLs built from ARGs are reported, not rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from pinrepro.dockerfile import Dockerfile, Instruction, add_arguments, apply_edits, instructions
from pinrepro.errors import GitError, PinreproError
from pinrepro.findings import Finding
from pinrepro.git import TIMEOUT_ENV, Git
from pinrepro.lockfile import Lock, UrlLock
from pinrepro.scrub import redact

_COMMIT = re.compile(r"[0-9a-f]{40}")
Resolve = Callable[[str, str, str], str]  # (repository url, ref, where) -> commit


@dataclass(frozen=True)
class GitAddSite:
    path: str
    line: int
    url: str  # as written, unquoted
    base: str  # without the fragment
    ref: str  # the fragment's ref; "" when none (the remote's default branch)
    reason: str | None = None
    span: tuple[int, int] | None = None  # file offsets of the ref in the fragment (or where "#<commit>" goes)
    has_fragment: bool = False

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def pinned(self) -> bool:
        return _COMMIT.fullmatch(self.ref) is not None

    @property
    def key(self) -> str:
        return f"{self.base}#{self.ref or 'HEAD'}"


def is_git_source(word: str) -> bool:
    if word.startswith(("git://", "ssh://", "git@")):
        return True
    if word.startswith(("http://", "https://")):
        return word.split("#", 1)[0].split("?", 1)[0].endswith(".git")
    return False


def _without_credentials(url: str) -> str | None:
    """``url`` with its user and password shown as ``***``, or None when it has no secret in it. An SSH user
    alone (``ssh://git@host/...``) is a login name, not a secret; over HTTP(S) a user alone is often a token."""
    if "://" not in url:
        return None  # git@host:path (scp form): a login name
    parts = urlsplit(url)
    if not parts.password and not (parts.username and parts.scheme != "ssh"):
        return None
    return redact(url)


def find_git_adds(dockerfile: Dockerfile) -> list[GitAddSite]:
    found, _ = instructions(dockerfile.text, dockerfile.path)
    return [site for ins in found if (site := _site(dockerfile.path, ins)) is not None]


def _site(path: str, ins: Instruction) -> GitAddSite | None:
    if ins.command != "add":
        return None
    words = add_arguments(ins)
    sources = [word for word in words[:-1] if is_git_source(word)]
    if not sources:
        return None
    url = sources[0]
    base, has_fragment, fragment = url.partition("#")
    ref = fragment.split(":", 1)[0]
    site = GitAddSite(path, ins.line, url, base, ref, has_fragment=bool(has_fragment))
    shown = _without_credentials(url)
    if shown is not None:  # the lock key and every message would carry the token
        return replace(site, url=shown, base=_without_credentials(base) or base,
                       reason="the URL carries credentials, which must not go into the lock; use a build secret "
                              "or an SSH key instead")
    if "$" in url:
        return replace(site, reason="the URL is built from a variable")
    if "?" in base:
        return replace(site, reason="the query form (?ref=...) is not pinned yet; write <url>#<ref> instead")
    at = ins.text.find(url, ins.rest_at)
    if at < 0:
        return replace(site, reason="the URL is written with quotes or escapes pinrepro does not rewrite")
    start = at + len(base) + 1 if has_fragment else at + len(url)
    end = start + len(ref) if has_fragment else start
    file_start = ins.offsets[start] if start < len(ins.text) and start < end else ins.offsets[start - 1] + 1
    file_end = ins.offsets[end - 1] + 1 if end > start else file_start
    return replace(site, span=(file_start, file_end))


def lock_git(dockerfiles: list[Dockerfile], previous: Mapping[str, UrlLock], *, upgrade: bool,
             resolve: Resolve) -> tuple[dict[str, UrlLock], dict[tuple[str, int], str], list[Finding]]:
    """(lock entries by key, the commit for each site (path, line), findings)."""
    findings: list[Finding] = []
    groups: dict[str, list[GitAddSite]] = {}
    for dockerfile in dockerfiles:
        for site in find_git_adds(dockerfile):
            if site.reason is not None:
                findings.append(Finding(site.path, site.line, "warning", "add-unpinnable",
                                        f"cannot pin ADD {site.url}: {site.reason}"))
                continue
            groups.setdefault(_lock_key(site, previous), []).append(site)
    entries: dict[str, UrlLock] = {}
    commits: dict[tuple[str, int], str] = {}
    for key, group in sorted(groups.items()):
        sites = tuple(sorted({site.location for site in group}))
        prev = previous.get(key)
        base, _, ref = key.partition("#")
        if prev is not None and prev.ref is not None and upgrade:
            entry = UrlLock(checksum=resolve(base, prev.ref, sites[0]), sites=sites, ref=prev.ref)
        elif prev is not None:
            entry = UrlLock(checksum=prev.checksum, sites=sites, ref=prev.ref)
        elif group[0].pinned:  # a commit written by hand: nothing to resolve
            entry = UrlLock(checksum=group[0].ref, sites=sites)
        else:
            entry = UrlLock(checksum=resolve(base, ref, sites[0]), sites=sites, ref=ref)
        entries[key] = entry
        for site in group:
            commits[(site.path, site.line)] = entry.checksum
    return entries, commits, findings


def _lock_key(site: GitAddSite, previous: Mapping[str, UrlLock]) -> str:
    """A pinned site belongs to the lock entry whose commit it carries (the key keeps the ref the user wrote)."""
    if site.pinned:
        candidates = [key for key, entry in sorted(previous.items())
                      if entry.ref is not None and key.partition("#")[0] == site.base and entry.checksum == site.ref]
        # Two refs may name the same commit (main and HEAD): the entry that recorded this very line wins.
        here = [key for key in candidates if site.location in previous[key].sites]
        return (here or candidates or [f"{site.base}#{site.ref}"])[0]
    return site.key


def resolver(root: Path) -> Resolve:
    """Resolve refs with ``git ls-remote`` (through pinrepro.git, the one module that runs git)."""

    def resolve(url: str, ref: str, where: str) -> str:
        wanted = ref or "HEAD"
        git = Git(root)  # a bad PINREPRO_GIT_TIMEOUT is the environment's error, not this ADD line's
        try:
            refs = git.ls_remote(url, wanted)
        except GitError as error:
            if error.where in (None, "environment"):  # git missing, a bad PINREPRO_GIT_TIMEOUT: not this ADD's
                raise
            # Git's own fix speaks of the bot's push; here the ADD line is what to look at.
            reach = ("check the URL, and that this machine can reach it (network, proxy, and credentials or an SSH "
                     "key for a private repository)")
            raise GitError(f"ADD {redact(url)}: {error.what}", where=where,
                           fix=error.fix if TIMEOUT_ENV in (error.fix or "") else reach) from None
        # git's own order for a short name: tags before branches; an annotated tag's peeled commit wins.
        for name in (f"refs/tags/{wanted}^{{}}", f"refs/tags/{wanted}", f"refs/heads/{wanted}", wanted):
            if name in refs:
                return refs[name]
        raise PinreproError(f"ADD {url}: the repository has no branch or tag '{wanted}'", where=where,
                            fix="check the ref after '#' in the ADD line")

    return resolve


def pin_text(dockerfile: Dockerfile, commit_for: Callable[[GitAddSite], str | None]) -> str:
    """The Dockerfile with each Git ADD's ref replaced by its commit (``#<commit>`` added when there was none)."""
    edits: dict[tuple[int, int], str] = {}
    for site in find_git_adds(dockerfile):
        commit = commit_for(site)
        if site.span is None or commit is None or commit == site.ref:
            continue
        edits[site.span] = commit if site.has_fragment else f"#{commit}"
    # One pass over the text: a copy of the whole file per edit was quadratic in the number of Git ADDs.
    return apply_edits(dockerfile.text, edits)


def is_git_entry(entry: UrlLock) -> bool:
    return entry.ref is not None or _COMMIT.fullmatch(entry.checksum) is not None


def check_git(dockerfiles: list[Dockerfile], lock: Lock, lock_name: str) -> list[Finding]:
    findings: list[Finding] = []
    seen: set[str] = set()
    for dockerfile in dockerfiles:
        for site in find_git_adds(dockerfile):
            if site.reason is not None:
                continue
            if not site.pinned:
                findings.append(Finding(site.path, site.line, "error", "unpinned",
                                        f"ADD {site.url}: '{site.ref or 'HEAD'}' can move; run `pinrepro lock` to "
                                        "pin its commit"))
                continue
            key = _lock_key(site, lock.urls)
            if key not in lock.urls:
                findings.append(Finding(site.path, site.line, "error", "not-locked",
                                        f"ADD {site.url} is not in {lock_name}: run `pinrepro lock`"))
            seen.add(key)
    for key in sorted(k for k, e in lock.urls.items() if is_git_entry(e) and k not in seen):
        findings.append(Finding(lock_name, None, "error", "stale-lock-entry",
                                f"{key} is in {lock_name} but no ADD uses it: run `pinrepro lock`"))
    return findings


def check_git_online(lock: Lock, lock_name: str, resolve: Resolve) -> list[Finding]:
    findings: list[Finding] = []
    for key, entry in sorted(lock.urls.items()):
        if entry.ref is None:
            continue
        commit = resolve(key.partition("#")[0], entry.ref, lock_name)
        if commit != entry.checksum:
            findings.append(Finding(lock_name, None, "warning", "git-ref-moved",
                                    f"ADD {key} now points to {commit[:12]} (locked: {entry.checksum[:12]}): "
                                    "`pinrepro lock --upgrade` moves the pin"))
    return findings
