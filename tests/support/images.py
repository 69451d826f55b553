"""OCI image layouts built in pure Python (no Docker); tests/support/pushing.py pushes them to a registry.

Tars are deterministic (sorted entries, fixed mtime, uid/gid 0, no user names; gzip with mtime 0), so the
same inputs always give the same digests and tests can assert exact values. Layers follow image-spec
``layer.md``: ``.wh.<name>`` deletes ``<name>`` from lower layers, ``.wh..wh..opq`` empties its directory.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import zstandard

Compression = Literal["gzip", "zstd", "none"]
ManifestFormat = Literal["oci", "docker"]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

_LAYER_TYPES: dict[tuple[ManifestFormat, Compression], str] = {
    ("oci", "gzip"): "application/vnd.oci.image.layer.v1.tar+gzip",
    ("oci", "zstd"): "application/vnd.oci.image.layer.v1.tar+zstd",
    ("oci", "none"): "application/vnd.oci.image.layer.v1.tar",
    ("docker", "gzip"): "application/vnd.docker.image.rootfs.diff.tar.gzip",
    # BuildKit writes OCI's zstd type even inside Docker schema2 manifests; there is no Docker zstd type.
    ("docker", "zstd"): "application/vnd.oci.image.layer.v1.tar+zstd",
    ("docker", "none"): "application/vnd.docker.image.rootfs.diff.tar",
}

OPAQUE = ".wh..wh..opq"
WHITEOUT_PREFIX = ".wh."
FIXED_MTIME = 1_700_000_000  # 2023-11-14: any constant works, it only has to be the same every run.
DEFAULT_CREATED = "2024-01-01T00:00:00Z"


@dataclass(frozen=True)
class Symlink:
    """A layer entry that is a symbolic link to ``target``."""

    target: str


@dataclass(frozen=True)
class File:
    """A regular file with an explicit mode (plain ``bytes`` values get 0o644)."""

    data: bytes
    mode: int = 0o644


# A layer maps a path (no leading '/') to its content: bytes or File = a file, Symlink = a link,
# None = a whiteout of that path (written as ``dir/.wh.name``), a path ending in '/' = a directory.
# ``opaque("dir")`` makes the opaque-directory marker; explicit ``.wh.`` names are written as given.
LayerSpec = Mapping[str, "bytes | File | Symlink | None"]


def opaque(directory: str) -> str:
    """The path of the marker that hides everything lower layers put in ``directory``."""
    return f"{directory.strip('/')}/{OPAQUE}"


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    def as_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class BuiltImage:
    """A single-platform image written into a layout."""

    digest: str
    media_type: str
    size: int
    config_digest: str
    layer_digests: tuple[str, ...]
    diff_ids: tuple[str, ...]
    platform: str  # "os/arch[/variant]"
    os: str
    architecture: str
    variant: str | None
    manifest_bytes: bytes


@dataclass(frozen=True)
class BuiltIndex:
    """A multi-platform index written into a layout, with its children."""

    digest: str
    media_type: str
    size: int
    manifests: tuple[BuiltImage, ...]
    index_bytes: bytes

    @property
    def platforms(self) -> dict[str, BuiltImage]:
        return {image.platform: image for image in self.manifests}


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


# -- layout ----------------------------------------------------------------------------------------------
def _init_layout(layout: Path) -> None:
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    if not (layout / "oci-layout").exists():
        (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    if not (layout / "index.json").exists():
        (layout / "index.json").write_bytes(_canonical({"schemaVersion": 2, "manifests": []}))


def write_blob(layout: Path, data: bytes) -> str:
    _init_layout(layout)
    digest = sha256_digest(data)
    path = layout / "blobs" / "sha256" / digest.split(":", 1)[1]
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return digest


def read_blob(layout: Path, digest: str) -> bytes:
    return (Path(layout) / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def _tag_in_layout(layout: Path, tag: str, descriptor: dict[str, Any]) -> None:
    index_path = layout / "index.json"
    index = json.loads(index_path.read_text())
    ref_key = "org.opencontainers.image.ref.name"
    kept = [m for m in index["manifests"] if m.get("annotations", {}).get(ref_key) != tag]
    kept.append({**descriptor, "annotations": {ref_key: tag}})
    index["manifests"] = kept
    index_path.write_bytes(_canonical(index))


def layout_descriptor(layout: Path, tag: str) -> dict[str, Any]:
    """The descriptor that ``tag`` names in the layout's index.json."""
    index = json.loads((Path(layout) / "index.json").read_text())
    for entry in index["manifests"]:
        if entry.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            return dict(entry)
    raise KeyError(f"tag {tag!r} is not in {layout}")


# -- layers ----------------------------------------------------------------------------------------------
def layer_tar(files: LayerSpec) -> bytes:
    """A deterministic uncompressed tar for one layer (parents created, entries sorted)."""
    entries: dict[str, tarfile.TarInfo] = {}
    payloads: dict[str, bytes] = {}

    def add_dir(path: str) -> None:
        if not path or path in entries:
            return
        add_dir(os.path.dirname(path))
        info = tarfile.TarInfo(path + "/")
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        entries[path] = info

    for raw_path, content in files.items():
        is_dir = raw_path.endswith("/")
        path = raw_path.strip("/")
        if not path:
            raise ValueError(f"empty path in layer spec: {raw_path!r}")
        parent, name = os.path.dirname(path), os.path.basename(path)
        add_dir(parent)
        if is_dir:
            add_dir(path)
            continue
        if content is None:
            path = os.path.join(parent, WHITEOUT_PREFIX + name) if parent else WHITEOUT_PREFIX + name
            content = b""
        info = tarfile.TarInfo(path)
        if isinstance(content, Symlink):
            info.type = tarfile.SYMTYPE
            info.linkname = content.target
            info.mode = 0o777
            data = b""
        else:
            data = content.data if isinstance(content, File) else content
            info.mode = content.mode if isinstance(content, File) else 0o644
            info.size = len(data)
        entries[path] = info
        payloads[path] = data

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(entries):
            info = entries[path]
            info.mtime = FIXED_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            payload = payloads.get(path)
            tar.addfile(info, io.BytesIO(payload) if payload else None)
    return buffer.getvalue()


