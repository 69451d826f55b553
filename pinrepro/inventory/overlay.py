"""Layers stacked top-down: which version of each interesting file the final image has, and when to stop.

image-spec ``layer.md``: layers apply bottom to top; ``.wh.<name>`` deletes ``<name>`` (and everything under
it) from lower layers, and ``.wh..wh..opq`` empties its directory in lower layers. The newest layer holding a
file wins, so the overlay is fed from the top: the first version seen of a path is final, and a path an
upper layer deleted can no longer appear. ``complete()`` says when no lower layer can change the answer, so
the scan stops without downloading them. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pinrepro.inventory.cuda import upstream_version
from pinrepro.inventory.dpkg import Package, StatusFile
from pinrepro.inventory.layers import (
    DPKG_STATUS,
    DPKG_STATUS_D,
    ETC_OS_RELEASE,
    PYTHON_DIR,
    USR_OS_RELEASE,
    FileFact,
    LayerFacts,
    is_interesting,
)
from pinrepro.inventory.osrelease import OsInfo

_PYTHON_MINOR = re.compile(r"python3\.(\d+)")
_DPKG_PYTHON = re.compile(r"python3\.(\d+)(?:-minimal)?")
_MAX_LINKS = 8


@dataclass(frozen=True)
class _Deleted:
    """A path an upper layer deleted (whiteout or opaque directory)."""


DELETED = _Deleted()


@dataclass(frozen=True)
class DpkgDatabase:
    packages: tuple[Package, ...]
    skipped: dict[str, int]  # file -> number of unreadable stanzas (only files with some)


class Overlay:
    """The merged view of the layers fed so far, top layer first."""

    def __init__(self) -> None:
        self._found: dict[str, FileFact] = {}
        self._whiteouts: set[str] = set()
        self._opaque: set[str] = set()
        self.layers = 0
        self._bottom = False

    def add(self, facts: LayerFacts) -> None:
        """Feed the next lower layer."""
        for path, fact in facts.files.items():
            if path not in self._found and not self.hidden(path):
                self._found[path] = fact
        # A layer's own whiteouts hide only what is below it, so they count after its files.
        self._whiteouts |= facts.whiteouts
        self._opaque |= facts.opaque
        self.layers += 1

    def reached_bottom(self) -> None:
        """Every layer was fed: a path not seen by now does not exist in the image."""
        self._bottom = True

    def hidden(self, path: str) -> bool:
        """Whether an upper layer deleted ``path`` (itself, an ancestor, or by emptying an ancestor)."""
        if path in self._whiteouts:
            return True
        parts = path.split("/")
        for i in range(len(parts)):
            ancestor = "/".join(parts[:i])
            if ancestor in self._opaque or (ancestor and ancestor in self._whiteouts):
                return True
        return False

    def lookup(self, path: str) -> FileFact | _Deleted | None:
        """The final version of ``path``, DELETED when it is gone, None when a lower layer may still hold it."""
        found = self._found.get(path)
        if found is not None:
            return found
        return DELETED if self._bottom or self.hidden(path) else None

    def resolve(self, path: str) -> tuple[FileFact | None, bool]:
        """Follow symlinks among the paths we track: (the file or None when absent, whether that is final)."""
        for _ in range(_MAX_LINKS):
            entry = self.lookup(path)
            if entry is None:
                return None, False
            if isinstance(entry, _Deleted):
                return None, True
            if entry.kind == "file":
                return entry, True
            if entry.target is None or not is_interesting(entry.target):
                # A link out of what we read (e.g. to /run): honestly unknown, and no layer can change that.
                return None, True
            path = entry.target
        return None, True  # a symlink loop

    # -- what the image has -----------------------------------------------------------------------

    def os_release(self) -> tuple[OsInfo | None, bool]:
        """os-release(5): ``etc/os-release``, falling back to ``usr/lib/os-release`` when the former is absent."""
        for path in (ETC_OS_RELEASE, USR_OS_RELEASE):
            fact, final = self.resolve(path)
            if not final:
                return None, False
            if fact is not None and fact.os_release is not None:
                return OsInfo.from_values(dict(fact.os_release)), True
        return None, True

    def _status_d(self) -> dict[str, FileFact]:
        prefix = DPKG_STATUS_D + "/"
        return {p: f for p, f in self._found.items() if p.startswith(prefix) and f.kind == "file"}

    def dpkg(self) -> tuple[DpkgDatabase | None, bool]:
        """The dpkg database (``status`` plus distroless ``status.d/*``), and whether it is final.

        ``status`` is final once found; ``status.d`` is a directory whose files add up across layers, so it
        is final only when an upper layer emptied it, or when ``status`` was found and no layer read so far
        had ``status.d`` files (Debian's dpkg writes only ``status``; distroless images only ``status.d``).
        """
        status, status_final = self.resolve(DPKG_STATUS)
        status_d = self._status_d()
        status_d_closed = self.hidden(DPKG_STATUS_D + "/-")
        final = self._bottom or (status_final and (status_d_closed or (status is not None and not status_d)))
        files: dict[str, StatusFile] = {}
        if status is not None and status.status is not None:
            files[DPKG_STATUS] = status.status
        for path, fact in sorted(status_d.items()):
            if fact.status is not None:
                files[path] = fact.status
        if not files:
            return None, final
        packages: dict[tuple[str, str], Package] = {}
        for status_file in files.values():
            for package in status_file.packages:
                packages.setdefault((package.name, package.architecture), package)
        skipped = {path: f.skipped for path, f in files.items() if f.skipped}
        return DpkgDatabase(packages=tuple(sorted(packages.values())), skipped=skipped), final

    def local_python(self) -> tuple[str | None, bool]:
        """``major.minor`` of a Python in ``usr/local/bin`` (built from source, as the python images do)."""
        prefix = PYTHON_DIR + "/"
        names = {p[len(prefix):]: f for p, f in self._found.items() if p.startswith(prefix)}
        if not names:
            return None, self._bottom or self.hidden(PYTHON_DIR + "/python3")
        default = names.get("python3")
        if default is not None and default.kind == "symlink" and default.target:
            match = _PYTHON_MINOR.fullmatch(default.target.rpartition("/")[2])
            if match:
                return f"3.{match[1]}", True
        minors = sorted(int(m[1]) for name in names if (m := _PYTHON_MINOR.fullmatch(name)))
        return (f"3.{minors[-1]}" if minors else None), True

    def complete(self, *, need_python: bool) -> bool:
        """True when no lower layer can change the os-release, the dpkg database or (if needed) Python."""
        if not self.os_release()[1]:
            return False
        database, dpkg_final = self.dpkg()
        if not dpkg_final:
            return False
        if not need_python:
            return True
        # Python is settled by a usr/local/bin interpreter, or else by the dpkg database: a python built into
        # /usr/local *below* the last apt layer is not looked for, because proving its absence would mean
        # downloading every layer of every image (CUDA images are gigabytes) - set PYTHON_VERSION instead.
        _, local_final = self.local_python()
        return local_final or database is not None or self.hidden(DPKG_STATUS)


def python_from_dpkg(packages: tuple[Package, ...]) -> str | None:
    """The upstream version of the default ``python3.N`` package (``3.10.12``), or the newest one installed."""
    by_minor: dict[int, str] = {}
    default_minor: int | None = None
    for package in packages:
        if package.name == "python3":
            parts = (upstream_version(package.version) or "").split(".")
            if len(parts) >= 2 and parts[1].isdigit():
                default_minor = int(parts[1])
            continue
        match = _DPKG_PYTHON.fullmatch(package.name)
        if match:
            upstream = upstream_version(package.version)
            minor = int(match[1])
            # python3.N and python3.N-minimal carry the same version; prefer the full package's.
            if upstream and (minor not in by_minor or not package.name.endswith("-minimal")):
                by_minor[minor] = upstream
    if default_minor is not None and default_minor in by_minor:
        return by_minor[default_minor]
    if default_minor is not None:
        return f"3.{default_minor}"
    return by_minor[max(by_minor)] if by_minor else None
