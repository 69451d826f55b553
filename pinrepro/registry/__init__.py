"""Talking to container registries over the OCI distribution API (no Docker daemon)."""

from __future__ import annotations

from pinrepro.registry.authn import AnonymousKeychain, Credential, DefaultKeychain, Keychain
from pinrepro.registry.client import (
    ACCEPT_MANIFESTS,
    Descriptor,
    ImageDescription,
    PlatformManifest,
    RegistryClient,
)
from pinrepro.registry.platform import match_platform, platform_key
from pinrepro.registry.transport import Transport

__all__ = [
    "ACCEPT_MANIFESTS",
    "AnonymousKeychain",
    "Credential",
    "DefaultKeychain",
    "Descriptor",
    "ImageDescription",
    "Keychain",
    "PlatformManifest",
    "RegistryClient",
    "Transport",
    "match_platform",
    "platform_key",
]
