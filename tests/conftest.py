"""Shared fixtures: real loopback registries, a Docker config factory, and a home directory of our own.

pytest runs with ``-n 2 --dist loadfile``: each xdist worker gets its own session fixtures (its own
registries on its own ports), which is what we want - workers never share state.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import registry as registry_support
from tests.support.aptrepo import AptRepo, Deb
from tests.support.dockerconfig import TEST_PASSWORD, TEST_USER, DockerConfigFactory
from tests.support.markers import registry_marker_problem
from tests.support.registry import RegistryServer
from tests.support.tools import require_tool


# -- registries --------------------------------------------------------------------------------------------
def _start(tmp_path_factory: pytest.TempPathFactory, mode: str) -> Iterator[RegistryServer]:
    require_tool("docker-registry")
    require_tool("skopeo")
    server = RegistryServer(
        tmp_path_factory.mktemp(f"registry-{mode}"),
        mode,  # type: ignore[arg-type]
        users={TEST_USER: TEST_PASSWORD},
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """An anonymous registry (pull and push without credentials)."""
    yield from _start(tmp_path_factory, "anonymous")


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A Basic-auth (htpasswd) registry; user ``alice`` / ``s3cret-pw``."""
    yield from _start(tmp_path_factory, "htpasswd")


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A token-auth registry with its issuer (``token_registry.issuer``); user ``alice`` / ``s3cret-pw``;
    anonymous requests get tokens without access."""
    yield from _start(tmp_path_factory, "token")


def pytest_runtest_setup(item: pytest.Item) -> None:
    problem = registry_marker_problem(item)
    if problem is not None:
        pytest.fail(problem, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """A RegistryServer started while ``item`` runs (its setup included) fails it unless it is marked."""

    def guard() -> None:
        if item.get_closest_marker("realregistry") is None:
            pytest.fail(f"{item.nodeid} starts a RegistryServer without @pytest.mark.realregistry", pytrace=False)

    registry_support.start_guard = guard
    try:
        return (yield)
    finally:
        registry_support.start_guard = None


@pytest.fixture
def creds() -> tuple[str, str]:
    return (TEST_USER, TEST_PASSWORD)


# -- isolation from the machine's own credentials ----------------------------------------------------------
@pytest.fixture(autouse=True)
def fresh_scrubber() -> Iterator[None]:
    """Each test starts with no remembered credentials (pinrepro.scrub is process-wide)."""
    from pinrepro import scrub

    scrub.forget_all()
    yield
    scrub.forget_all()


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HOME and every credential/config location at an empty tmp dir, so no test reads (or writes)
    the real ``~/.docker/config.json`` or ``containers/auth.json``."""
    home = tmp_path_factory.mktemp("home")
    runtime = home / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("DOCKER_CONFIG", str(home / ".docker"))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(home / "containers-auth.json"))
    return home


@pytest.fixture(autouse=True)
def short_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries wait a millisecond, not the real 0.5 s doubling (pinrepro/registry/retry.py): a registry that is
    down costs tests no seconds. Subprocesses inherit it. test_transport checks the real backoff without it."""
    monkeypatch.setenv("PINREPRO_BACKOFF_S", "0.001")


# -- Docker config files and credential helpers ----------------------------------------------------------
@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_home: Path) -> DockerConfigFactory:
    return DockerConfigFactory(tmp_path / "docker-config", monkeypatch)


# -- a signed apt repository with a snapshot service ----------------------------------------------------------
@pytest.fixture(scope="session")
def apt_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AptRepo]:
    """pr-lib 1.0, pr-tool 1.0 (depends on pr-lib), pr-extra 1.0 (recommends pr-doc): published once.

    Tests that publish more must not assume the session's other tests see only this state; they read the
    timestamps ``publish()`` returns.
    """
    repo = AptRepo(tmp_path_factory.mktemp("apt-repo"))
    for deb in (Deb("pr-lib", "1.0"), Deb("pr-tool", "1.0", depends="pr-lib (>= 1.0)"),
                Deb("pr-doc", "1.0"), Deb("pr-extra", "1.0", recommends="pr-doc")):
        repo.add(deb)
    repo.first_snapshot = repo.publish()
    repo.start()
    try:
        yield repo
    finally:
        repo.stop()
