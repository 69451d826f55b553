"""The suite's own rules about markers: a test that uses one of the shared registries (tests/conftest.py) carries
``@pytest.mark.realregistry``, so ``-m "not realregistry"`` never needs Debian's docker-registry."""

from __future__ import annotations

import pytest

REGISTRY_FIXTURES = frozenset({"registry", "auth_registry", "token_registry"})


def registry_marker_problem(item: pytest.Item) -> str | None:
    """Why ``item`` needs the realregistry marker it lacks (it uses one of the shared registries), or None.

    A module may define its own fixture named ``registry`` (an in-memory fake): only tests/conftest.py's count."""
    if item.get_closest_marker("realregistry") is not None:
        return None
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs if info is not None else {}
    # The last definition of a name is the one the test gets (a module's own overrides the shared one).
    used = sorted(name for name in REGISTRY_FIXTURES
                  if any(d.func.__module__ == "tests.conftest" for d in definitions.get(name, ())[-1:]))
    if not used:
        return None
    return f"{item.nodeid} uses {', '.join(used)} (Debian's docker-registry) without @pytest.mark.realregistry"
