"""Registry operations pinrepro needs: tag -> digest, what platforms an image has, manifests, blobs.

Everything goes through one Transport (auth, retries, redirects). Every byte that comes back by digest is
verified: the OCI distribution spec says clients MUST check content against its digest.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, TypeVar

from pinrepro.errors import ConfigError, NotFoundError, PinreproError, RegistryError, RepositoryNotFoundError
from pinrepro.reference import ImageRef
from pinrepro.registry.authn import DefaultKeychain, Keychain
from pinrepro.registry.body import broken_off, loads
from pinrepro.registry.platform import platform_key
from pinrepro.workers import worker_pool

if TYPE_CHECKING:
    # requests loads with the transport, when a client is made: the descriptors and media types here serve the
    # scan, apt and verify modules without it (start-up time, issue #15).
    import requests

    from pinrepro.registry.transport import Transport

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
# All four, always: without the list/index types a registry answers the linux/amd64 manifest and the pin is
# wrong for every other platform (dependabot-core #2962/#3060, distribution #3431).
ACCEPT_MANIFESTS = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST))
# containerd's cap on manifest size (core/remotes/docker/fetcher.go).
MAX_MANIFEST_BYTES = 4 << 20
_MANIFEST_HEADERS = {
    "Accept": ACCEPT_MANIFESTS,
    # requests asks for gzip by default; a compressed manifest no longer hashes to its digest (quay PR #1310).
    "Accept-Encoding": "identity",
}
_BLOB_HEADERS = {"Accept-Encoding": "identity"}
_GENERIC_TYPES = {"", "application/json", "text/plain", "application/octet-stream"}
_CHUNK = 1 << 16
_T = TypeVar("_T")
# Requests in flight per registry host. Over a WAN each request waits a round trip, so lookups overlap them: 32
# keep-alive connections turn 200 tags into 7 waves of round trips instead of 25. Registries throttle per client
# rather than per connection, and a 429 is retried after its Retry-After (transport.py). The environment variable
# lowers it for a registry that refuses many connections (or raises it).
DEFAULT_PER_REGISTRY = 32
PER_REGISTRY_ENV = "PINREPRO_REGISTRY_CONNECTIONS"


@dataclass(frozen=True)
class Descriptor:
    digest: str
    media_type: str
    size: int | None


@dataclass(frozen=True)
class PlatformManifest:
    digest: str
    media_type: str
    config_digest: str | None


@dataclass(frozen=True)
class ImageDescription:
    digest: str  # what the tag points to (the index for multi-platform images)
    media_type: str
    platforms: Mapping[str, PlatformManifest]  # platform_key -> manifest; attestations ("unknown/unknown") skipped


class BlobCache(Protocol):
    """Content-addressed storage of small blobs (pinrepro.inventory.cache.Cache is one)."""

    def blob(self, digest: str) -> bytes | None: ...

    def put_blob(self, digest: str, data: bytes) -> None: ...


class RegistryClient:
    """Talks to registries over the distribution API; no Docker daemon involved."""

    def __init__(self, keychain: Keychain | None = None, *, mirrors: Mapping[str, str] | None = None,
                 insecure_registries: Iterable[str] = (), max_workers: int | None = None,
                 transport: Transport | None = None, progress: Callable[[int, int], None] | None = None,
                 blob_cache: BlobCache | None = None, per_registry: int | None = None,
                 **transport_options: Any) -> None:
        self.mirrors: dict[str, str] = {}
        insecure = set(insecure_registries)
        for upstream, mirror in (mirrors or {}).items():
            host = mirror.strip().rstrip("/")
            if host.startswith("http://"):
                insecure.add(host.removeprefix("http://"))  # the user said plain HTTP for this mirror
            host = host.removeprefix("http://").removeprefix("https://")
            self.mirrors[upstream] = host
        self.per_registry = max(1, per_registry if per_registry is not None else _per_registry_from_env())
        # Threads for describe_many/head_many; each host admits ``per_registry`` of them at a time.
        self.max_workers = max(1, max_workers if max_workers is not None else 2 * self.per_registry)
        self.progress = progress
        if transport is None:
            from pinrepro.registry.transport import Transport

            # One keep-alive connection per request a host admits, so no wave pays a new handshake.
            transport = Transport(keychain if keychain is not None else DefaultKeychain(),
                                  insecure_registries=sorted(insecure),
                                  pool_size=max(16, self.per_registry), **transport_options)
        self.transport = transport
        self.blob_cache = blob_cache
        self._lock = threading.Lock()
        self._blob_bytes = 0
        self._gates: dict[str, threading.BoundedSemaphore] = {}

    @property
    def blob_bytes(self) -> int:
        with self._lock:
            return self._blob_bytes

    def _count_blob(self, amount: int) -> None:
        with self._lock:
            self._blob_bytes += amount

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- where a reference is served ---------------------------------------------------------------

    def host_for(self, ref: ImageRef) -> str:
        """The host that serves ``ref``: its mirror when one is configured, else its API host."""
        return self.mirrors.get(ref.registry) or self.mirrors.get(ref.api_host) or ref.api_host

    def _request(self, method: str, ref: ImageRef, path: str, *, headers: Mapping[str, str],
                 stream: bool = False, allow_status: Iterable[int] = (), long_body: bool = False) -> requests.Response:
        host = self.host_for(ref)
        upstream = ref.registry if host != ref.api_host else None
        # The per-registry cap covers sending and the answer's headers; a streamed body is read after it.
        with self._gate(host):
            return self.transport.request(method, host, ref.repository, f"/v2/{ref.repository}{path}",
                                          headers=headers, stream=stream, allow_status=tuple(allow_status),
                                          upstream=upstream, long_body=long_body)

    def _gate(self, host: str) -> threading.BoundedSemaphore:
        with self._lock:
            gate = self._gates.get(host)
            if gate is None:
                gate = self._gates[host] = threading.BoundedSemaphore(self.per_registry)
            return gate

    # -- manifests ---------------------------------------------------------------------------------

    def head_digest(self, ref: ImageRef) -> Descriptor:
        """The digest ``ref`` points to. HEAD first (free on Docker Hub); GET and hash when HEAD can't tell."""
        # HEAD may answer 404/405 where GET works (old distribution, Nexus, some Harbor) - FACTS.md.
        response = self._request("HEAD", ref, f"/manifests/{ref.manifest_ref}", headers=_MANIFEST_HEADERS,
                                 allow_status=(404, 405))
        with response:
            digest = response.headers.get("Docker-Content-Digest", "").strip()
            media_type = _media_type(response.headers.get("Content-Type"))
            length = response.headers.get("Content-Length")
            usable = response.status_code < 300 and digest and media_type not in _GENERIC_TYPES
        if usable:
            if ref.digest and digest != ref.digest:
                raise self._mismatch(ref, "manifest", ref.digest, digest)
            if media_type not in INDEX_TYPES | MANIFEST_TYPES:
                raise self._unknown_type(ref, media_type)
            size = int(length) if length and length.isdigit() and int(length) > 0 else None
            return Descriptor(digest, media_type, size)
        # No Docker-Content-Digest (ECR, registry.access.redhat.com, proxies): hash the exact body.
        body, media_type, digest = self.get_manifest(ref)
        return Descriptor(digest, media_type, len(body))

    def get_manifest(self, ref: ImageRef) -> tuple[bytes, str, str]:
        """Body, media type and verified digest of the manifest ``ref`` names (digest if set, else tag)."""
        try:
            response = self._request("GET", ref, f"/manifests/{ref.manifest_ref}", headers=_MANIFEST_HEADERS,
                                     stream=True)
        except RepositoryNotFoundError:
            raise
        except NotFoundError as missing:
            if ref.digest is None:
                self._raise_if_no_repository(ref)
            raise missing
        with response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > MAX_MANIFEST_BYTES:
                raise self._too_big(ref, int(length))
            body = _read_capped(response, MAX_MANIFEST_BYTES + 1)
            header_digest = response.headers.get("Docker-Content-Digest", "").strip()
            header_type = _media_type(response.headers.get("Content-Type"))
        if len(body) > MAX_MANIFEST_BYTES:
            raise self._too_big(ref, len(body))
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        # Clients MUST verify (distribution spec): the header when present, the requested digest when asked.
        for expected in (header_digest, ref.digest):
            if expected and _digest_of(body, expected, self._where(ref)) != expected:
                raise self._mismatch(ref, "manifest", expected, _digest_of(body, expected, self._where(ref)))
        if ref.digest:
            digest = ref.digest
        document = _parse_json(body)
        media_type = header_type
        if media_type in _GENERIC_TYPES:
            media_type = _body_media_type(document)
        if media_type not in INDEX_TYPES | MANIFEST_TYPES:
            raise self._unknown_type(ref, media_type)
        if document is None:
            raise RegistryError(f"the manifest of {ref} from {self.host_for(ref)} is not valid JSON",
                                fix="the registry sent a broken manifest; try again or report it to its operators")
        return body, media_type, digest

    def _raise_if_no_repository(self, ref: ImageRef) -> None:
        """After a tag 404: raise RepositoryNotFoundError when the whole repository is missing.

        distribution answers a manifest GET in an unknown repository with MANIFEST_UNKNOWN, which reads as a
        wrong tag; its tag list answers NAME_UNKNOWN. One request, on the error path only.
        """
        try:
            self._request("GET", ref, "/tags/list?n=1", headers={}).close()
        except RepositoryNotFoundError:
            raise
        except PinreproError:
            pass  # the tag list may be denied or unsupported (some registries): the tag's own error stands

    def describe(self, ref: ImageRef) -> ImageDescription:
        """What ``ref`` points to and the manifest per platform (one GET; a config GET for single-platform).

        With a digest (a tag a HEAD found moved, a digest-only reference) the manifest comes from
        ``blob_cache`` when an earlier run read it: no GET at all, which is what Docker Hub counts as a pull.
        """
        body, media_type, digest = self._manifest(ref)
        document = _parse_json(body)
        assert isinstance(document, dict)  # get_manifest checked it parses and has a known type
        if media_type in INDEX_TYPES:
            return ImageDescription(digest, media_type, self._platforms_of_index(ref, document))
        config = document.get("config")
        config_digest = config.get("digest") if isinstance(config, dict) else None
        if not isinstance(config_digest, str) or not config_digest:
            raise RegistryError(f"the manifest of {ref} has no config descriptor",
                                fix="the image is not a container image; check the reference")
        image_config = _parse_json(self.get_blob(ref, config_digest))
        if not isinstance(image_config, dict):
            raise RegistryError(f"the config blob {config_digest} of {ref} is not a JSON object",
                                fix="the image is not a container image; check the reference")
        key = platform_key(str(image_config.get("os") or "unknown"), str(image_config.get("architecture") or
                                                                         "unknown"),
                           _optional_str(image_config.get("variant")))
        return ImageDescription(digest, media_type, {key: PlatformManifest(digest, media_type, config_digest)})

    def _manifest(self, ref: ImageRef) -> tuple[bytes, str, str]:
        cached = self.blob_cache.blob(ref.digest) if self.blob_cache is not None and ref.digest else None
        if cached is not None and ref.digest:
            media_type = _body_media_type(_parse_json(cached))
            if media_type in INDEX_TYPES | MANIFEST_TYPES:
                return cached, media_type, ref.digest
        body, media_type, digest = self.get_manifest(ref)
        if self.blob_cache is not None:
            self.blob_cache.put_blob(digest, body)  # verified against its digest by get_manifest
        return body, media_type, digest

    def _platforms_of_index(self, ref: ImageRef, index: dict[str, Any]) -> dict[str, PlatformManifest]:
        platforms: dict[str, PlatformManifest] = {}
        entries = index.get("manifests")
        if not isinstance(entries, list):
            raise RegistryError(f"the index of {ref} has no 'manifests' list",
                                fix="the registry sent a broken index; report it to its operators")
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            platform = entry.get("platform")
            digest = entry.get("digest")
            if not isinstance(platform, dict) or not isinstance(digest, str):
                continue
            os_name = str(platform.get("os") or "")
            architecture = str(platform.get("architecture") or "")
            # BuildKit's attestation manifests sit in the index as "unknown/unknown".
            if not os_name or not architecture or os_name == "unknown" or architecture == "unknown":
                continue
            key = platform_key(os_name, architecture, _optional_str(platform.get("variant")))
            # The first entry for a platform wins, as in docker pull (containerd's platform matcher order).
            platforms.setdefault(key, PlatformManifest(digest, str(entry.get("mediaType") or ""), None))
        return platforms

    # -- blobs -------------------------------------------------------------------------------------

    def get_blob(self, ref: ImageRef, digest: str, *, max_size: int = 4 << 20) -> bytes:
        """A small blob (an image config), read whole and verified against ``digest``.

        Blobs are content addressed, so one found in ``blob_cache`` is never downloaded again: describing a
        single-platform image and scanning its contents then fetch its config once between them, and never
        again on a later lock.
        """
        cached = self.blob_cache.blob(digest) if self.blob_cache else None
        if cached is not None:
            return cached
        response = self._request("GET", ref, f"/blobs/{digest}", headers=_BLOB_HEADERS, stream=True)
        with response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_size:
                raise self._blob_too_big(ref, digest, int(length), max_size)
            body = _read_capped(response, max_size + 1)
        if len(body) > max_size:
            raise self._blob_too_big(ref, digest, len(body), max_size)
        self._count_blob(len(body))
        actual = _digest_of(body, digest, self._where(ref))
        if actual != digest:
            raise self._mismatch(ref, "blob", digest, actual)
        if self.blob_cache:
            self.blob_cache.put_blob(digest, body)
        return body

    def open_blob(self, ref: ImageRef, digest: str) -> BinaryIO:
        """A layer as a stream; reading past its end raises RegistryError when its sha256 does not match."""
        algorithm = digest.partition(":")[0]
        if algorithm not in hashlib.algorithms_available:
            raise RegistryError(f"unsupported digest algorithm in {digest} for {ref}",
                                fix="pinrepro verifies sha256 and sha512 digests")
        response = self._request("GET", ref, f"/blobs/{digest}", headers=_BLOB_HEADERS, stream=True, long_body=True)
        raw = _VerifiedStream(response, digest, self._where(ref),
                              lambda: self._mismatch(ref, "blob", digest, raw.actual()), self._count_blob)
        return io.BufferedReader(raw, buffer_size=_CHUNK)

    # -- many at once ------------------------------------------------------------------------------

    def describe_many(self, refs: Sequence[ImageRef], *,
                      then: Callable[[ImageRef, ImageDescription], None] | None = None
                      ) -> dict[ImageRef, ImageDescription]:
        """describe() for each unique ref, concurrently; one token request per registry for all of them.

        ``then`` runs in the worker as each description arrives, so the caller's next step for that image (lock's
        contents scan) starts while other tags are still being asked; an error it raises is that ref's error.
        Raises the first error in input order, after every lookup finished.
        """
        def describe_then(ref: ImageRef) -> ImageDescription:
            description = self.describe(ref)
            if then is not None:
                then(ref, description)
            return description

        results = self._run_many(describe_then, refs)
        described: dict[ImageRef, ImageDescription] = {}
        for ref, result in results.items():
            if isinstance(result, BaseException):
                raise result
            described[ref] = result
        return described

    def head_many(self, refs: Sequence[ImageRef]) -> dict[ImageRef, Descriptor | PinreproError]:
        """head_digest() for each unique ref, concurrently; errors are returned per ref, not raised."""
        results = self._run_many(self.head_digest, refs)
        out: dict[ImageRef, Descriptor | PinreproError] = {}
        for ref, result in results.items():
            if isinstance(result, BaseException) and not isinstance(result, PinreproError):
                raise result
            out[ref] = result
        return out

    def _run_many(self, work: Callable[[ImageRef], _T], refs: Sequence[ImageRef]) -> dict[ImageRef, _T | BaseException]:
        unique = list(dict.fromkeys(refs))
        by_host: dict[str, list[str]] = {}
        for ref in unique:
            by_host.setdefault(self.host_for(ref), []).append(ref.repository)
        for host, repositories in by_host.items():
            with contextlib.suppress(PinreproError):
                # On failure each lookup reports its own error, naming its repository; an unreachable host is
                # remembered by the transport, so its lookups fail fast instead of retrying each.
                self.transport.prefetch_tokens(host, sorted(set(repositories)))
        results: dict[ImageRef, _T | BaseException] = {}
        total = len(unique)
        with worker_pool(min(self.max_workers, max(1, total))) as pool:
            futures: dict[Future[_T], ImageRef] = {pool.submit(work, ref): ref for ref in unique}
            for done, future in enumerate(as_completed(futures), start=1):
                ref = futures[future]
                try:
                    results[ref] = future.result()
                except BaseException as exc:  # kept per ref, re-raised in input order
                    results[ref] = exc
                if self.progress is not None:
                    self.progress(done, total)
        return {ref: results[ref] for ref in unique}

    # -- errors ------------------------------------------------------------------------------------

    def _where(self, ref: ImageRef) -> str:
        host = self.host_for(ref)
        return f"{ref.name} (via mirror {host})" if host != ref.api_host else ref.name

    def _mismatch(self, ref: ImageRef, kind: str, expected: str, actual: str) -> RegistryError:
        return RegistryError(f"digest mismatch for {kind} of {self._where(ref)}: expected {expected}, got {actual}",
                             fix="the registry or a proxy altered the content; try again, or report it")

    def _unknown_type(self, ref: ImageRef, media_type: str) -> RegistryError:
        shown = media_type or "none"
        return RegistryError(f"unsupported manifest media type '{shown}' for {self._where(ref)}",
                             fix="pinrepro understands OCI and Docker v2 manifests and indexes; Docker schema 1 "
                                 "images must be re-pushed with a current Docker or skopeo")

    def _too_big(self, ref: ImageRef, size: int) -> RegistryError:
        return RegistryError(f"the manifest of {self._where(ref)} is {size} bytes, over the "
                             f"{MAX_MANIFEST_BYTES}-byte limit", fix="check the reference; this is not an image")

    def _blob_too_big(self, ref: ImageRef, digest: str, size: int, limit: int) -> RegistryError:
        return RegistryError(f"blob {digest} of {self._where(ref)} is {size} bytes, over the {limit}-byte limit",
                             fix="check the reference; the config blob of an image is small")


