"""Registry operations pinrepro needs: tag -> digest, what platforms an image has, manifests, blobs.

Everything goes through one Transport (auth, retries, redirects). Every byte that comes back by digest is
verified: the OCI distribution spec says clients MUST check content against its digest.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, TypeVar

from pinrepro.errors import NotFoundError, PinreproError, RegistryError, RepositoryNotFoundError
from pinrepro.reference import ImageRef
from pinrepro.registry.authn import DefaultKeychain, Keychain
from pinrepro.registry.body import VerifyingReader, digest_of, download, loads, read_within, verifiable_hash
from pinrepro.registry.concurrency import per_registry_from_env
from pinrepro.registry.errors import digest_mismatch, too_big, unknown_media_type
from pinrepro.registry.mediatypes import (
    ACCEPT_MANIFESTS,
    GENERIC_TYPES,
    INDEX_TYPES,
    MANIFEST_TYPES,
    body_media_type,
    header_media_type,
)
from pinrepro.registry.platform import config_platform, index_platforms
from pinrepro.workers import as_completed, start_threads, worker_pool

if TYPE_CHECKING:
    # requests loads with the transport, when a client is made: the descriptors here serve the scan, apt and
    # verify modules without it (start-up time, issue #15).
    import requests

    from pinrepro.registry.transport import Transport

# containerd's cap on manifest size (core/remotes/docker/fetcher.go).
MAX_MANIFEST_BYTES = 4 << 20
_MANIFEST_HEADERS = {
    "Accept": ACCEPT_MANIFESTS,
    # requests asks for gzip by default; a compressed manifest no longer hashes to its digest (quay PR #1310).
    "Accept-Encoding": "identity",
}
_BLOB_HEADERS = {"Accept-Encoding": "identity"}
_CHUNK = 1 << 16
_T = TypeVar("_T")


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
        self.per_registry = max(1, per_registry if per_registry is not None else per_registry_from_env())
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
        # HEAD may answer 404/405 where GET works (old distribution, Nexus, some Harbor).
        response = self._request("HEAD", ref, f"/manifests/{ref.manifest_ref}", headers=_MANIFEST_HEADERS,
                                 allow_status=(404, 405))
        with response:
            digest = response.headers.get("Docker-Content-Digest", "").strip()
            media_type = header_media_type(response.headers.get("Content-Type"))
            length = response.headers.get("Content-Length")
            usable = response.status_code < 300 and digest and media_type not in GENERIC_TYPES
        if usable:
            if ref.digest and digest != ref.digest:
                raise self._mismatch(ref, "manifest", ref.digest, digest)
            if media_type not in INDEX_TYPES | MANIFEST_TYPES:
                raise unknown_media_type(self._where(ref), media_type)
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
            body = read_within(response, MAX_MANIFEST_BYTES, lambda size: too_big(
                f"the manifest of {self._where(ref)}", size, MAX_MANIFEST_BYTES,
                fix="check the reference; this is not an image"))
            header_digest = response.headers.get("Docker-Content-Digest", "").strip()
            header_type = header_media_type(response.headers.get("Content-Type"))
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        # Clients MUST verify (distribution spec): the header when present, the requested digest when asked.
        for expected in (header_digest, ref.digest):
            if expected and digest_of(body, expected, self._where(ref)) != expected:
                raise self._mismatch(ref, "manifest", expected, digest_of(body, expected, self._where(ref)))
        if ref.digest:
            digest = ref.digest
        document = _parse_json(body)
        media_type = header_type
        if media_type in GENERIC_TYPES:
            media_type = body_media_type(document)
        if media_type not in INDEX_TYPES | MANIFEST_TYPES:
            raise unknown_media_type(self._where(ref), media_type)
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
        key = config_platform(image_config)
        return ImageDescription(digest, media_type, {key: PlatformManifest(digest, media_type, config_digest)})

    def _manifest(self, ref: ImageRef) -> tuple[bytes, str, str]:
        cached = self.blob_cache.blob(ref.digest) if self.blob_cache is not None and ref.digest else None
        if cached is not None and ref.digest:
            media_type = body_media_type(_parse_json(cached))
            if media_type in INDEX_TYPES | MANIFEST_TYPES:
                return cached, media_type, ref.digest
        body, media_type, digest = self.get_manifest(ref)
        if self.blob_cache is not None:
            self.blob_cache.put_blob(digest, body)  # verified against its digest by get_manifest
        return body, media_type, digest

    def _platforms_of_index(self, ref: ImageRef, index: dict[str, Any]) -> dict[str, PlatformManifest]:
        entries = index.get("manifests")
        if not isinstance(entries, list):
            raise RegistryError(f"the index of {ref} has no 'manifests' list",
                                fix="the registry sent a broken index; report it to its operators")
        return {key: PlatformManifest(digest, media_type, None)
                for key, (digest, media_type) in index_platforms(entries).items()}

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
            body = read_within(response, max_size, lambda size: too_big(
                f"blob {digest} of {self._where(ref)}", size, max_size,
                fix="check the reference; the config blob of an image is small"))
        self._count_blob(len(body))
        actual = digest_of(body, digest, self._where(ref))
        if actual != digest:
            raise self._mismatch(ref, "blob", digest, actual)
        if self.blob_cache:
            self.blob_cache.put_blob(digest, body)
        return body

    def open_blob(self, ref: ImageRef, digest: str) -> BinaryIO:
        """A layer as a stream; reading past its end raises RegistryError when its digest does not match."""
        where = self._where(ref)
        verifiable_hash(digest, where)  # an algorithm pinrepro cannot verify is refused before the download
        response = self._request("GET", ref, f"/blobs/{digest}", headers=_BLOB_HEADERS, stream=True, long_body=True)
        raw = VerifyingReader(download(response, digest, where), digest,
                              lambda actual: self._mismatch(ref, "blob", digest, actual),
                              count=self._count_blob, on_close=response.close)
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
        results: dict[ImageRef, _T | BaseException] = {}
        total = len(unique)
        workers = min(self.max_workers, max(1, total))
        with worker_pool(workers) as pool:
            # While the registry is pinged (the ping goes first), the first wave's connections open and the pool's
            # threads start, instead of one by one as the lookups are submitted.
            starter = threading.Thread(target=self._warm_up, args=(pool, workers, by_host), daemon=True)
            starter.start()
            try:
                for host, repositories in by_host.items():
                    with contextlib.suppress(PinreproError):
                        # On failure each lookup reports its own error, naming its repository; an unreachable host
                        # is remembered by the transport, so its lookups fail fast instead of retrying each.
                        self.transport.prefetch_tokens(host, sorted(set(repositories)))
            finally:
                starter.join()
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

    def _warm_up(self, pool: ThreadPoolExecutor, workers: int, by_host: Mapping[str, list[str]]) -> None:
        for host, repositories in by_host.items():
            # Only saves time: whatever goes wrong here, the lookups open their own connections and report it.
            with contextlib.suppress(Exception):
                self.transport.preconnect(host, min(len(repositories), self.per_registry) - 1)  # one is the ping's
        start_threads(pool, workers)

    # -- errors ------------------------------------------------------------------------------------

    def _where(self, ref: ImageRef) -> str:
        host = self.host_for(ref)
        return f"{ref.name} (via mirror {host})" if host != ref.api_host else ref.name

    def _mismatch(self, ref: ImageRef, kind: str, expected: str, actual: str) -> RegistryError:
        return digest_mismatch(kind, self._where(ref), expected, actual)


def _parse_json(body: bytes) -> Any:
    try:
        return loads(body)
    except ValueError:
        return None

