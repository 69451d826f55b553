"""Scan one platform of a pinned image: its config, then its layers from the top down, into PlatformContents.

Order of work, cheapest first: the platform manifest and config blob (small, cached by digest), which give
the CUDA stack and Python when the env has them; then layers, newest first, each streamed once (or taken
from the cache by its digest), until the os-release, the dpkg database and Python are settled - lower
layers are then never downloaded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import IO, Any, Protocol

from pinrepro.errors import InventoryError
from pinrepro.inventory.cache import Cache
from pinrepro.inventory.contents import CudaInfo, PlatformContents
from pinrepro.inventory.cuda import upstream_version
from pinrepro.inventory.dpkg import Package
from pinrepro.inventory.driver_table import driver_floor
from pinrepro.inventory.flights import LayerFlights
from pinrepro.inventory.imageconfig import ImageConfig
from pinrepro.inventory.layers import LayerFacts, read_layer
from pinrepro.inventory.overlay import Overlay, python_from_dpkg
from pinrepro.reference import ImageRef
from pinrepro.registry.client import Descriptor
from pinrepro.registry.mediatypes import INDEX_TYPES
from pinrepro.registry.platform import dpkg_architecture

_CUDNN_PACKAGE = re.compile(r"libcudnn(\d+)(?:-cuda-\d+)?")
_CUBLAS_PACKAGE = re.compile(r"libcublas-\d+-\d+")


class BlobSource(Protocol):
    """What the scan needs from ``pinrepro.registry.client.RegistryClient``."""

    def get_manifest(self, ref: ImageRef) -> tuple[bytes, str, str]: ...

    def get_blob(self, ref: ImageRef, digest: str) -> bytes: ...

    def open_blob(self, ref: ImageRef, digest: str) -> IO[bytes]: ...


class PlatformManifestLike(Protocol):
    """``pinrepro.registry.client.PlatformManifest``: the digest of one platform's manifest."""

    @property
    def digest(self) -> str: ...


@dataclass(frozen=True)
class Manifest:
    config_digest: str
    layers: tuple[Descriptor, ...]


def parse_manifest(data: bytes, *, where: str, digest: str) -> Manifest:
    """The config and layer descriptors of an image manifest (OCI or Docker schema 2)."""
    try:
        document: Any = json.loads(data)
    except ValueError:
        document = None
    if not isinstance(document, dict) or document.get("mediaType") in INDEX_TYPES or "manifests" in document:
        raise InventoryError(
            f"manifest {digest} is not a single-platform image manifest", where=where,
            fix="pass the digest of a platform's manifest, not of the index",
        )
    config = document.get("config")
    layers = document.get("layers")
    if not isinstance(config, dict) or not isinstance(config.get("digest"), str) or not isinstance(layers, list):
        raise InventoryError(f"manifest {digest} has no config or layers", where=where,
                             fix="the image is not a container image; check the reference")
    refs: list[Descriptor] = []
    for layer in layers:
        if not isinstance(layer, dict) or not isinstance(layer.get("digest"), str):
            raise InventoryError(f"manifest {digest} has a layer without a digest", where=where,
                                 fix="the registry holds a broken manifest; push the image again")
        size = layer.get("size")
        refs.append(Descriptor(layer["digest"], str(layer.get("mediaType") or ""),
                             size if isinstance(size, int) else None))
    return Manifest(config_digest=config["digest"], layers=tuple(refs))


