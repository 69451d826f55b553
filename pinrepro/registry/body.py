"""Reading what a server sends, within bounds: capped bodies, bounded JSON, URLs pinrepro will follow.

A hostile or broken server can answer with hundreds of MiB, JSON nested a million levels deep, a Location
of ``file:///etc/passwd`` or an IPv6 literal that does not parse; each becomes one clear error, never a
memory blow-up, a RecursionError or an internal error.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pinrepro.errors import RegistryError
from pinrepro.reference import is_loopback_host

if TYPE_CHECKING:
    import requests  # annotations only: the client's module loads without it (start-up time, issue #15)

_CHUNK = 64 << 10
# The algorithms image-spec descriptors use (descriptor.md "Registered algorithms": sha256, sha512; sha384 too).
DIGEST_ALGORITHMS = ("sha256", "sha384", "sha512")


def buffer_capped(response: requests.Response, limit: int, netloc: str, *, truncate: bool = False) -> None:
    """Read the body of a streamed ``response`` into it (``response.content`` works after), at most ``limit``.

    Over the limit: with ``truncate`` (error bodies, only read for their message) keep the first ``limit``
    bytes; else close the connection and raise. Decompressed bytes count (a gzip bomb stops at the cap).
    """
    length = response.headers.get("Content-Length", "")
    if not truncate and length.isdigit() and int(length) > limit:
        response.close()
        raise _too_big(netloc, limit)
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(_CHUNK):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            response.close()
            if not truncate:
                raise _too_big(netloc, limit)
            break
    # requests reads .content, .json() and iter_content from these two once the body was consumed.
    response._content = b"".join(chunks)[:limit]
    setattr(response, "_content_consumed", True)  # noqa: B010 - not in requests' type stubs


def broken_off(response: requests.Response, exc: Exception) -> RegistryError:
    """The error for a body that stopped arriving: cut by the deadline, or broken framing."""
    netloc = urlsplit(response.url or "").netloc or "the registry"
    scope = getattr(response, "pinrepro_deadline", None)
    if scope is not None and scope.fired:
        return deadline_passed(netloc, scope.seconds)
    return framing_broken(netloc)


def framing_broken(netloc: str) -> RegistryError:
    return RegistryError(f"the answer from {netloc} broke off (bad chunked encoding, or shorter than its "
                         f"Content-Length)", fix="try again; check the network or proxy")


def deadline_passed(netloc: str, seconds: float) -> RegistryError:
    """The error for a request the total deadline cut, before or while its body came (PINREPRO_HTTP_DEADLINE)."""
    return RegistryError(f"{netloc} did not send a complete answer within {seconds:g}s",
                         fix="the server is too slow or stalled; try again later, or raise PINREPRO_HTTP_DEADLINE")


def _too_big(netloc: str, limit: int) -> RegistryError:
    return RegistryError(f"{netloc} sent an answer larger than {limit} bytes; refused to keep it in memory",
                         fix="check the registry; raise PINREPRO_MAX_BODY if the answer is genuine")


def loads(data: bytes | str) -> Any:
    """json.loads that reports absurd nesting as invalid JSON (ValueError), not a RecursionError."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def problem_with_url(url: str) -> str | None:
    """Why pinrepro will not send a request to ``url`` (not http(s), no host, unparsable), or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"the URL does not parse ({exc})"
    if parts.scheme not in ("http", "https"):
        return f"'{parts.scheme}:' is not http or https" if parts.scheme else "it is not an absolute http(s) URL"
    if not host:
        return "the URL names no host"
    if not parts.netloc.isascii() or any(c.isspace() for c in url):
        return "the URL has characters a request line cannot carry"
    return None


def plain_http_refused(api_host: str, registry_scheme: str, insecure_registries: Collection[str]) -> bool:
    """True when a plain-HTTP realm or redirect must be refused for ``api_host``.

    Allowed only when the registry itself is loopback, listed in ``insecure_registries``, or spoken to over
    plain HTTP already (then nothing is lost that was not already in clear text).
    """
    if registry_scheme == "http":
        return False
    return not (is_loopback_host(api_host) or api_host.lower() in insecure_registries)


def digest_hash(digest: str) -> Any:
    """A fresh hash object for ``digest``'s algorithm; ValueError for one pinrepro does not verify."""
    algorithm = digest.partition(":")[0]
    if algorithm not in DIGEST_ALGORITHMS:
        raise ValueError(f"unsupported digest algorithm '{algorithm}' in {digest}")
    return hashlib.new(algorithm)


