"""``ADD <url>`` pinned by checksum: found with the Dockerfile reader, downloaded once, recorded in the lock.

BuildKit verifies ``ADD --checksum=sha256:<hex> <url>`` (Dockerfile syntax 1.6 and later) and fails the build
when the download differs. Older frontends reject the flag, so pinrepro writes it only when the Dockerfile asks
for a new enough frontend (``# syntax=docker/dockerfile:1`` or 1.6+), or adds that line when the user opted in
(``syntax_directive = true``); otherwise it reports the ADD. With ``pin = "policy"`` the checksum goes into the
source policy (``http.checksum``) instead and the Dockerfile stays as written.

A URL with credentials in it (``https://user:token@host/...``) is never downloaded or recorded: the lock and
the output would carry the secret.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pinrepro.addgit import is_git_entry, is_git_source
from pinrepro.dockerfile import Dockerfile, Instruction, add_arguments, apply_edits, instructions
from pinrepro.errors import PinreproError
from pinrepro.findings import Finding
from pinrepro.lockfile import Lock, UrlLock
from pinrepro.reference import short_digest
from pinrepro.scrub import redact

if TYPE_CHECKING:
    import requests

SYNTAX_LINE = "# syntax=docker/dockerfile:1"
_CHUNK = 1 << 20
_CHECKSUM = re.compile(r"sha256:[a-f0-9]{64}")
# Tags of docker/dockerfile that know ADD --checksum: 1, 1-labs, latest, 1.6 and later.
_SYNTAX_TAG = re.compile(r"(?:1|latest|labs)(?:-labs)?|1\.(\d+)(?:\.\d+)?(?:-labs)?")


@dataclass(frozen=True)
class AddSite:
    """One ``ADD <url>`` instruction."""

    path: str
    line: int
    url: str
    checksum: str | None  # the --checksum written in the Dockerfile
    reason: str | None = None  # why it cannot be pinned (None: it can)

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"


def find_adds(dockerfile: Dockerfile) -> list[AddSite]:
    found, _ = instructions(dockerfile.text, dockerfile.path)
    return [site for ins in found if (site := _add_site(dockerfile.path, ins)) is not None]


def _add_site(path: str, ins: Instruction) -> AddSite | None:
    if ins.command != "add":
        return None
    words = add_arguments(ins)
    sources = words[:-1]
    # Git sources (repo.git#ref) are pinned to a commit by pinrepro.addgit, not by checksum.
    urls = [word for word in sources if word.startswith(("http://", "https://")) and not is_git_source(word)]
    if not urls:
        return None
    checksum = next((flag.partition("=")[2] for flag in ins.flags if flag.startswith("--checksum=")), None)
    url = urls[0]
    reason = None
    if len(sources) > 1:
        reason = "ADD --checksum takes a single source; give each URL its own ADD"
    elif "$" in url:
        reason = "the URL is built from a variable"
    elif urlsplit(url).username or urlsplit(url).password:
        url = redact(url)
        reason = "the URL carries credentials, which must not go into the lock; use a build secret instead"
    return AddSite(path, ins.line, url, checksum, reason)


def syntax_supports_checksum(directives: dict[str, str]) -> bool:
    syntax = directives.get("syntax", "")
    name, _, tag = syntax.partition("@")[0].rpartition(":")
    if not name.endswith(("docker/dockerfile", "docker/dockerfile-upstream")):
        return False
    match = _SYNTAX_TAG.fullmatch(tag)
    return match is not None and (match.group(1) is None or int(match.group(1)) >= 6)


def fetch_checksum(url: str, *, max_bytes: int, where: str, session: requests.Session | None = None,
                   timeout: float = 60.0) -> tuple[str, int]:
    """Download ``url`` once, streaming, and return (sha256 checksum, size); more than ``max_bytes`` is an error."""
    # requests and the deadline machinery load only when an ADD is downloaded: start-up stays fast (issue #15).
    import requests
    import urllib3

    from pinrepro.registry import deadline

    http = session or deadline.watched_session()
    digest = hashlib.sha256()
    size = 0
    seconds = deadline.setting("PINREPRO_BLOB_DEADLINE", 1800.0)
    limit = None
    try:
        # A total deadline (#14): a server that drips must not hold lock forever, nor hand us a cut body.
        with deadline.scope(seconds) as limit, \
                http.get(url, stream=True, timeout=timeout, allow_redirects=True) as response:
            if response.status_code >= 400:
                raise PinreproError(f"ADD {url}: the server answered {response.status_code}", where=where,
                                    fix="check the URL (and that it is public)")
            for chunk in _chunks(response):
                size += len(chunk)
                if size > max_bytes:
                    raise PinreproError(f"ADD {url} is larger than add_max_bytes ({max_bytes} bytes)", where=where,
                                        fix="raise add_max_bytes in the pinrepro configuration if that is expected")
                digest.update(chunk)
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        if limit is not None and limit.fired:
            raise _too_slow(url, where, seconds) from None
        raise PinreproError(f"cannot download ADD {url}: {type(exc).__name__}", where=where,
                            fix="check the URL and the network, then run `pinrepro lock` again") from None
    if limit is not None and limit.fired:  # the body ended because the deadline cut it: not the whole file
        raise _too_slow(url, where, seconds)
    return f"sha256:{digest.hexdigest()}", size


def _too_slow(url: str, where: str, seconds: float) -> PinreproError:
    return PinreproError(f"cannot download ADD {url}: not complete within {seconds:g}s", where=where,
                         fix="try again later, or raise PINREPRO_BLOB_DEADLINE")


def _chunks(response: requests.Response) -> Iterator[bytes]:
    """The (decoded) body as it arrives: ``read1`` returns after one read from the socket, where
    ``iter_content`` waits for a whole chunk, so the size cap acts between a dripping server's bytes (the
    deadline's watchdog cuts the socket when the whole download takes too long)."""
    read1 = getattr(response.raw, "read1", None)
    if read1 is None:  # urllib3 1.x has no read1: only each chunk is checked against the clock
        yield from response.iter_content(_CHUNK)
        return
    while chunk := read1(_CHUNK, decode_content=True):
        yield chunk