def compress(data: bytes, compression: Compression) -> bytes:
    if compression == "gzip":
        # mtime=0 and no file name: the gzip header would otherwise make every build a new digest.
        return gzip.compress(data, compresslevel=6, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(data)
    if compression == "none":
        return data
    raise ValueError(f"unknown compression {compression!r}")


# -- images ----------------------------------------------------------------------------------------------
def build_image(
    layout_dir: Path | str,
    tag: str | None,
    layers: Sequence[LayerSpec],
    *,
    env: Sequence[str] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
    os: str = "linux",
    arch: str = "amd64",
    variant: str | None = None,
    compression: Compression = "gzip",
    created: str = DEFAULT_CREATED,
    labels: Mapping[str, str] | None = None,
    manifest_format: ManifestFormat = "oci",
) -> BuiltImage:
    """Write a single-platform image into ``layout_dir``; tag it there unless ``tag`` is None (index child)."""
    layout = Path(layout_dir)
    _init_layout(layout)
    layer_descs: list[Descriptor] = []
    diff_ids: list[str] = []
    layer_type = _LAYER_TYPES[(manifest_format, compression)]
    for spec in layers:
        tar = layer_tar(spec)
        diff_ids.append(sha256_digest(tar))
        blob = compress(tar, compression)
        layer_descs.append(Descriptor(layer_type, write_blob(layout, blob), len(blob)))
    config: dict[str, Any] = {
        "created": created,
        "architecture": arch,
        "os": os,
        "config": {"Env": list(env)},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": created, "created_by": f"pinrepro test layer {i}"} for i in range(len(layers))],
    }
    if labels:
        config["config"]["Labels"] = dict(labels)
    if variant:
        config["variant"] = variant
    config_bytes = _canonical(config)
    config_type = OCI_CONFIG if manifest_format == "oci" else DOCKER_CONFIG
    config_desc = Descriptor(config_type, write_blob(layout, config_bytes), len(config_bytes))
    media_type = OCI_MANIFEST if manifest_format == "oci" else DOCKER_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config_desc.as_json(),
        "layers": [d.as_json() for d in layer_descs],
    }
    manifest_bytes = _canonical(manifest)
    digest = write_blob(layout, manifest_bytes)
    platform = f"{os}/{arch}" + (f"/{variant}" if variant else "")
    image = BuiltImage(
        digest=digest,
        media_type=media_type,
        size=len(manifest_bytes),
        config_digest=config_desc.digest,
        layer_digests=tuple(d.digest for d in layer_descs),
        diff_ids=tuple(diff_ids),
        platform=platform,
        os=os,
        architecture=arch,
        variant=variant,
        manifest_bytes=manifest_bytes,
    )
    if tag is not None:
        _tag_in_layout(layout, tag, {"mediaType": media_type, "digest": digest, "size": len(manifest_bytes)})
    return image


def build_index(
    layout_dir: Path | str,
    tag: str,
    images: Sequence[BuiltImage],
    *,
    manifest_format: ManifestFormat = "oci",
    annotations: Mapping[str, str] | None = None,
) -> BuiltIndex:
    """Write an index (or Docker manifest list) over ``images`` (built with ``tag=None``) and tag it."""
    layout = Path(layout_dir)
    _init_layout(layout)
    entries = []
    for image in images:
        platform: dict[str, str] = {"architecture": image.architecture, "os": image.os}
        if image.variant:
            platform["variant"] = image.variant
        entries.append({"mediaType": image.media_type, "digest": image.digest, "size": image.size,
                        "platform": platform})
    media_type = OCI_INDEX if manifest_format == "oci" else DOCKER_LIST
    index: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
    if annotations:
        index["annotations"] = dict(annotations)
    index_bytes = _canonical(index)
    digest = write_blob(layout, index_bytes)
    _tag_in_layout(layout, tag, {"mediaType": media_type, "digest": digest, "size": len(index_bytes)})
    return BuiltIndex(digest, media_type, len(index_bytes), tuple(images), index_bytes)


def build_two_platform(
    layout_dir: Path | str,
    tag: str,
    layers: Sequence[LayerSpec],
    *,
    env: Sequence[str] = ("PATH=/usr/bin:/bin",),
    platforms: Sequence[tuple[str, str, str | None]] = (("linux", "amd64", None), ("linux", "arm64", "v8")),
    compression: Compression = "gzip",
    manifest_format: ManifestFormat = "oci",
    labels: Mapping[str, str] | None = None,
) -> BuiltIndex:
    """An index over linux/amd64 and linux/arm64/v8; each platform gets an ``ARCH`` file and env entry,
    so the children (and their configs) differ."""
    children = []
    for os_name, arch, variant in platforms:
        platform = f"{os_name}/{arch}" + (f"/{variant}" if variant else "")
        per_platform = [*layers, {"etc/pinrepro-arch": platform.encode()}]
        children.append(
            build_image(
                layout_dir, None, per_platform, env=[*env, f"PINREPRO_PLATFORM={platform}"], os=os_name,
                arch=arch, variant=variant, compression=compression, manifest_format=manifest_format,
                labels=labels,
            )
        )
    return build_index(layout_dir, tag, children, manifest_format=manifest_format)