def verifiable_hash(digest: str, where: str) -> Any:
    """digest_hash, or the error naming ``where`` for an algorithm pinrepro does not verify."""
    try:
        return digest_hash(digest)
    except ValueError:
        raise RegistryError(f"unsupported digest algorithm '{digest.partition(':')[0]}' in {digest} for {where}",
                            fix="pinrepro verifies sha256, sha384 and sha512 digests") from None


class VerifyingReader(io.RawIOBase):
    """A body read through its hash; at its end the hash must equal ``digest``, else ``mismatch(actual)`` is raised.

    The one verifying reader for content fetched by digest (layers from the registry client and in the layer
    scan): the OCI distribution spec says clients MUST verify content against its digest
    (https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-blobs). ``size`` counts the
    bytes read; ``count`` hears of each chunk (download statistics); ``on_close`` closes what is read from.
    """

    def __init__(self, read: Callable[[int], bytes], digest: str, mismatch: Callable[[str], Exception], *,
                 count: Callable[[int], None] | None = None, on_close: Callable[[], None] | None = None) -> None:
        super().__init__()
        self._hash = digest_hash(digest)
        self._read = read
        self._digest = digest
        self._mismatch = mismatch
        self._count = count
        self._on_close = on_close
        self._checked = False
        self.size = 0

    def readable(self) -> bool:
        return True

    def actual(self) -> str:
        """The digest of what was read so far, in ``digest``'s algorithm."""
        return f"{self._hash.name}:{self._hash.hexdigest()}"

    def read(self, size: int | None = -1, /) -> bytes:
        if size is None or size < 0:
            return self.readall()
        if size == 0:
            return b""
        data = self._read(size)
        if data:
            self._hash.update(data)
            self.size += len(data)
            if self._count is not None:
                self._count(len(data))
        elif not self._checked:
            self._checked = True
            if self.actual() != self._digest:
                raise self._mismatch(self.actual())
        return data

    def readall(self) -> bytes:
        chunks = []
        while chunk := self.read(_CHUNK):
            chunks.append(chunk)
        return b"".join(chunks)

    def readinto(self, buffer: Any, /) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        """Read to the end, so the digest is checked even when the consumer stopped early."""
        while self.read(1 << 20):
            pass

    def close(self) -> None:
        if not self.closed and self._on_close is not None:
            self._on_close()
        super().close()


def read_capped(response: requests.Response, limit: int) -> bytes:
    """A streamed body, at most ``limit`` bytes; a body cut by the deadline or broken framing is an error."""
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


def read_within(response: requests.Response, limit: int, refuse: Callable[[int], Exception]) -> bytes:
    """The whole body when it has at most ``limit`` bytes, else ``refuse(size)`` (Content-Length tells first)."""
    length = response.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > limit:
        raise refuse(int(length))
    body = read_capped(response, limit + 1)
    if len(body) > limit:
        raise refuse(len(body))
    return body


def digest_of(body: bytes, like: str, where: str) -> str:
    """The digest of ``body`` in the algorithm of the digest ``like``."""
    hashed = verifiable_hash(like, where)
    hashed.update(body)
    return f"{hashed.name}:{hashed.hexdigest()}"


def download(response: requests.Response, digest: str, where: str) -> Callable[[int], bytes]:
    """Reads of a layer download, its failures in the user's words (the deadline, or a connection that broke)."""

    def read(size: int) -> bytes:
        try:
            return bytes(response.raw.read(size, decode_content=True))
        except Exception as exc:
            scope = getattr(response, "pinrepro_deadline", None)
            if scope is not None and scope.fired:
                raise RegistryError(f"the download of blob {digest} of {where} did not finish within "
                                    f"{scope.seconds:g}s", fix="raise PINREPRO_BLOB_DEADLINE for slow links, "
                                                              "or try again later") from None
            raise RegistryError(f"the download of blob {digest} of {where} broke off ({type(exc).__name__})",
                                fix="try again; check the network or proxy") from None

    return read
