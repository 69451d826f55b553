"""Image references, parsed and normalised the way Docker does it.

``ubuntu`` means ``docker.io/library/ubuntu:latest``; ``index.docker.io`` and ``registry-1.docker.io`` are
Docker Hub too. The grammar follows distribution's ``reference`` package (reference/regexp.go): a domain is
the first path component when it has a ``.`` or ``:``, is ``localhost``, or has upper-case letters.
Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from pinrepro.errors import InvalidReferenceError

DOCKER_HUB = "docker.io"
# The host that actually serves Docker Hub's registry API (docker.io only redirects browsers).
DOCKER_HUB_API_HOST = "registry-1.docker.io"
# Every host name that means Docker Hub (docker/cli and distribution's reference normalisation).
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})
DEFAULT_TAG = "latest"

_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
# re.ASCII: distribution's grammar is ASCII; Python's \w would also take "１.０" or "v²é".
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
# The algorithms go-digest (and so docker build) accepts, and their hex lengths; `@md5:...` is refused by the build.
_DIGEST_HEX_DIGITS = {"sha256": 64, "sha384": 96, "sha512": 128}
_DOMAIN_LABEL = re.compile(r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])")
_IPV6 = re.compile(r"\[[a-fA-F0-9:]+\]")
_MAX_NAME = 255


@dataclass(frozen=True, order=True)
class ImageRef:
    """A normalised image reference: registry host, repository path, and a tag and/or a digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None
    # True when the user wrote no tag and no digest, so ``latest`` was implied (Docker's rule).
    implicit_tag: bool = False

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Parse ``text``; raise InvalidReferenceError naming the reason when it is not a valid reference."""
        original = text
        if not text or text != text.strip():
            raise _bad(original, "it is empty or has surrounding spaces")
        if not text.isascii():
            raise _bad(original, "it has non-ASCII characters (image references are ASCII only)")
        if "://" in text:
            raise _bad(original, "an image reference has no scheme; drop the 'https://'")
        digest: str | None = None
        if "@" in text:
            text, digest = text.split("@", 1)
            if not _DIGEST.fullmatch(digest):
                raise _bad(original, f"'{digest}' is not a digest (expected sha256:<64 hex digits>)")
            algorithm, _, hex_part = digest.partition(":")
            digits = _DIGEST_HEX_DIGITS.get(algorithm)
            if digits is None:
                raise _bad(original, f"'{algorithm}' is not a digest algorithm docker build accepts "
                                     "(sha256, sha384, sha512)")
            if not re.fullmatch(f"[a-f0-9]{{{digits}}}", hex_part):
                raise _bad(original, f"a {algorithm} digest has exactly {digits} lower-case hex digits")
        tag: str | None = None
        # A ':' after the last '/' separates the tag; one before it belongs to a host:port.
        last_slash = text.rfind("/")
        colon = text.rfind(":")
        if colon > last_slash:
            text, tag = text[:colon], text[colon + 1 :]
            if not _TAG.fullmatch(tag):
                raise _bad(original, f"'{tag}' is not a valid tag (letters, digits, '_', '.', '-'; at most 128)")
        registry, path = _split_domain(text, original)
        components = path.split("/")
        for component in components:
            if not component:
                raise _bad(original, "the repository has an empty path component")
            if component.lower() != component and _PATH_COMPONENT.fullmatch(component.lower()):
                raise _bad(original, "repository names must be lower-case")
            if not _PATH_COMPONENT.fullmatch(component):
                raise _bad(original, f"'{component}' is not a valid repository path component")
        if registry == DOCKER_HUB and len(components) == 1:
            path = f"library/{path}"
        if len(registry) + 1 + len(path) > _MAX_NAME:
            raise _bad(original, f"the name is longer than {_MAX_NAME} characters")
        implicit = tag is None and digest is None
        if implicit:
            tag = DEFAULT_TAG
        return cls(registry=registry, repository=path, tag=tag, digest=digest, implicit_tag=implicit)

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        """The host whose /v2/ API serves this repository."""
        return DOCKER_HUB_API_HOST if self.registry == DOCKER_HUB else self.registry

    @property
    def tagged(self) -> str:
        """The key pinrepro uses for a pin: ``registry/repository:tag``, or ``registry/repository@digest`` for a
        digest-only reference (which has no tag)."""
        return f"{self.name}:{self.tag}" if self.tag else f"{self.name}@{self.digest}"

    def with_digest(self, digest: str | None) -> ImageRef:
        return replace(self, digest=digest)

    def without_digest(self) -> ImageRef:
        return replace(self, digest=None)

    def familiar(self) -> str:
        """The short form people write: ``ubuntu:22.04`` rather than ``docker.io/library/ubuntu:22.04``."""
        name = self.name
        if self.registry == DOCKER_HUB:
            name = self.repository.removeprefix("library/") if self.repository.count("/") == 1 else self.repository
        text = name
        if self.tag and not (self.implicit_tag and self.digest):
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def manifest_ref(self) -> str:
        """What goes after ``/manifests/`` in the API: the digest when known, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def short_digest(digest: str) -> str:
    """How messages and tables show a digest: its algorithm and first 12 hex digits (``sha256:0123456789ab``)."""
    algorithm, _, hex_part = digest.partition(":")
    return f"{algorithm}:{hex_part[:12]}"


