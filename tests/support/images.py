"""OCI image layouts built in pure Python (no Docker), pushed to a registry with skopeo or plain HTTP.

Tars are deterministic (sorted entries, fixed mtime, uid/gid 0, no user names; gzip with mtime 0), so the
same inputs always give the same digests and tests can assert exact values. Layers follow image-spec
``layer.md``: ``.wh.<name>`` deletes ``<name>`` from lower layers, ``.wh..wh..opq`` empties its directory.
"""

from __future__ import annotations

import atexit
import functools
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import requests
import zstandard

from tests.support.tools import require_tool

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


# -- skopeo ----------------------------------------------------------------------------------------------
class SkopeoError(RuntimeError):
    pass


@functools.cache
def _skopeo_scratch() -> Path:
    scratch = Path(tempfile.mkdtemp(prefix="pinrepro-skopeo-"))
    atexit.register(shutil.rmtree, scratch, True)
    return scratch


def _skopeo_base() -> tuple[list[str], Path]:
    """``skopeo`` with a permissive policy of our own, plus an empty auth file so that skopeo never reads
    the machine's (``${XDG_RUNTIME_DIR}/containers/auth.json``, ``~/.docker/config.json``)."""
    skopeo = require_tool("skopeo")
    scratch = _skopeo_scratch()
    policy = scratch / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    authfile = scratch / "auth.json"
    authfile.write_text(json.dumps({"auths": {}}))
    return [skopeo, "--policy", str(policy)], authfile


def _run_skopeo(args: list[str], *, secret: str | None = None) -> bytes:
    proc = subprocess.run(args, capture_output=True, timeout=300, check=False)
    if proc.returncode != 0:
        text = (proc.stderr or proc.stdout).decode(errors="replace")
        shown = list(args)
        if secret:
            text = text.replace(secret, "***")
            shown = [a.replace(secret, "***") for a in shown]
        raise SkopeoError(f"{' '.join(shown)} failed ({proc.returncode}): {text.strip()}")
    return proc.stdout


def push(
    layout_dir: Path | str,
    tag: str,
    dest_host: str,
    repo: str,
    dest_tag: str,
    *,
    creds: tuple[str, str] | None = None,
    format: Literal["oci", "v2s2"] | None = None,
) -> str:
    """``skopeo copy --all`` the layout's ``tag`` to ``docker://dest_host/repo:dest_tag``; return the pushed
    digest. Without ``format`` the digests are preserved and checked against the layout; with
    ``format="v2s2"`` skopeo converts (a single-platform image) to Docker schema2, which changes the digest."""
    base, authfile = _skopeo_base()
    args = [*base, "copy", "--all", "--quiet", "--authfile", str(authfile), "--dest-tls-verify=false"]
    with tempfile.TemporaryDirectory(prefix="pinrepro-digest-") as tmp:
        digest_file = Path(tmp) / "digest"
        args += ["--digestfile", str(digest_file)]
        if format is None:
            args.append("--preserve-digests")
        else:
            args += ["--format", format]
        if creds is not None:
            args += ["--dest-creds", f"{creds[0]}:{creds[1]}"]
        else:
            args.append("--dest-no-creds")
        source = f"oci:{layout_dir}:{tag}"
        if layout_descriptor(Path(layout_dir), tag)["mediaType"] in (DOCKER_MANIFEST, DOCKER_LIST):
            # skopeo's oci: transport only sees OCI media types in index.json; its dir: transport
            # carries Docker schema2 manifests byte for byte.
            source = "dir:" + str(export_dir_transport(Path(layout_dir), tag, Path(tmp) / "dir"))
        args += [source, f"docker://{dest_host}/{repo}:{dest_tag}"]
        _run_skopeo(args, secret=creds[1] if creds else None)
        pushed = digest_file.read_text().strip()
    if format is None:
        built = layout_descriptor(Path(layout_dir), tag)["digest"]
        if pushed != built:
            raise SkopeoError(f"skopeo pushed {pushed} for {repo}:{dest_tag}, but the layout has {built}")
    return pushed


