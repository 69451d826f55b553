"""The suite's own guards (tests/conftest.py): a test that needs Debian's docker-registry carries the realregistry
marker, so ``-m "not realregistry"`` never starts one."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.markers import registry_marker_problem
from tests.support.registry import RegistryServer


def test_a_registry_started_by_an_unmarked_test_fails_it_before_it_starts(tmp_path: Path) -> None:
    server = RegistryServer(tmp_path / "registry")
    with pytest.raises(pytest.fail.Exception, match=r"starts a RegistryServer without @pytest.mark.realregistry"):
        server.start()
    assert not server.running and server.port is None


def _item(marked: bool, *fixture_modules: str) -> Any:
    """A test whose ``registry`` fixture is defined in each of ``fixture_modules`` (the last one wins)."""
    definitions: dict[str, tuple[Any, ...]] = {"registry": ()}
    for module in fixture_modules:
        def registry() -> None:
            return None

        registry.__module__ = module
        definitions["registry"] += (SimpleNamespace(func=registry),)
    return SimpleNamespace(nodeid="tests/test_x.py::test_y", _fixtureinfo=SimpleNamespace(name2fixturedefs=definitions),
                           get_closest_marker=lambda name: object() if marked and name == "realregistry" else None)


def test_an_unmarked_test_using_the_shared_registry_is_named() -> None:
    assert registry_marker_problem(_item(False, "tests.conftest")) == (
        "tests/test_x.py::test_y uses registry (Debian's docker-registry) without @pytest.mark.realregistry")


def test_a_marked_test_or_a_module_fake_named_registry_is_fine() -> None:
    assert registry_marker_problem(_item(True, "tests.conftest")) is None
    # test_lock's in-memory fake, which overrides the shared one
    assert registry_marker_problem(_item(False, "tests.conftest", "tests.test_lock")) is None


def test_this_test_is_fine(request: pytest.FixtureRequest) -> None:
    assert registry_marker_problem(request.node) is None
