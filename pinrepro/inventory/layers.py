"""Read one image layer as a stream and keep only the few entries the manifest needs.

A layer is a tar (image-spec ``layer.md``), plain, gzip or zstd compressed; Docker's
``rootfs.diff.tar.gzip`` is a gzip tar too. It is read with ``tarfile`` in stream mode straight from the
registry response: never written to disk, never held in memory. Only these entries are kept:
``etc/os-release``, ``usr/lib/os-release``, ``var/lib/dpkg/status``, ``var/lib/dpkg/status.d/*`` (parsed on
the spot), ``usr/local/bin/python3[.N]`` (existence), and the whiteouts (``.wh.<name>``) and opaque markers
(``.wh..wh..opq``) that could hide one of them in lower layers. The result, ``LayerFacts``, is small and
JSON-serialisable, so it is cached by the layer's digest.
"""

from __future__ import annotations

import gzip
import posixpath
import re
import sys
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Literal, Protocol

from pinrepro.errors import InventoryError, PinreproError
from pinrepro.inventory.dpkg import Package, StatusFile, parse_status
from pinrepro.inventory.osrelease import parse_os_release
from pinrepro.registry.body import VerifyingReader

ETC_OS_RELEASE = "etc/os-release"
USR_OS_RELEASE = "usr/lib/os-release"
DPKG_STATUS = "var/lib/dpkg/status"
DPKG_STATUS_D = "var/lib/dpkg/status.d"
PYTHON_DIR = "usr/local/bin"
_NOT_STANZAS = (".md5sums", ".list", ".conffiles")
_PYTHON_NAME = re.compile(r"python3(?:\.\d+)?")
# Every path (file or directory) whose whiteout or opaque marker matters to us.
_ROOTS = (ETC_OS_RELEASE, USR_OS_RELEASE, DPKG_STATUS, DPKG_STATUS_D, PYTHON_DIR)

_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Size caps: far above real files (a large Ubuntu dpkg status is a few MiB), low enough that a hostile
# layer cannot make us hold gigabytes.
_MAX_STATUS = 64 * 1024 * 1024
_MAX_SMALL = 1024 * 1024

FileKind = Literal["file", "symlink"]


@dataclass(frozen=True)
class FileFact:
    """One interesting entry of a layer. ``target`` is a symlink's (or hard link's) target as an image path."""

    kind: FileKind
    target: str | None = None
    os_release: Mapping[str, str] | None = None
    status: StatusFile | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        if self.target is not None:
            data["target"] = self.target
        if self.os_release is not None:
            data["os_release"] = dict(self.os_release)
        if self.status is not None:
            data["status"] = {
                "packages": [[p.name, p.version, p.architecture] for p in self.status.packages],
                "skipped": self.status.skipped,
            }
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileFact:
        kind = data["kind"]
        if kind not in ("file", "symlink"):
            raise ValueError(f"bad kind {kind!r}")
        status = data.get("status")
        os_release = data.get("os_release")
        target = data.get("target")
        return cls(
            kind=kind,
            target=str(target) if target is not None else None,
            os_release={str(k): str(v) for k, v in os_release.items()} if os_release is not None else None,
            status=StatusFile(
                packages=tuple(Package(str(n), str(v), str(a)) for n, v, a in status["packages"]),
                skipped=int(status["skipped"]),
            ) if status is not None else None,
        )


