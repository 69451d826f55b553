"""Small pure-Python wheels and a PEP 503 "simple" index on disk, so resolver tests never touch a network.

A wheel is a zip holding a module and ``<name>-<version>.dist-info/{METADATA,WHEEL,RECORD}``; ``Requires-Dist``
lines give dependency chains and ``Requires-Python`` lets a test see which target Python a resolver used.
Every zip entry has a fixed timestamp, so the same wheel has the same sha256 on every run and machine - the
hashes in expected lock files can be written down once.

The index is a directory tree ``simple/<project>/index.html`` whose links carry ``#sha256=`` and
``data-requires-python``; both pip and uv read it through a ``file://`` index URL, which (unlike bare
``--find-links``) also replaces PyPI as the default index, so nothing is fetched from the internet.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

_EPOCH = (2020, 1, 1, 0, 0, 0)


def normalize(name: str) -> str:
    """PEP 503 project name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Dist:
    name: str
    version: str
    requires: tuple[str, ...] = ()
    requires_python: str | None = None


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def build_wheel(directory: Path, dist: Dist) -> Path:
    """Write ``dist`` as a py3-none-any wheel into ``directory``; the bytes depend only on ``dist``."""
    stem = re.sub(r"[-_.]+", "_", dist.name)
    info = f"{stem}-{dist.version}.dist-info"
    metadata = ["Metadata-Version: 2.1", f"Name: {dist.name}", f"Version: {dist.version}"]
    if dist.requires_python:
        metadata.append(f"Requires-Python: {dist.requires_python}")
    metadata.extend(f"Requires-Dist: {req}" for req in dist.requires)
    files = {
        f"{stem.lower()}/__init__.py": f'__version__ = "{dist.version}"\n'.encode(),
        f"{info}/METADATA": ("\n".join(metadata) + "\n").encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: pinrepro-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}-{dist.version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, date_time=_EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    return path


class Wheelhouse:
    """Wheels under ``root/files`` and a simple index of them under ``root/simple``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = root / "files"
        self.simple = root / "simple"
        self.dists: list[Dist] = []

    def add(self, name: str, version: str, *requires: str, requires_python: str | None = None) -> Path:
        dist = Dist(name, version, tuple(requires), requires_python)
        self.dists.append(dist)
        path = build_wheel(self.files, dist)
        self.write_index()
        return path

    @property
    def index_url(self) -> str:
        return self.simple.as_uri()

    def sha256(self, name: str, version: str) -> str:
        stem = re.sub(r"[-_.]+", "_", name)
        return hashlib.sha256((self.files / f"{stem}-{version}-py3-none-any.whl").read_bytes()).hexdigest()

    def write_index(self) -> None:
        projects: dict[str, list[Dist]] = {}
        for dist in self.dists:
            projects.setdefault(normalize(dist.name), []).append(dist)
        self.simple.mkdir(parents=True, exist_ok=True)
        links = "".join(f'<a href="{p}/">{p}</a>\n' for p in sorted(projects))
        (self.simple / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n")
        for project, dists in projects.items():
            rows = []
            for dist in dists:
                stem = re.sub(r"[-_.]+", "_", dist.name)
                filename = f"{stem}-{dist.version}-py3-none-any.whl"
                digest = hashlib.sha256((self.files / filename).read_bytes()).hexdigest()
                attr = ""
                if dist.requires_python:
                    attr = f' data-requires-python="{html.escape(dist.requires_python)}"'
                rows.append(f'<a href="../../files/{filename}#sha256={digest}"{attr}>{filename}</a>\n')
            (self.simple / project).mkdir(exist_ok=True)
            (self.simple / project / "index.html").write_text(
                f"<!DOCTYPE html>\n<html><body>\n{''.join(rows)}</body></html>\n"
            )

    def copy(self, root: Path) -> Wheelhouse:
        """An independent copy (for a test that publishes more wheels)."""
        shutil.copytree(self.root, root)
        clone = Wheelhouse(root)
        clone.dists = list(self.dists)
        return clone