def pin_text(dockerfile: Dockerfile, checksum_for: Callable[[AddSite], str | None], *,
             add_syntax: bool) -> tuple[str, list[Finding]]:
    """The Dockerfile text with ``--checksum`` on each ADD whose checksum is known; findings for the rest."""
    text = dockerfile.text
    found, directives = instructions(text, dockerfile.path)
    edits: dict[tuple[int, int], str] = {}
    findings: list[Finding] = []
    for ins in found:
        site = _add_site(dockerfile.path, ins)
        if site is None or site.reason is not None:
            continue
        checksum = checksum_for(site)
        if checksum is None or checksum == site.checksum:
            continue
        start, end, replacement = _checksum_edit(ins, checksum)
        edits[(start, end)] = replacement
    if not edits:
        return text, findings
    prefix = ""
    if not syntax_supports_checksum(directives):
        if not add_syntax or "syntax" in directives:
            findings.append(Finding(
                dockerfile.path, 1, "warning", "add-needs-syntax",
                "ADD --checksum needs Dockerfile syntax 1.6 or later: add the line "
                f"'{SYNTAX_LINE}' (or set syntax_directive = true) and run `pinrepro lock`; its ADD URLs stay "
                "unpinned in the Dockerfile"))
            return text, findings
        prefix = SYNTAX_LINE + ("\r\n" if "\r\n" in text else "\n")
    new_text = apply_edits(text, edits)
    if prefix:
        bom = "\ufeff" if new_text.startswith("\ufeff") else ""
        new_text = bom + prefix + new_text[len(bom):]
    return new_text, findings


def _checksum_edit(ins: Instruction, checksum: str) -> tuple[int, int, str]:
    """Replace the value of an existing --checksum flag, or insert the flag before the first argument."""
    flag = ins.text.find("--checksum=", ins.args_at, ins.rest_at)  # among the flags, never inside the URL
    if flag >= 0:
        start = flag + len("--checksum=")
        end = start
        while end < len(ins.text) and not ins.text[end].isspace():
            end += 1
        return ins.offsets[start], ins.offsets[end - 1] + 1, checksum
    at = ins.offsets[ins.args_at]
    return at, at, f"--checksum={checksum} "


def is_checksum(value: str) -> bool:
    return _CHECKSUM.fullmatch(value) is not None


Fetch = Callable[[str, str], tuple[str, int]]  # (url, where) -> (checksum, size)


