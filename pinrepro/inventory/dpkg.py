"""Installed Debian/Ubuntu packages from a dpkg database file (``var/lib/dpkg/status`` or ``status.d/*``).

The format (deb-control(5)): stanzas separated by blank lines, ``Field: value`` lines, continuation lines
starting with a space or tab. Only installed packages count: a stanza whose ``Status`` wants ``deinstall`` or
``purge``, or whose state is ``not-installed`` / ``config-files``, is dropped (as syft and trivy do).
Distroless images keep one file per package in ``status.d/`` and those stanzas often have no ``Status``:
there, a stanza without one is installed. A stanza that does not parse is counted in ``skipped`` rather
than failing the whole scan. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")
_VERSION = re.compile(r"[A-Za-z0-9.+~:-]+")
_FIELD = re.compile(r"([A-Za-z0-9][A-Za-z0-9_-]*):(.*)")
_WANT_INSTALLED = ("install", "hold")
_STATE_NOT_INSTALLED = ("not-installed", "config-files")


@dataclass(frozen=True, order=True)
class Package:
    name: str
    version: str
    architecture: str


@dataclass(frozen=True)
class StatusFile:
    """The installed packages of one dpkg database file, and how many stanzas were unreadable."""

    packages: tuple[Package, ...]
    skipped: int = 0


def _stanzas(text: str) -> list[list[str]]:
    stanzas: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.strip():
            current.append(line)
        elif current:
            stanzas.append(current)
            current = []
    if current:
        stanzas.append(current)
    return stanzas


def _fields(lines: list[str]) -> dict[str, str] | None:
    fields: dict[str, str] = {}
    last: str | None = None
    for line in lines:
        if line[0] in " \t":
            if last is None:
                return None  # a continuation before any field: not a stanza
            continue  # multi-line values (Description, Conffiles) are not needed
        match = _FIELD.fullmatch(line)
        if not match:
            return None
        last = match[1].lower()
        fields[last] = match[2].strip()
    return fields


def _installed(status: str | None, *, status_required: bool) -> bool | None:
    """True/False for a readable Status; None when it is malformed."""
    if status is None:
        return None if status_required else True
    words = status.split()
    if len(words) != 3:
        return None
    want, _flag, state = words
    return want in _WANT_INSTALLED and state not in _STATE_NOT_INSTALLED


def parse_status(data: bytes | str, *, status_required: bool = True) -> StatusFile:
    """Installed packages of a dpkg database file; ``status_required=False`` for distroless ``status.d`` files."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    packages: dict[tuple[str, str], Package] = {}
    skipped = 0
    for lines in _stanzas(text):
        fields = _fields(lines)
        if fields is None:
            skipped += 1
            continue
        name = fields.get("package", "")
        version = fields.get("version", "")
        arch = fields.get("architecture", "")
        installed = _installed(fields.get("status"), status_required=status_required)
        if installed is None or not _NAME.fullmatch(name) or not _VERSION.fullmatch(version) or not arch:
            skipped += 1
            continue
        if installed:
            packages[(name, arch)] = Package(name=name, version=version, architecture=arch)
    return StatusFile(packages=tuple(sorted(packages.values())), skipped=skipped)
