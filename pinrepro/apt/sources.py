"""apt's sources, read as apt reads them (sources.list(5): one-line ``.list`` and deb822 ``.sources``).

Only what resolving needs: binary (``deb``) entries that are enabled, with their options. Rendering writes
them back as one-line entries, optionally moved to an archive snapshot, for two readers: the private apt
that pinrepro runs on the host, and the build (the Dockerfile mounts the file; see the README).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from pinrepro.errors import PinreproError
from pinrepro.scrub import without_userinfo

SOURCES_LIST = "etc/apt/sources.list"
SOURCES_PARTS = "etc/apt/sources.list.d"
# The distribution's own archives, recognised without naming any mirror host: the archive name (the last part of
# the URI's path, as the snapshot services spell it) of a source the image's distribution files declare. A vendor
# repository added under sources.list.d (download.../linux/debian, a PPA) keeps its own files and is not one.
_DISTRIBUTION_ARCHIVES = frozenset({"debian", "debian-security", "debian-ports", "ubuntu", "ubuntu-ports"})
_DISTRIBUTION_FILES = frozenset({SOURCES_LIST, f"{SOURCES_PARTS}/debian.sources", f"{SOURCES_PARTS}/ubuntu.sources"})
_OPTIONS = re.compile(r"\[([^\]]*)\]")


@dataclass(frozen=True)
class Source:
    uri: str
    suite: str
    components: tuple[str, ...]
    options: tuple[tuple[str, str], ...] = ()  # key=value as written, e.g. ("signed-by", "/usr/share/...")
    inline_key: str | None = None  # a deb822 Signed-By that holds the key itself
    where: str = ""  # file:line, for messages

    @property
    def archive(self) -> str:
        """The archive's name as snapshot services spell it: the last part of the URI's path."""
        parts = [part for part in urlsplit(self.uri).path.split("/") if part]
        return parts[-1] if parts else ""

    @property
    def official(self) -> bool:
        """One of the distribution's own archives, which the Debian and Ubuntu snapshot services keep."""
        return self.archive in _DISTRIBUTION_ARCHIVES and self.where.rpartition(":")[0] in _DISTRIBUTION_FILES

    @property
    def public_uri(self) -> str:
        """The URI without ``user:password@``: what may be written to the lock, the build files and messages
        (credentials belong in apt's auth.conf, which the image keeps to itself)."""
        parts = urlsplit(self.uri)
        if "@" not in parts.netloc:
            return self.uri
        return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()

    def option(self, key: str) -> str | None:
        return next((value for name, value in self.options if name == key), None)


def read_sources(files: Mapping[str, bytes]) -> list[Source]:
    """The sources of an image's files (image paths without the leading ``/``), in apt's reading order."""
    sources: list[Source] = []
    if SOURCES_LIST in files:
        sources.extend(_one_line(files[SOURCES_LIST].decode("utf-8", "replace"), SOURCES_LIST))
    for path in sorted(files):
        directory, _, name = path.rpartition("/")
        if directory != SOURCES_PARTS:
            continue
        text = files[path].decode("utf-8", "replace")
        if name.endswith(".list"):
            sources.extend(_one_line(text, path))
        elif name.endswith(".sources"):
            sources.extend(_deb822(text, path))
    return sources


def _one_line(text: str, path: str) -> list[Source]:
    sources = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        options: list[tuple[str, str]] = []
        match = _OPTIONS.search(line)
        if match:
            for item in match.group(1).split():
                key, _, value = item.partition("=")
                options.append((key.lower(), value))
            line = line[:match.start()] + line[match.end():]
        words = line.split()
        if len(words) < 3 or words[0] not in ("deb", "deb-src"):
            # The line may hold a mirror's user:password@ (apt allows it): never in a message.
            shown = without_userinfo(line)
            raise PinreproError(f"cannot read the apt source '{shown}'", where=f"{path}:{number}",
                                fix="write it as 'deb [options] URI suite [component...]' (sources.list(5))")
        if words[0] == "deb":
            sources.append(Source(words[1], words[2], tuple(words[3:]), tuple(options), None, f"{path}:{number}"))
    return sources


def _deb822(text: str, path: str) -> list[Source]:
    sources = []
    for number, fields in _stanzas(text):
        where = f"{path}:{number}"
        if fields.get("enabled", "yes").strip().lower() == "no":
            continue
        if "deb" not in fields.get("types", "").split():
            continue
        signed_by = fields.get("signed-by", "").strip()
        inline = signed_by if "BEGIN PGP PUBLIC KEY BLOCK" in signed_by else None
        options: list[tuple[str, str]] = []
        for key in ("architectures", "trusted", "check-valid-until", "allow-insecure", "signed-by"):
            value = fields.get(key, "").strip()
            if value and not (key == "signed-by" and inline):
                name = {"architectures": "arch"}.get(key, key)
                options.append((name, ",".join(value.split())))
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                sources.append(Source(uri, suite, tuple(fields.get("components", "").split()), tuple(options),
                                      inline, where))
    return sources


def _stanzas(text: str) -> list[tuple[int, dict[str, str]]]:
    stanzas: list[tuple[int, dict[str, str]]] = []
    fields: dict[str, str] = {}
    start = 0
    key = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("#"):
            continue
        if not line.strip():
            if fields:
                stanzas.append((start, fields))
            fields, key = {}, ""
            continue
        if line[0] in " \t" and key:
            piece = line.strip()
            fields[key] += "\n" + ("" if piece == "." else piece)
            continue
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if not fields:
            start = number
        fields[key] = value.strip()
    if fields:
        stanzas.append((start, fields))
    return stanzas


def snapshot_uri(source: Source, template: str, timestamp: str) -> str:
    """``template`` with ``{archive}`` and ``{timestamp}`` filled in, e.g.
    ``https://snapshot.debian.org/archive/{archive}/{timestamp}/`` -> ``.../archive/debian/20240102T030405Z/``."""
    return template.format(archive=source.archive, timestamp=timestamp)


def render(sources: list[Source], *, uri_for: Callable[[Source], str] | None = None,
           key_path: Callable[[Source], str | None] | None = None, snapshot: bool = False,
           public: bool = False) -> str:
    """One-line entries for ``sources``; ``uri_for`` moves a source (to its snapshot), ``key_path`` says where
    its key is (or None to keep the written signed-by)."""
    lines = []
    for source in sources:
        options = [(k, v) for k, v in source.options if k != "signed-by"]
        key = key_path(source) if key_path else None
        written_key = source.option("signed-by")
        if key or written_key:
            options.append(("signed-by", key or written_key or ""))
        if snapshot:
            # Snapshots serve Release files as they were; an expired Valid-Until must not stop the build.
            options = [(k, v) for k, v in options if k != "check-valid-until"] + [("check-valid-until", "no")]
        rendered = f"[{' '.join(f'{k}={v}' for k, v in options)}] " if options else ""
        uri = uri_for(source) if uri_for else source.uri
        if public:
            uri = Source(uri, source.suite, source.components).public_uri
        lines.append(f"deb {rendered}{uri} {source.suite} {' '.join(source.components)}".rstrip() + "\n")
    return "".join(lines)
