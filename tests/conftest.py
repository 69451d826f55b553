"""Shared fixtures: real loopback registries, a Docker config factory, and a home directory of our own.

pytest runs with ``-n 2 --dist loadfile``: each xdist worker gets its own session fixtures (its own
registries on its own ports), which is what we want - workers never share state.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import registry as registry_support
from tests.support.aptrepo import AptRepo, Deb
from tests.support.registry import RegistryServer
from tests.support.tools import require_tool

TEST_USER = "alice"
TEST_PASSWORD = "s3cret-pw"


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


REGISTRY_FIXTURES = frozenset({"registry", "auth_registry", "token_registry"})


def registry_marker_problem(item: pytest.Item) -> str | None:
    """Why ``item`` needs the realregistry marker it lacks (it uses one of the registries above), or None.

    A module may define its own fixture named ``registry`` (an in-memory fake): only this file's count."""
    if item.get_closest_marker("realregistry") is not None:
        return None
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs if info is not None else {}
    # The last definition of a name is the one the test gets (a module's own overrides this file's).
    used = sorted(name for name in REGISTRY_FIXTURES
                  if any(d.func.__module__ == __name__ for d in definitions.get(name, ())[-1:]))
    if not used:
        return None
    return f"{item.nodeid} uses {', '.join(used)} (Debian's docker-registry) without @pytest.mark.realregistry"


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
_HELPER_SCRIPT = """\
#!{python}
# docker-credential-{name}: a credential helper for tests (protocol: docker/docker-credential-helpers).
import json, sys
store = json.load(open({store!r}))
verb = sys.argv[1] if len(sys.argv) > 1 else ""
server = sys.stdin.read().strip()
with open({log!r}, "a") as log:
    log.write("{name} " + verb + " " + server + "\\n")
if verb != "get":
    sys.stderr.write("unsupported verb " + verb + "\\n")
    sys.exit(1)
host = server.split("://", 1)[-1].split("/", 1)[0]
entry = store.get(server) or store.get(host)
if entry is None:
    sys.stdout.write("credentials not found in native keychain\\n")
    sys.exit(1)
json.dump({{"ServerURL": server, "Username": entry[0], "Secret": entry[1]}}, sys.stdout)
"""


@dataclass
class DockerConfigFactory:
    """Writes ``$DOCKER_CONFIG/config.json`` (and credential helper scripts) in a tmp dir and points the
    environment at it. Call it once per test; ``helper_calls()`` lists the helper invocations."""

    root: Path
    monkeypatch: pytest.MonkeyPatch
    bin_dir: Path = field(init=False)
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.bin_dir = self.root / "bin"
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.root / "helper-calls.log"
        self.log_path.touch()

    def __call__(
        self,
        *,
        auths: Mapping[str, tuple[str, str]] | None = None,
        cred_helpers: Mapping[str, str] | None = None,
        helper_store: Mapping[str, tuple[str, str]] | None = None,
        creds_store: str | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> Path:
        """``auths``: server -> (user, password), written base64 as Docker does. ``cred_helpers``: server ->
        helper name; every named helper (and ``creds_store``) gets a ``docker-credential-<name>`` script
        that answers from ``helper_store`` (server URL or host -> (user, secret)). Returns the config dir."""
        import base64

        config: dict[str, object] = {}
        if auths:
            config["auths"] = {
                server: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
                for server, (user, password) in auths.items()
            }
        if cred_helpers:
            config["credHelpers"] = dict(cred_helpers)
        if creds_store:
            config["credsStore"] = creds_store
        config.update(extra or {})
        helpers = set((cred_helpers or {}).values()) | ({creds_store} if creds_store else set())
        store_path = self.root / "helper-store.json"
        store_path.write_text(json.dumps({k: list(v) for k, v in (helper_store or {}).items()}))
        for name in helpers:
            script = self.bin_dir / f"docker-credential-{name}"
            script.write_text(
                _HELPER_SCRIPT.format(python=sys.executable, name=name, store=str(store_path), log=str(self.log_path))
            )
            script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        config_dir = self.root / "docker"
        config_dir.mkdir(exist_ok=True)
        (config_dir / "config.json").write_text(json.dumps(config, indent=2))
        self.monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
        if helpers:
            self.monkeypatch.setenv("PATH", f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
        return config_dir

    def helper_calls(self) -> list[str]:
        """``"<helper> <verb> <server>"`` per invocation, in order."""
        return self.log_path.read_text().splitlines()


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