def canonical_registry(host: str) -> str:
    """``docker.io`` for every Docker Hub alias (``index.docker.io``, ``registry-1.docker.io``, ...), else ``host``."""
    return DOCKER_HUB if host.strip().lower() in DOCKER_HUB_ALIASES else host


def _split_domain(text: str, original: str) -> tuple[str, str]:
    first, sep, rest = text.partition("/")
    is_domain = bool(sep) and (
        "." in first or ":" in first or first == "localhost" or first.lower() != first
    )
    if not is_domain:
        return DOCKER_HUB, text
    _check_domain(first, original)
    return canonical_registry(first), rest


def _check_domain(domain: str, original: str) -> None:
    host, port = domain, ""
    if domain.startswith("["):
        end = domain.find("]")
        host, port = domain[: end + 1], domain[end + 1 :]
        if not _IPV6.fullmatch(host):
            raise _bad(original, f"'{domain}' is not a valid registry host")
    elif ":" in domain:
        host, _, port = domain.partition(":")
        port = ":" + port
    if port and not re.fullmatch(r":[0-9]{1,5}", port):
        raise _bad(original, f"'{domain}' has an invalid port")
    if not host.startswith("["):
        labels = host.split(".")
        if not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
            raise _bad(original, f"'{domain}' is not a valid registry host")


def _bad(text: str, why: str) -> InvalidReferenceError:
    return InvalidReferenceError(
        f"invalid image reference '{text}': {why}",
        fix="write it as [registry[:port]/]repository[:tag][@sha256:digest]",
    )


def is_loopback_host(registry: str) -> bool:
    """Registries on loopback are reached over plain HTTP when HTTPS fails, as Docker does.

    Loopback is an address (127.0.0.0/8, ::1) or the name ``localhost``; never a prefix of a name: a host called
    ``127.evil.example`` resolves wherever its owner wants, and must get neither plain HTTP nor a password over it.
    """
    host = registry.strip()
    if host.startswith("["):
        end = host.find("]")
        host = host[1:end] if end > 0 else ""
    elif host.count(":") == 1:  # host:port; more colons is a bare IPv6 address
        host = host.split(":", 1)[0]
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return address in _LOOPBACK_V4
    return address == _LOOPBACK_V6


_LOOPBACK_V4 = ipaddress.IPv4Network("127.0.0.0/8")
_LOOPBACK_V6 = ipaddress.IPv6Address("::1")
