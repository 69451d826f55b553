"""Talking to container registries over the OCI distribution API (no Docker daemon)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pinrepro.registry.authn import AnonymousKeychain, Credential, DefaultKeychain, Keychain
    from pinrepro.registry.client import Descriptor, ImageDescription, PlatformManifest, RegistryClient
    from pinrepro.registry.mediatypes import ACCEPT_MANIFESTS
    from pinrepro.registry.platform import match_platform, platform_key
    from pinrepro.registry.transport import Transport

# Loaded on first use: importing pinrepro.registry.platform (pure) must not import requests, so commands that
# make no request start fast (issue #15).
_WHERE = {
    "AnonymousKeychain": "authn", "Credential": "authn", "DefaultKeychain": "authn", "Keychain": "authn",
    "ACCEPT_MANIFESTS": "mediatypes", "Descriptor": "client", "ImageDescription": "client",
    "PlatformManifest": "client", "RegistryClient": "client",
    "match_platform": "platform", "platform_key": "platform", "Transport": "transport",
}

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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
