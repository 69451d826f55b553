"""A content-addressed cache of what pinrepro read from blobs, under ``$XDG_CACHE_HOME/pinrepro``.

Layers, configs and manifests are immutable: a blob's digest names its bytes, so a cached result is valid
forever and a cached layer is never downloaded again. Files are written atomically (temp file + rename), so
a crash leaves the old entry or none; an entry that does not parse, or whose bytes no longer hash to their
name, is ignored (and rewritten by the next scan). The directory carries a schema number: a pinrepro that
extracts more from a layer uses a new one rather than trusting facts an older version wrote.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
from pathlib import Path

from pinrepro.inventory.layers import LayerFacts

LAYER_SCHEMA = 1
_DIGEST = re.compile(r"(sha256|sha512):([a-f0-9]{64}|[a-f0-9]{128})")


def default_cache_dir(env: dict[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/pinrepro``, or ``~/.cache/pinrepro`` (XDG base directory spec)."""
    environ = os.environ if env is None else env
    base = environ.get("XDG_CACHE_HOME", "").strip()
    # The spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
    root = Path(base) if base and os.path.isabs(base) else Path(environ.get("HOME") or Path.home()) / ".cache"
    return root / "pinrepro"


class Cache:
    """Cached layer facts and raw small blobs (configs, manifests), keyed by digest."""

    def __init__(self, root: Path | None = None, *, read_only: bool = False) -> None:
        self.root = root if root is not None else default_cache_dir()
        # --dry-run reads what earlier runs cached but creates no file anywhere, the cache included.
        self.read_only = read_only
        self._written: set[str] = set()  # blob digests this cache wrote (or found) in this run
        self._folders: set[Path] = set()  # folders known to exist

    def _path(self, kind: str, digest: str, suffix: str = "") -> Path | None:
        match = _DIGEST.fullmatch(digest)
        if not match:
            return None  # never build a path from a string we have not validated
        return self.root / kind / match[1] / (match[2] + suffix)

    def layer(self, digest: str) -> LayerFacts | None:
        path = self._path(f"layers-v{LAYER_SCHEMA}", digest, ".json")
        if path is None:
            return None
        try:
            data = json.loads(path.read_bytes())
            if data.get("schema") != LAYER_SCHEMA or data.get("digest") != digest:
                return None
            return LayerFacts.from_json(data["facts"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # missing or corrupt: the caller reads the layer again and rewrites the entry

    def put_layer(self, digest: str, facts: LayerFacts) -> None:
        path = self._path(f"layers-v{LAYER_SCHEMA}", digest, ".json")
        if path is None:
            return
        document = {"schema": LAYER_SCHEMA, "digest": digest, "facts": facts.to_json()}
        self._write(path, json.dumps(document, sort_keys=True, separators=(",", ":")).encode())

    def blob(self, digest: str) -> bytes | None:
        """A cached small blob, only if its bytes still hash to ``digest``."""
        path = self._path("blobs", digest)
        if path is None:
            return None
        try:
            data = path.read_bytes()
        except OSError:
            return None
        algorithm, _, expected = digest.partition(":")
        if hashlib.new(algorithm, data).hexdigest() != expected:
            return None
        self._written.add(digest)
        return data

    def put_blob(self, digest: str, data: bytes) -> None:
        path = self._path("blobs", digest)
        if path is not None and digest not in self._written:
            # Content addressed: a blob this cache wrote once (the client's config read, then the scan's) is the
            # same bytes; writing it again would only cost a lock of hundreds of images its time (issue #15).
            self._written.add(digest)
            self._write(path, data)

    def _write(self, path: Path, data: bytes) -> None:
        if self.read_only:
            return
        # A cache that cannot be written (read-only home, full disk) costs speed, never correctness.
        # No fsync: every entry is checked when read (blobs against their digest, layer facts by schema and
        # digest), so one a crash truncated is read again, never trusted. A temporary file per process and
        # thread, then a rename: a reader sees the old entry or the whole new one; each folder is made once.
        tmp = path.parent / f".{path.name}.{os.getpid()}-{threading.get_ident()}.pinrepro-tmp"
        try:
            if path.parent not in self._folders:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._folders.add(path.parent)
            with open(tmp, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