@dataclass(frozen=True)
class LayerFacts:
    """What one layer contributes: interesting files, and the deletions that can hide lower ones."""

    files: Mapping[str, FileFact] = field(default_factory=dict)
    whiteouts: frozenset[str] = frozenset()
    opaque: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        return {
            "files": {path: fact.to_json() for path, fact in sorted(self.files.items())},
            "whiteouts": sorted(self.whiteouts),
            "opaque": sorted(self.opaque),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LayerFacts:
        return cls(
            files={str(path): FileFact.from_json(fact) for path, fact in data["files"].items()},
            whiteouts=frozenset(str(p) for p in data["whiteouts"]),
            opaque=frozenset(str(p) for p in data["opaque"]),
        )


def normalize(name: str) -> str:
    """A tar member name as an image path without leading ``/`` or ``./``; ``..`` never climbs above the root."""
    parts: list[str] = []
    for part in name.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def resolve_link(path: str, target: str) -> str:
    """The image path a symlink at ``path`` points to (relative targets are relative to its directory)."""
    if target.startswith("/"):
        return normalize(target)
    return normalize(posixpath.join(posixpath.dirname(path), target))


def is_interesting(path: str) -> bool:
    if path in (ETC_OS_RELEASE, USR_OS_RELEASE, DPKG_STATUS):
        return True
    directory, _, base = path.rpartition("/")
    if directory == DPKG_STATUS_D:
        # Distroless keeps other per-package files (``<pkg>.md5sums``) next to the stanzas.
        return bool(base) and not base.endswith(_NOT_STANZAS)
    return directory == PYTHON_DIR and bool(_PYTHON_NAME.fullmatch(base))


def _hides_something(path: str) -> bool:
    """Whether deleting ``path`` (or emptying it, for a directory) can hide an entry we look for."""
    if any(root == path or root.startswith(path + "/") for root in _ROOTS):
        return True
    return is_interesting(path)


def _verifier(stream: IO[bytes], digest: str, where: str) -> VerifyingReader:
    """``stream`` read through the registry's verifying reader, a mismatch reported as a broken layer.

    The registry client verifies too; checking again here means a layer's facts are cached only when the
    bytes they came from are exactly the digest they are cached under, whatever stream we were handed.
    """

    def mismatch(actual: str) -> InventoryError:
        return InventoryError(f"layer {digest} does not match its digest (got {actual})", where=where,
                              fix="the registry or a proxy served corrupt data; retry, and if it persists re-push "
                                  "the image")

    try:
        return VerifyingReader(stream.read, digest, mismatch)
    except ValueError as exc:
        raise InventoryError(f"layer {digest}: {exc}", where=where,
                             fix="pinrepro verifies sha256, sha384 and sha512 digests") from None


class _Replay:
    """A reader that first returns ``head`` (bytes already read to sniff the format), then the rest."""

    def __init__(self, head: bytes, rest: VerifyingReader) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._rest.read(size)
        if size < 0:
            head, self._head = self._head, b""
            return head + self._rest.read()
        # A short read is fine: gzip, zstd and tarfile all read again until they have what they need.
        head, self._head = self._head[:size], self._head[size:]
        return head


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Bounded:
    """Counts decompressed bytes; stops a layer that inflates past the cap or the ratio (a zip bomb).

    PINREPRO_MAX_LAYER_BYTES (default 64 GiB) caps the uncompressed size; PINREPRO_MAX_LAYER_RATIO (default
    1000, above gzip's own maximum of about 1032:1 only for degenerate input) caps uncompressed/compressed
    once more than 1 GiB came out. A 32 MiB zstd layer of 1 TiB of zeros stops after about 1 GiB.
    """

    def __init__(self, inner: _Readable, verifier: VerifyingReader, where: str, digest: str) -> None:
        from pinrepro.registry.deadline import setting

        self._inner = inner
        self._verifier = verifier
        self._where = where
        self._digest = digest
        self._max = int(setting("PINREPRO_MAX_LAYER_BYTES", float(64 << 30)))
        self._ratio = setting("PINREPRO_MAX_LAYER_RATIO", 1000.0)
        self._ratio_after = min(self._max // 2, 1 << 30)
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._inner.read(size)
        self.size += len(data)
        if self.size > self._max:
            self._refuse(f"inflates to more than {self._max} bytes (PINREPRO_MAX_LAYER_BYTES)")
        if self.size > self._ratio_after and self.size > self._ratio * max(1, self._verifier.size):
            self._refuse(f"inflates more than {self._ratio:g} times its compressed size "
                         f"(PINREPRO_MAX_LAYER_RATIO); it looks like a decompression bomb")
        return data

    def _refuse(self, why: str) -> None:
        raise InventoryError(f"layer {self._digest} {why}", where=self._where,
                             fix="check the image; raise the limit if the layer is genuine")


def _zstd_error() -> type[Exception]:
    """zstandard.ZstdError once a zstd layer imported zstandard; before that no error can be one."""
    module = sys.modules.get("zstandard")
    return module.ZstdError if module is not None else OSError


def _decompressed(head: bytes, source: _Replay) -> tuple[_Readable, str]:
    # The magic bytes decide, not the media type: tools mislabel layers (an uncompressed tar under
    # ``+gzip``), and Docker's ``rootfs.diff.tar.gzip`` may in practice be zstd from BuildKit.
    if head.startswith(_GZIP_MAGIC):
        # GzipFile, unlike tarfile's own "r|gz", reads multi-member gzip (pigz, some layer builders).
        return gzip.GzipFile(fileobj=source, mode="rb"), "gzip"  # type: ignore[call-overload]
    if head.startswith(_ZSTD_MAGIC):
        # zstd:chunked and estargz-style layers are many frames: read across them.
        import zstandard  # only for zstd layers; importing the cache (verify, lock) stays cheap

        return zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True), "zstd"  # type: ignore[arg-type]
    return source, "tar"


def read_layer(stream: IO[bytes], *, digest: str, media_type: str = "", where: str) -> LayerFacts:
    """Stream ``stream`` (the compressed blob ``digest``) to its end and return what it holds for us.

    Raises InventoryError when the blob does not decompress or is not a tar, or does not match ``digest``.
    ``where`` names the registry and repository for messages.
    """
    verifier = _verifier(stream, digest, where)
    head = verifier.read(4)
    source = _Replay(head, verifier)
    inflated, compression = _decompressed(head, source)
    reader = _Bounded(inflated, verifier, where, digest) if compression != "tar" else inflated
    try:
        facts = _scan_tar(reader, digest=digest, where=where)
    except PinreproError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error, _zstd_error(), UnicodeError) as exc:
        # A corrupt download shows up as a decompression error first; report it as the digest mismatch
        # it is, when it is one.
        verifier.drain()
        kind = {"gzip": "gzip-compressed tar", "zstd": "zstd-compressed tar", "tar": "tar"}[compression]
        raise InventoryError(
            f"layer {digest} ({media_type or 'unknown media type'}) is not a valid {kind} stream: {exc}",
            where=where,
            fix="the image in the registry is damaged; rebuild and push it again",
        ) from None
    # Read to the end so the digest is checked even when tar's end-of-archive came before the blob's end.
    verifier.drain()
    return facts


