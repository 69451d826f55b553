"""The package indexes a layer is compiled against: ``${VAR}`` credentials, reachability, and the lock's index lines.

Three promises live here:

* **The configured index, and only that, goes into the lock** (``index_lines``): ``--index-url`` /
  ``--extra-index-url`` / URL ``--find-links`` as the user wrote them, so ``pip install -r <lock>`` in the image
  finds the same wheels without extra flags. Nothing from pip.conf / ``PIP_*`` / ``UV_*`` (resolvers.py keeps
  those away from the resolver altogether).
* **No credential reaches a lock, a summary, stdout or an error** (``Secrets``): an index URL or a ``.in`` line
  written as ``https://${INDEX_USER}:${INDEX_TOKEN}@host/...`` is expanded from the environment only for the
  resolver; every text coming back (the lock, the resolver's output, an error) has the expanded form turned back
  into the ``${VAR}`` form, which pip expands again at install time. A URL with a literal password cannot be
  written into a lock without leaking it, so it is refused with the way to fix it.
* **An index that fails is an error, not a silent fallback** (``probe``): pip skips an index it cannot read and
  resolves from the others (the user asked for CUDA 12.4 wheels and gets CUDA 13 ones from PyPI); so before a
  resolver runs, each configured index must answer, within its ``index_timeout``.
"""

from __future__ import annotations

import base64
import re
import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pinrepro.config import IndexOptions
from pinrepro.errors import ConfigError, ResolverError
from pinrepro.scrub import URL, VARIABLE, literal_credentials, redact

# pip expands ${NAME} (upper case, digits, underscore) in requirement files; the same form is accepted in the
# configuration's index URLs.
# A value this short would match inside unrelated text; such a "secret" is no secret worth scrubbing for.
_MIN_SECRET = 4


@dataclass(frozen=True)
class Secrets:
    """Expands ``${VAR}`` for the resolver, and turns every expanded text back into its ``${VAR}`` form."""

    environ: Mapping[str, str] = field(repr=False)
    # expanded text -> the text as written; filled by ``expand``
    written: dict[str, str] = field(default_factory=dict, repr=False)

    def expand(self, text: str, *, where: str) -> str:
        """``text`` with every ``${VAR}`` replaced from the environment; an unset variable is an error."""
        if "${" not in text:
            return text
        missing = [name for name in VARIABLE.findall(text) if not self.environ.get(name)]
        if missing:
            raise ConfigError(
                f"${{{missing[0]}}} is not set in the environment", where=where,
                fix=f"export {missing[0]} before `pinrepro lock` (the lock keeps ${{{missing[0]}}}, "
                    "for pip to expand at install time)",
            )
        expanded = VARIABLE.sub(lambda m: self.environ[m.group(1)], text)
        if expanded != text:
            self.written[expanded] = text
        return expanded

    def expand_requirements(self, text: str, *, where: str) -> str:
        """A requirements file with ``${VAR}`` expanded in its URLs (what pip would do, but from our environment)."""
        lines = []
        for number, line in enumerate(text.splitlines(keepends=True), start=1):
            place = f"{where}:{number}"
            lines.append(URL.sub(lambda match: self.expand(match.group(0), where=place), line))  # noqa: B023
        return "".join(lines)

    def values(self) -> dict[str, str]:
        """Variable name -> value of every variable that was expanded (the secrets to keep out of any text)."""
        names = {name for text in self.written.values() for name in VARIABLE.findall(text)}
        return {name: self.environ[name] for name in names if len(self.environ.get(name, "")) >= _MIN_SECRET}

    def restore(self, text: str) -> str:
        """``text`` (a lock) with every expanded URL back in its written form; nothing else is touched."""
        for expanded in sorted(self.written, key=len, reverse=True):
            text = text.replace(expanded, self.written[expanded])
        return text

    def scrub(self, text: str) -> str:
        """``text`` for display: expanded URLs back in their written form, any leftover secret as ``${VAR}``
        (even inside other words: a message may be garbled, never leak), written-out URL credentials masked."""
        secrets = sorted(self.values().items(), key=lambda item: -len(item[1]))

        def hide(part: str) -> str:
            for name, value in secrets:
                part = part.replace(value, f"${{{name}}}")
                quoted = urllib.parse.quote(value, safe="")
                if quoted != value:
                    part = part.replace(quoted, f"${{{name}}}")
            return part

        # the ${VAR} forms already there are left whole (a value may be part of a variable's name)
        pieces = re.split(r"(\$\{[A-Z0-9_]+\})", self.restore(text))
        return redact("".join(piece if VARIABLE.fullmatch(piece) else hide(piece) for piece in pieces))

    def check_lock(self, text: str, *, where: str) -> None:
        """Refuse a lock text (already ``restore``d) that would carry a credential in one of its URLs."""
        secrets = self.values().values()
        for match in URL.finditer(text):
            url = match.group(0)
            if literal_credentials(url) or any(value in VARIABLE.sub("", url) for value in secrets):
                raise ConfigError(
                    f"a URL with a user or password written out would go into the lock ({self.scrub(url)})",
                    where=where,
                    fix="write the credentials as ${VAR} (e.g. https://${INDEX_USER}:${INDEX_TOKEN}@host/simple); "
                        "pip expands them at install time",
                )


def check_written_credentials(index: IndexOptions, *, where: str) -> None:
    """A configured index URL with a password written out would put it into every lock: refuse it."""
    for url in (index.index_url, *index.extra_index_urls, *index.find_links):
        if url and literal_credentials(url):
            raise ConfigError(
                f"the index URL {redact(url)} has its credentials written out, and the lock would carry them",
                where=where,
                fix="write them as ${VAR} (e.g. https://${INDEX_USER}:${INDEX_TOKEN}@host/simple) and export the "
                    "variables; pip expands them at install time",
            )