def scan_platform(
    client: BlobSource, ref: ImageRef, platform_manifest: PlatformManifestLike, *, cache: Cache | None,
    flights: LayerFlights | None = None,
) -> PlatformContents:
    """What is inside the platform whose manifest is ``platform_manifest.digest``, fetched from ``ref``'s repository.

    Raises InventoryError (or the client's RegistryError) when a blob is missing, corrupt or not what it
    claims to be; anything the image simply does not have (no dpkg, no os-release, no CUDA) is left unknown.
    """
    where = ref.name
    manifest_ref = ref.with_digest(platform_manifest.digest)
    manifest_bytes = cache.blob(platform_manifest.digest) if cache else None
    if manifest_bytes is None:
        manifest_bytes, _, _ = client.get_manifest(manifest_ref)
        if cache:
            cache.put_blob(platform_manifest.digest, manifest_bytes)
    manifest = parse_manifest(manifest_bytes, where=where, digest=platform_manifest.digest)

    config_bytes = cache.blob(manifest.config_digest) if cache else None
    if config_bytes is None:
        config_bytes = client.get_blob(ref, manifest.config_digest)
        if cache:
            cache.put_blob(manifest.config_digest, config_bytes)
    config = ImageConfig.parse(config_bytes, where=where, digest=manifest.config_digest)

    overlay = Overlay()
    need_python = config.python is None
    for layer in reversed(manifest.layers):
        if overlay.complete(need_python=need_python):
            break
        def read(layer: Descriptor = layer) -> LayerFacts:
            cached = cache.layer(layer.digest) if cache else None
            if cached is not None:
                return cached
            stream = client.open_blob(ref, layer.digest)
            try:
                read_facts = read_layer(stream, digest=layer.digest, media_type=layer.media_type, where=where)
            finally:
                stream.close()
            if cache:
                cache.put_layer(layer.digest, read_facts)
            return read_facts

        # Through the flights also when cached: the images of a lock share their lower layers, and each layer's
        # facts are then read (from the registry or the cache) once per run, not once per image.
        overlay.add(flights.facts(layer.digest, read) if flights is not None else read())
    else:
        overlay.reached_bottom()
    return build_contents(config, overlay)


def build_contents(config: ImageConfig, overlay: Overlay) -> PlatformContents:
    """Combine the config's facts with the layers' (env first: it is what the image's author declared)."""
    notes: list[str] = []
    os_info, _ = overlay.os_release()
    if os_info is None:
        notes.append("no os-release found (etc/os-release, usr/lib/os-release): the OS is unknown")
    database, _ = overlay.dpkg()
    packages = database.packages if database else ()
    if database is not None:
        for path, count in sorted(database.skipped.items()):
            notes.append(f"{path}: {count} unreadable stanza(s) skipped; the apt list may be incomplete")
    python = config.python
    if python is None:
        python = overlay.local_python()[0] or python_from_dpkg(packages)
    return PlatformContents(
        os=os_info,
        python=python,
        cuda=_cuda_info(config, packages),
        apt=apt_table(packages, dpkg_architecture(config.architecture, config.variant)),
        created=config.created,
        labels=config.labels_of_interest,
        notes=tuple(notes),
    )


def apt_table(packages: tuple[Package, ...], native: str | None) -> dict[str, str]:
    """name -> version; ``name:arch`` only for a foreign architecture (multiarch, e.g. ``libc6:i386``)."""
    if native is None:
        # Unknown platform: the most common concrete architecture is the native one.
        counts: dict[str, int] = {}
        for package in packages:
            if package.architecture != "all":
                counts[package.architecture] = counts.get(package.architecture, 0) + 1
        native = max(sorted(counts), key=lambda arch: counts[arch]) if counts else None
    table: dict[str, str] = {}
    for package in packages:
        foreign = package.architecture not in ("all", native)
        table[f"{package.name}:{package.architecture}" if foreign else package.name] = package.version
    return dict(sorted(table.items()))


def _cuda_info(config: ImageConfig, packages: tuple[Package, ...]) -> CudaInfo | None:
    env = config.cuda
    if not env.present:
        return None
    cudnn, nccl, cublas = env.cudnn, env.nccl, env.cublas
    # Images that install the libraries with apt but do not declare them in ENV: the packages tell.
    for package in packages:
        if cudnn is None and _CUDNN_PACKAGE.fullmatch(package.name):
            cudnn = upstream_version(package.version)
        elif nccl is None and package.name == "libnccl2":
            nccl = upstream_version(package.version)
        elif cublas is None and _CUBLAS_PACKAGE.fullmatch(package.name):
            cublas = upstream_version(package.version)
    floor = driver_floor(env.version)
    require = env.require
    return CudaInfo(
        version=env.version,
        cudnn=cudnn,
        nccl=nccl,
        cublas=cublas,
        min_driver=floor.toolkit if floor else None,
        min_driver_compat=floor.compat if floor else None,
        require=tuple(str(c) for c in require.clauses) + require.unparsed if require else (),
        require_implied=require.implied if require else False,
        require_disabled=require.disabled if require else False,
    )