def _scan_tar(reader: _Readable, *, digest: str, where: str) -> LayerFacts:
    files: dict[str, FileFact] = {}
    whiteouts: set[str] = set()
    opaque: set[str] = set()
    # tarfile's default buffer (10 KiB): its stream reader copies the rest of the buffer on every read, so a
    # big buffer makes layers of many small files quadratic (measured in bench/scan.py).
    with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
        while True:
            info = tar.next()
            if info is None:
                break
            # Stream mode keeps every TarInfo it has seen; we never go back, so drop them to keep memory flat
            # for layers with hundreds of thousands of files.
            tar.members.clear()
            path = normalize(info.name)
            directory, _, base = path.rpartition("/")
            if base.startswith(_WHITEOUT):
                if base == _OPAQUE:
                    if _opaque_matters(directory):
                        opaque.add(directory)
                elif not base.startswith(_WHITEOUT + _WHITEOUT):  # other .wh..wh. names are AUFS bookkeeping
                    deleted = f"{directory}/{base[len(_WHITEOUT):]}" if directory else base[len(_WHITEOUT):]
                    if _hides_something(deleted):
                        whiteouts.add(deleted)
                continue
            if not is_interesting(path):
                continue
            fact = _fact(tar, info, path, files, digest=digest, where=where)
            if fact is not None:
                files[path] = fact
    return LayerFacts(files=files, whiteouts=frozenset(whiteouts), opaque=frozenset(opaque))


def _opaque_matters(directory: str) -> bool:
    """An opaque marker empties ``directory`` in lower layers: it matters when one of our paths is inside."""
    return directory in ("", DPKG_STATUS_D, PYTHON_DIR) or any(root.startswith(directory + "/") for root in _ROOTS)


def _fact(
    tar: tarfile.TarFile, info: tarfile.TarInfo, path: str, seen: Mapping[str, FileFact], *, digest: str, where: str,
) -> FileFact | None:
    if info.issym():
        return FileFact(kind="symlink", target=resolve_link(path, info.linkname))
    if info.islnk():
        # A hard link names an earlier member of the same layer; its content is that member's.
        target = normalize(info.linkname)
        earlier = seen.get(target)
        if earlier is not None and earlier.kind == "file":
            return FileFact(kind="file", os_release=earlier.os_release, status=earlier.status)
        return FileFact(kind="file")
    if not info.isfile():
        return None  # a directory or device at a file's path: nothing to read
    if path.startswith(PYTHON_DIR + "/"):
        return FileFact(kind="file")
    limit = _MAX_STATUS if path == DPKG_STATUS else _MAX_SMALL
    if info.size > limit:
        raise InventoryError(
            f"{path} in layer {digest} is {info.size} bytes, more than the {limit} this reader accepts",
            where=where, fix="no real image has such a file; report it if this image is genuine",
        )
    handle = tar.extractfile(info)
    data = handle.read() if handle is not None else b""
    if path in (ETC_OS_RELEASE, USR_OS_RELEASE):
        return FileFact(kind="file", os_release=parse_os_release(data))
    return FileFact(kind="file", status=parse_status(data, status_required=path == DPKG_STATUS))