class _VerifiedStream(io.RawIOBase):
    """Reads a response body, hashing as it goes; at EOF the hash must equal the digest."""

    def __init__(self, response: requests.Response, digest: str, where: str, mismatch: Callable[[], RegistryError],
                 count: Callable[[int], None]) -> None:
        super().__init__()
        self._response = response
        self._digest = digest
        self._where = where
        self._hash = hashlib.new(digest.partition(":")[0])
        self._mismatch = mismatch
        self._count = count
        self._checked = False

    def readable(self) -> bool:
        return True

    def actual(self) -> str:
        return f"{self._digest.partition(':')[0]}:{self._hash.hexdigest()}"

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._response.raw.read(len(view), decode_content=True)
        except Exception as exc:
            scope = getattr(self._response, "pinrepro_deadline", None)
            if scope is not None and scope.fired:
                raise RegistryError(f"the download of blob {self._digest} of {self._where} did not finish within "
                                    f"{scope.seconds:g}s", fix="raise PINREPRO_BLOB_DEADLINE for slow links, "
                                                              "or try again later") from None
            raise RegistryError(f"the download of blob {self._digest} of {self._where} broke off "
                                f"({type(exc).__name__})",
                                fix="try again; check the network or proxy") from None
        if not data:
            if not self._checked:
                self._checked = True
                if self.actual() != self._digest:
                    raise self._mismatch()
            return 0
        self._hash.update(data)
        self._count(len(data))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()


