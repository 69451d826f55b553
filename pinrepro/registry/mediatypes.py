"""The media types pinrepro reads: OCI and Docker v2 manifests and indexes, and what a manifest's shape says.

OCI: https://github.com/opencontainers/image-spec/blob/main/media-types.md; Docker v2:
https://distribution.github.io/distribution/spec/manifest-v2-2/. Pure (no requests): the scan, apt and verify
modules use it without loading the HTTP stack.
"""

from __future__ import annotations

from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
# All four, always: without the list/index types a registry answers the linux/amd64 manifest and the pin is
# wrong for every other platform (dependabot-core #2962/#3060, distribution #3431).
ACCEPT_MANIFESTS = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST))
# Content-Types that say nothing about a manifest: its body decides.
GENERIC_TYPES = frozenset({"", "application/json", "text/plain", "application/octet-stream"})


def header_media_type(header: str | None) -> str:
    """A Content-Type without its parameters, lower case (``...v2+json; charset=utf-8`` -> ``...v2+json``)."""
    return (header or "").split(";", 1)[0].strip().lower()


def body_media_type(document: Any) -> str:
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

