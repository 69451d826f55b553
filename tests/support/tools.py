"""Locating the system tools the real-component tests need (docker-registry, skopeo, umoci)."""

from __future__ import annotations

import os
import shutil

import pytest

# Debian installs these in /usr/bin; tests may prepend their own bin dirs to PATH, so look there too.
_FALLBACK_DIRS = ("/usr/bin", "/usr/local/bin")


def find_tool(name: str) -> str | None:
    """The absolute path of ``name``, or None when it is not installed."""
    found = shutil.which(name)
    if found:
        return found
    for directory in _FALLBACK_DIRS:
        candidate = os.path.join(directory, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def require_tool(name: str) -> str:
    """Return the path of ``name``; skip the test when it is missing, but fail under ``CI=true``.

    CI must run the real-component tests, so a missing tool there is a broken CI image, not a reason to skip.
    """
    path = find_tool(name)
    if path is not None:
        return path
    reason = f"'{name}' is not installed (looked on PATH and in {', '.join(_FALLBACK_DIRS)})"
    if in_ci():
        pytest.fail(f"{reason}; CI=true, so a missing tool is a failure - install it in the CI image")
    pytest.skip(reason)


def require_uv() -> None:
    """Skip a uv test when uv is missing; under ``CI=true`` fail (``pip install 'pinrepro[uv]'`` installs it)."""
    from pinrepro.errors import ResolverError
    from pinrepro.resolvers import ResolverRunner

    try:
        ResolverRunner().find_uv()
    except ResolverError:
        if in_ci():
            pytest.fail("uv is missing; CI=true, so this is a failure - pip install 'pinrepro[uv]'")
        pytest.skip("uv is not installed")