def _per_registry_from_env() -> int:
    value = os.environ.get(PER_REGISTRY_ENV, "").strip()
    if not value:
        return DEFAULT_PER_REGISTRY
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{value!r} is not a positive whole number", where=PER_REGISTRY_ENV,
                          fix=f"unset it, or set e.g. {PER_REGISTRY_ENV}=8")
    return int(value)


def _read_capped(response: requests.Response, limit: int) -> bytes:
    import requests  # loaded already: there is a response (the module imports it for annotations only)

    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(_CHUNK):
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
    except requests.exceptions.RequestException as exc:
        raise broken_off(response, exc) from None
    scope = getattr(response, "pinrepro_deadline", None)
    if scope is not None and scope.fired:  # cut short by the deadline: what came is not the whole body
        raise broken_off(response, TimeoutError())
    return b"".join(chunks)


def _digest_of(body: bytes, like: str, where: str) -> str:
    algorithm = like.partition(":")[0]
    if algorithm not in ("sha256", "sha384", "sha512"):
        raise RegistryError(f"unsupported digest algorithm '{algorithm}' in {like} for {where}",
                            fix="pinrepro verifies sha256 and sha512 digests")
    return f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}"


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def _parse_json(body: bytes) -> Any:
    try:
        return loads(body)
    except ValueError:
        return None


def _body_media_type(document: Any) -> str:
    """The media type a manifest declares, or what its shape says when it declares none (image-spec allows it)."""
    if not isinstance(document, dict):
        return ""
    declared = document.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if isinstance(document.get("manifests"), list):
        return OCI_INDEX
    if isinstance(document.get("config"), dict):
        return OCI_MANIFEST
    return ""


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