def index_lines(index: IndexOptions) -> list[str]:
    """The lock's index option lines, as the user wrote them (pip-tools' default ``--index-url`` lines)."""
    lines = [f"--index-url {index.index_url}"] if index.index_url else []
    lines += [f"--extra-index-url {url}" for url in index.extra_index_urls]
    # A local find-links directory is a path of this machine, which means nothing inside the image.
    lines += [f"--find-links {link}" for link in index.find_links if re.match(r"^https?://", link, re.I)]
    return lines


def configured_indexes(index: IndexOptions) -> list[str]:
    """Every index a resolver reads for this layer, as written (PyPI when none is configured)."""
    urls = [index.index_url] if index.index_url else []
    urls += list(index.extra_index_urls)
    urls += [link for link in index.find_links if "://" in link and not link.lower().startswith("file:")]
    return urls


# -- reachability ---------------------------------------------------------------------------------------------


def probe(urls: Iterable[tuple[str, str]], *, timeout: float, layer: str) -> None:
    """Raise ResolverError naming the first index (``(expanded, written)`` pairs) that does not answer."""
    for expanded, written in urls:
        problem = _probe_one(expanded, timeout)
        if problem is not None:
            raise ResolverError(
                f"the package index {redact(written)} {problem}", where=f"layer '{layer}'",
                fix="check the URL, the network and the credentials; a layer is never locked from the other "
                    "indexes alone (index_timeout sets how long an index may take)",
            )


def probe_pages(urls: Iterable[tuple[str, str]], projects: Iterable[str], *, timeout: float, layer: str) -> None:
    """After a pip-compile run: each index must have answered for every resolved project (a 404 is an answer).

    pip skips a project page it cannot fetch (a 500, a reset connection) without a word, even with --verbose,
    and resolves from the other indexes; fetching each page of each index again finds what it skipped.
    """
    pages = [(expanded, written, name) for expanded, written in urls
             if urllib.parse.urlsplit(expanded).scheme in ("http", "https") for name in sorted(set(projects))]
    if not pages:
        return

    def check(page: tuple[str, str, str]) -> str | None:
        expanded, _, name = page
        problem = _probe_one(f"{expanded.rstrip('/')}/{name}/", timeout, missing_ok=True)
        return None if problem is None else f"{problem} for {name}"

    with ThreadPoolExecutor(max_workers=8) as pool:
        for (_, written, _), problem in zip(pages, pool.map(check, pages), strict=True):
            if problem is not None:
                raise ResolverError(
                    f"the package index {redact(written)} {problem}", where=f"layer '{layer}'",
                    fix="check the index; the layer was not locked from the other indexes alone",
                )


def _probe_one(url: str, timeout: float, *, missing_ok: bool = False) -> str | None:
    """Why ``url`` cannot serve as an index, or None when it answers."""
    import urllib.request  # only when an index is probed: verify and a no-change lock never load it (#15)

    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "file":
        path = Path(urllib.request.url2pathname(parsed.path))
        return None if path.exists() else "does not exist"
    if parsed.scheme not in ("http", "https"):
        return None  # not ours to judge; the resolver will say
    result: list[str | None] = []
    # getaddrinfo ignores socket timeouts, so the whole request runs in a thread we stop waiting for.
    worker = threading.Thread(target=lambda: result.append(_head(parsed, timeout, missing_ok)), daemon=True,
                              name="pinrepro-index-probe")
    worker.start()
    worker.join(timeout + 1)
    if not result:
        return f"did not answer within {timeout:g} s"
    return result[0]


def _head(parsed: urllib.parse.SplitResult, timeout: float, missing_ok: bool) -> str | None:
    import urllib.error
    import urllib.request

    netloc = parsed.netloc.rsplit("@", 1)[-1]
    path = parsed.path if parsed.path.endswith("/") else parsed.path + "/"
    target = urllib.parse.urlunsplit((parsed.scheme, netloc, path, parsed.query, ""))
    # A project page is fetched as pip fetches it (GET; only its first bytes are read), the index root with HEAD
    # (PyPI's root lists every project).
    request = urllib.request.Request(target, method="GET" if missing_ok else "HEAD",
                                     headers={"User-Agent": "pinrepro"})
    if "@" in parsed.netloc:
        userinfo = urllib.parse.unquote(parsed.netloc.rsplit("@", 1)[0])
        request.add_header("Authorization", "Basic " + base64.b64encode(userinfo.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(1)
            return None
    except urllib.error.HTTPError as exc:
        if exc.code in (405, 501) or (missing_ok and exc.code in (404, 410)):
            return None  # an index that does not do HEAD (or has no such project) still answered
        if exc.code in (401, 403):
            return f"refused access (HTTP {exc.code})"
        return f"answered HTTP {exc.code}"
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            return f"did not answer within {timeout:g} s"
        if "SSL" in type(reason).__name__ or "SSL" in str(reason) or "CERTIFICATE" in str(reason).upper():
            return f"failed the TLS handshake ({_short(reason)})"
        return f"cannot be reached ({_short(reason)})"
    except TimeoutError:
        return f"did not answer within {timeout:g} s"
    except OSError as exc:
        return f"cannot be reached ({_short(exc)})"


def _short(reason: object) -> str:
    text = getattr(reason, "strerror", None) or str(reason)
    return redact(str(text)).split("\n")[0][:160]
