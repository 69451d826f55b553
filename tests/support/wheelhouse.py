"""Small pure-Python wheels and a PEP 503 "simple" index on disk, so resolver tests never touch a network.

A wheel is a zip holding a module and ``<name>-<version>.dist-info/{METADATA,WHEEL,RECORD}``; ``Requires-Dist``
lines give dependency chains and ``Requires-Python`` lets a test see which target Python a resolver used.
Every zip entry has a fixed timestamp, so the same wheel has the same sha256 on every run and machine - the
hashes in expected lock files can be written down once.

The index is a directory tree ``simple/<project>/index.html`` whose links carry ``#sha256=`` and
``data-requires-python``; both pip and uv read it through a ``file://`` index URL, which (unlike bare
``--find-links``) also replaces PyPI as the default index, so nothing is fetched from the internet.
``serve()`` puts the same tree behind an HTTP server on 127.0.0.1, for what a file:// index cannot show
(index options written into a lock, an index that answers 404 or 500).

A dist built for ``platforms`` (e.g. ``manylinux2014_x86_64``) gets one ``py3-none-<platform>`` wheel per
platform instead of a pure one: the per-architecture wheels of an ML stack, in miniature.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import http.server
import re
import shutil
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    platforms: tuple[str, ...] = ()  # wheel platform tags; () means one py3-none-any wheel

    def filenames(self) -> list[str]:
        stem = re.sub(r"[-_.]+", "_", self.name)
        return [f"{stem}-{self.version}-py3-none-{tag}.whl" for tag in (self.platforms or ("any",))]


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def build_wheel(directory: Path, dist: Dist) -> Path:
    """Write ``dist`` as wheel(s) into ``directory`` (the first one's path); the bytes depend only on ``dist``."""
    paths = [_build_one(directory, dist, tag) for tag in (dist.platforms or ("any",))]
    return paths[0]


def _build_one(directory: Path, dist: Dist, platform: str) -> Path:
    stem = re.sub(r"[-_.]+", "_", dist.name)
    info = f"{stem}-{dist.version}.dist-info"
    purelib = "true" if platform == "any" else "false"
    metadata = ["Metadata-Version: 2.1", f"Name: {dist.name}", f"Version: {dist.version}"]
    if dist.requires_python:
        metadata.append(f"Requires-Python: {dist.requires_python}")
    metadata.extend(f"Requires-Dist: {req}" for req in dist.requires)
    files = {
        f"{stem.lower()}/__init__.py": f'__version__ = "{dist.version}"\n'.encode(),
        f"{info}/METADATA": ("\n".join(metadata) + "\n").encode(),
        f"{info}/WHEEL": (f"Wheel-Version: 1.0\nGenerator: pinrepro-tests\nRoot-Is-Purelib: {purelib}\n"
                          f"Tag: py3-none-{platform}\n").encode(),
    }
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}-{dist.version}-py3-none-{platform}.whl"
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

    def add(self, name: str, version: str, *requires: str, requires_python: str | None = None,
            platforms: tuple[str, ...] = ()) -> Path:
        dist = Dist(name, version, tuple(requires), requires_python, platforms)
        self.dists.append(dist)
        path = build_wheel(self.files, dist)
        self.write_index()
        return path

    @property
    def index_url(self) -> str:
        return self.simple.as_uri()

    def sha256(self, name: str, version: str, platform: str = "any") -> str:
        stem = re.sub(r"[-_.]+", "_", name)
        return hashlib.sha256((self.files / f"{stem}-{version}-py3-none-{platform}.whl").read_bytes()).hexdigest()

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
                for filename in dist.filenames():
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


@contextmanager
def serve(root: Path, *, auth: tuple[str, str] | None = None) -> Iterator[str]:
    """Serve ``root`` over HTTP on 127.0.0.1; yields the base URL (``<url>/simple`` is the index).

    With ``auth`` (user, password), every request without those Basic credentials gets 401, as a private
    index would answer.
    """
    expected = None if auth is None else "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    handler = functools.partial(_QuietHandler, expected, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="wheel-index", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, authorization: str | None, *args: Any, **kwargs: Any) -> None:
        self.authorization = authorization
        super().__init__(*args, **kwargs)

    def send_head(self) -> Any:
        if self.authorization is not None and self.headers.get("Authorization") != self.authorization:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="wheels"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return super().send_head()

    def log_message(self, format: str, *args: object) -> None:
        pass
