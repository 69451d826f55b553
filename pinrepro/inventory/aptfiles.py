"""The files apt reads on an image, taken from its layers: what ``pinrepro.apt`` resolves against.

apt's sources (``etc/apt/sources.list``, ``sources.list.d``), its keyrings, preferences, ``apt.conf``
files, dpkg's status and foreign architectures, and the os-release. Layers are read bottom up, streamed as
the scan streams them (pinrepro.inventory.layers), with the same whiteout and opaque-directory rules; each
layer's files are cached by the layer's digest, so re-resolving a stage reads no layer twice.
"""

from __future__ import annotations

import base64
import contextlib
import json
import posixpath
import re
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pinrepro.errors import InventoryError
from pinrepro.fsutil import write_atomically
from pinrepro.inventory.cache import default_cache_dir
from pinrepro.inventory.layers import normalize, resolve_link
from pinrepro.reference import ImageRef

if TYPE_CHECKING:
    # The scan and the layer readers load when layers are read, not for verify's apt checks (start-up, #15).
    from pinrepro.inventory.scan import BlobSource

# Directories whose direct children apt reads, and single files.
_DIRECTORIES = ("etc/apt/sources.list.d", "etc/apt/apt.conf.d", "etc/apt/preferences.d", "etc/apt/trusted.gpg.d",
                "etc/apt/keyrings", "usr/share/keyrings")
_FILES = ("etc/apt/sources.list", "etc/apt/apt.conf", "etc/apt/preferences", "etc/apt/trusted.gpg",
          "var/lib/dpkg/status", "var/lib/dpkg/arch", "etc/os-release", "usr/lib/os-release")
_MAX_FILE = 64 * 1024 * 1024
_SCHEMA = 1
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")


def wanted(path: str) -> bool:
    return path in _FILES or posixpath.dirname(path) in _DIRECTORIES


def image_apt_files(client: BlobSource, ref: ImageRef, manifest_digest: str, *,
                    cache_dir: Path | None = None) -> dict[str, bytes]:
    """Image path -> content of every file apt would read on the platform image ``manifest_digest``."""
    from pinrepro.inventory.scan import parse_manifest

    where = ref.name
    data, _, _ = client.get_manifest(ref.with_digest(manifest_digest))
    manifest = parse_manifest(data, where=where, digest=manifest_digest)
    cache = (cache_dir or default_cache_dir()) / f"apt-layer-files-v{_SCHEMA}"
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    for layer in manifest.layers:
        cached = _cached(cache, layer.digest)
        if cached is None:
            stream = client.open_blob(ref, layer.digest)
            try:
                cached = read_layer_files(stream, digest=layer.digest, where=where)
            finally:
                stream.close()
            _store(cache, layer.digest, cached)
        layer_files, layer_links, deleted, opaque = cached
        for path in list(files) + list(links):
            if path in deleted or any(path.startswith(d + "/") for d in deleted | opaque):
                files.pop(path, None)
                links.pop(path, None)
        for path, target in layer_links.items():
            files.pop(path, None)
            links[path] = target
        for path, content in layer_files.items():
            links.pop(path, None)
            files[path] = content
    # Debian's keyring packages link trusted.gpg.d entries to /usr/share/keyrings: follow links (a few hops).
    for path, target in links.items():
        for _ in range(8):
            if target in files:
                files[path] = files[target]
                break
            if target not in links:
                break
            target = links[target]
    return dict(sorted(files.items()))


LayerFiles = tuple[dict[str, bytes], dict[str, str], frozenset[str], frozenset[str]]


def read_layer_files(stream: IO[bytes], *, digest: str, where: str) -> LayerFiles:
    """(files, symlinks, whiteouts, opaque directories) of one layer, for the paths apt reads."""
    from pinrepro.inventory.layers import _decompressed, _Replay, _verifier

    verifier = _verifier(stream, digest, where)
    head = verifier.read(4)
    reader, _ = _decompressed(head, _Replay(head, verifier))
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    deleted: set[str] = set()
    opaque: set[str] = set()
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
            for info in tar:
                tar.members.clear()
                path = normalize(info.name)
                directory, _, base = path.rpartition("/")
                if base == ".wh..wh..opq":
                    opaque.add(directory)
                    continue
                if base.startswith(".wh."):
                    deleted.add(f"{directory}/{base[4:]}" if directory else base[4:])
                    continue
                if not wanted(path):
                    continue
                if info.issym():
                    links[path] = resolve_link(path, info.linkname)
                elif info.islnk():
                    target = normalize(info.linkname)
                    if target in files:
                        files[path] = files[target]
                elif info.isfile():
                    if info.size > _MAX_FILE:
                        raise InventoryError(f"{path} in layer {digest} is {info.size} bytes", where=where,
                                             fix="no real image has such a file; report it if this image is genuine")
                    handle = tar.extractfile(info)
                    files[path] = handle.read() if handle is not None else b""
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InventoryError(f"layer {digest} is not a valid layer tar: {exc}", where=where,
                             fix="the image in the registry is damaged; rebuild and push it again") from None
    verifier.drain()
    return files, links, frozenset(deleted), frozenset(opaque)


def _cached(cache: Path, digest: str) -> LayerFiles | None:
    if not _DIGEST.fullmatch(digest):
        return None
    try:
        data = json.loads((cache / digest.replace(":", "-")).read_bytes())
        return ({k: base64.b64decode(v) for k, v in data["files"].items()}, dict(data["links"]),
                frozenset(data["deleted"]), frozenset(data["opaque"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _store(cache: Path, digest: str, files: LayerFiles) -> None:
    if not _DIGEST.fullmatch(digest):
        return
    document = {"files": {k: base64.b64encode(v).decode() for k, v in files[0].items()}, "links": files[1],
                "deleted": sorted(files[2]), "opaque": sorted(files[3])}
    with contextlib.suppress(OSError):
        write_atomically({cache / digest.replace(":", "-"): json.dumps(document).encode()})


def os_id(files: Mapping[str, bytes]) -> str | None:
    """The os-release ID (``debian``, ``ubuntu``): which snapshot service keeps the image's archive."""
    for path in ("etc/os-release", "usr/lib/os-release"):
        for line in files.get(path, b"").decode("utf-8", "replace").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "ID":
                return value.strip().strip("'\"") or None
    return None