def export_dir_transport(layout: Path, tag: str, target: Path) -> Path:
    """Write the layout's ``tag`` in skopeo's ``dir:`` format: ``manifest.json``, child manifests as
    ``<hex>.manifest.json``, blobs named by their hex digest, and the ``version`` marker file."""
    target.mkdir(parents=True, exist_ok=True)
    (target / "version").write_text("Directory Transport Version: 1.1\n")
    top = layout_descriptor(layout, tag)
    data = read_blob(layout, top["digest"])
    (target / "manifest.json").write_bytes(data)
    body = json.loads(data)
    manifests = [body]
    for child in body.get("manifests", []):
        child_data = read_blob(layout, child["digest"])
        (target / (child["digest"].split(":", 1)[1] + ".manifest.json")).write_bytes(child_data)
        manifests.append(json.loads(child_data))
    for manifest in manifests:
        for blob in [manifest.get("config"), *manifest.get("layers", [])]:
            if blob:
                hex_digest = blob["digest"].split(":", 1)[1]
                (target / hex_digest).write_bytes(read_blob(layout, blob["digest"]))
    return target


def skopeo_inspect_raw(host: str, repo: str, ref: str, *, creds: tuple[str, str] | None = None) -> bytes:
    """The manifest bytes as skopeo fetches them - the independent oracle for what the registry serves."""
    base, authfile = _skopeo_base()
    args = [*base, "inspect", "--raw", "--tls-verify=false", "--authfile", str(authfile)]
    if creds is not None:
        args += ["--creds", f"{creds[0]}:{creds[1]}"]
    else:
        args.append("--no-creds")
    separator = "@" if ref.startswith("sha256:") else ":"
    args.append(f"docker://{host}/{repo}{separator}{ref}")
    return _run_skopeo(args, secret=creds[1] if creds else None)


def skopeo_digest(host: str, repo: str, tag: str, creds: tuple[str, str] | None = None) -> str:
    """sha256 of the raw manifest skopeo gets for ``host/repo:tag``."""
    return sha256_digest(skopeo_inspect_raw(host, repo, tag, creds=creds))


# -- plain HTTP push (fast path for benches; anonymous registries only) ----------------------------------
def upload_blob(session: requests.Session, base_url: str, repo: str, data: bytes) -> str:
    """Monolithic upload (POST then PUT ?digest=), skipped when the registry already has the blob."""
    digest = sha256_digest(data)
    head = session.head(f"{base_url}/v2/{repo}/blobs/{digest}", timeout=30)
    if head.status_code == 200:
        return digest
    start = session.post(f"{base_url}/v2/{repo}/blobs/uploads/", timeout=30)
    start.raise_for_status()
    location = start.headers["Location"]
    if location.startswith("/"):
        location = base_url + location
    joiner = "&" if "?" in location else "?"
    put = session.put(
        f"{location}{joiner}digest={digest}", data=data,
        headers={"Content-Type": "application/octet-stream"}, timeout=30,
    )
    put.raise_for_status()
    return digest


def put_manifest(session: requests.Session, base_url: str, repo: str, ref: str, data: bytes, media_type: str) -> str:
    response = session.put(
        f"{base_url}/v2/{repo}/manifests/{ref}", data=data, headers={"Content-Type": media_type}, timeout=30
    )
    response.raise_for_status()
    digest = sha256_digest(data)
    if response.headers.get("Docker-Content-Digest", digest) != digest:
        raise RuntimeError(f"registry stored {response.headers['Docker-Content-Digest']} for {digest}")
    return digest


def push_http(layout_dir: Path | str, tag: str, base_url: str, repo: str, dest_tag: str,
              *, session: requests.Session | None = None) -> str:
    """Push the layout's ``tag`` (image or index) through the registry HTTP API, without skopeo."""
    layout = Path(layout_dir)
    own = session is None
    http = session or requests.Session()
    try:
        top = layout_descriptor(layout, tag)
        _push_manifest_tree(http, layout, base_url, repo, top["digest"], top["mediaType"], dest_tag)
        return str(top["digest"])
    finally:
        if own:
            http.close()


def _push_manifest_tree(http: requests.Session, layout: Path, base_url: str, repo: str, digest: str,
                        media_type: str, ref: str) -> None:
    data = read_blob(layout, digest)
    body = json.loads(data)
    if media_type in (OCI_INDEX, DOCKER_LIST):
        for child in body["manifests"]:
            _push_manifest_tree(http, layout, base_url, repo, child["digest"], child["mediaType"], child["digest"])
    else:
        for blob in [body["config"], *body["layers"]]:
            upload_blob(http, base_url, repo, read_blob(layout, blob["digest"]))
    put_manifest(http, base_url, repo, ref, data, media_type)