def lock_urls(dockerfiles: list[Dockerfile], previous: Mapping[str, UrlLock], *, upgrade: bool,
              fetch: Fetch) -> tuple[dict[str, UrlLock], list[Finding]]:
    """Per URL: keep the old checksum unless ``upgrade``; else (or when new) download it once."""
    findings: list[Finding] = []
    by_url: dict[str, list[AddSite]] = {}
    for dockerfile in dockerfiles:
        for site in find_adds(dockerfile):
            if site.reason is not None:
                findings.append(Finding(site.path, site.line, "warning", "add-unpinnable",
                                        f"cannot pin ADD {site.url}: {site.reason}"))
            else:
                by_url.setdefault(site.url, []).append(site)
    urls: dict[str, UrlLock] = {}
    for url, group in sorted(by_url.items()):
        sites = tuple(sorted({site.location for site in group}))
        written = {site.checksum for site in group if site.checksum}
        if len(written) > 1:
            raise PinreproError(f"ADD {url} has different --checksum values at {', '.join(sites)}",
                                fix="make them agree (or remove them) and run `pinrepro lock`")
        user = next(iter(written), None)
        if user is not None and not is_checksum(user):
            raise PinreproError(f"ADD --checksum={user} is not sha256:<64 hex digits>", where=sites[0])
        prev = previous.get(url)
        if prev is not None and not upgrade and user in (None, prev.checksum):
            urls[url] = replace(prev, sites=sites)
        elif user is not None and not upgrade:
            urls[url] = UrlLock(checksum=user, sites=sites)  # pinned by hand: trusted like a hand-written digest
        else:
            checksum, size = fetch(url, sites[0])
            urls[url] = UrlLock(checksum=checksum, size=size, sites=sites)
    return urls, findings


def check_urls(dockerfiles: list[Dockerfile], lock: Lock, lock_name: str, *, in_dockerfiles: bool) -> list[Finding]:
    """verify: every ADD URL locked, and (unless pin = "policy") pinned in the Dockerfile to the lock's checksum."""
    findings: list[Finding] = []
    seen: set[str] = set()
    for dockerfile in dockerfiles:
        for site in find_adds(dockerfile):
            if site.reason is not None:
                continue
            seen.add(site.url)
            entry = lock.urls.get(site.url)
            if entry is None:
                findings.append(Finding(site.path, site.line, "error", "not-locked",
                                        f"ADD {site.url} is not in {lock_name}: run `pinrepro lock`"))
            elif site.checksum is None and in_dockerfiles:
                findings.append(Finding(site.path, site.line, "error", "unpinned",
                                        f"ADD {site.url} has no --checksum: run `pinrepro lock`"))
            elif site.checksum is not None and site.checksum != entry.checksum:
                findings.append(Finding(site.path, site.line, "error", "drift",
                                        f"ADD {site.url} has --checksum={short_digest(site.checksum)} but "
                                        f"{lock_name} has {short_digest(entry.checksum)}: run `pinrepro lock`, or "
                                        "restore the line"))
    for url in sorted(u for u, entry in lock.urls.items() if u not in seen and not is_git_entry(entry)):
        findings.append(Finding(lock_name, None, "error", "stale-lock-entry",
                                f"{url} is in {lock_name} but no ADD uses it: run `pinrepro lock`"))
    return findings


def check_urls_online(lock: Lock, lock_name: str, fetch: Fetch) -> list[Finding]:
    """verify --online: download each locked URL again; a different checksum means the file changed upstream."""
    findings: list[Finding] = []
    for url, entry in sorted(lock.urls.items()):
        if is_git_entry(entry):
            continue
        try:
            checksum, _ = fetch(url, lock_name)
        except PinreproError as exc:
            findings.append(Finding(lock_name, None, "error", "url-gone", exc.what))
            continue
        if checksum != entry.checksum:
            findings.append(Finding(lock_name, None, "warning", "url-changed",
                                    f"ADD {url} now has {short_digest(checksum)} "
                                    f"(locked: {short_digest(entry.checksum)}): `pinrepro lock --upgrade` moves "
                                    "the pin"))
    return findings


def fetcher(max_bytes: int) -> Fetch:
    sessions: list[requests.Session] = []  # made by the first download: most runs download nothing

    def fetch(url: str, where: str) -> tuple[str, int]:
        if not sessions:
            from pinrepro.registry import deadline

            sessions.append(deadline.watched_session())
        return fetch_checksum(url, max_bytes=max_bytes, where=where, session=sessions[0])

    return fetch
