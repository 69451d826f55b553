"""Where registry credentials come from: the user's Docker and podman/skopeo login files.

Order (containers/image ``pkg/docker/config/config.go``, https://github.com/containers/image), first file
with an answer wins:

1. ``$REGISTRY_AUTH_FILE``
2. ``$XDG_RUNTIME_DIR/containers/auth.json``
3. ``$XDG_CONFIG_HOME/containers/auth.json`` (default ``~/.config/containers/auth.json``)
4. the Docker config ``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``)

Inside every file the order is docker/cli's: ``credHelpers[host]``, then ``credsStore``, then
``auths[host]`` (``auth`` = base64 ``user:password`` split at the first ``:``, or ``identitytoken``).
A helper that answers "credentials not found" falls through to the next source, so a stale ``auths``
entry is only used when no helper knows the registry.

Keys are matched by host name, so legacy keys such as ``https://index.docker.io/v1/`` or
``https://normalize.example.org/v1`` count for their host (docker/cli ``ConvertToHostname``). Docker
Hub is known by every alias (``https://index.docker.io/v1/``, ``index.docker.io``, ``docker.io``,
``registry-1.docker.io``). podman's repository-scoped keys (``quay.io/org/repo``) are skipped: pinrepro
looks credentials up per registry.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pinrepro.errors import AuthError
from pinrepro.reference import DOCKER_HUB, DOCKER_HUB_ALIASES, DOCKER_HUB_API_HOST

# The key docker/cli stores Docker Hub credentials under, and the server URL it hands helpers.
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
_DOCKER_HUB_KEYS = (DOCKER_HUB_AUTH_KEY, "index.docker.io", DOCKER_HUB, DOCKER_HUB_API_HOST)
_PODMAN_HUB_KEYS = (DOCKER_HUB, "index.docker.io", DOCKER_HUB_AUTH_KEY, DOCKER_HUB_API_HOST)
# docker-credential-helpers: a Username of "<token>" means the Secret is an identity (refresh) token.
_IDENTITY_TOKEN_USER = "<token>"
_HELPER_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Credential:
    """A user name and a password or identity token. The secret never shows in repr or str."""

    username: str
    secret: str
    # docker credential helpers: Username "<token>" means Secret is an identity (refresh) token
    identity_token: bool = False

    def __repr__(self) -> str:
        return f"Credential(username={self.username!r}, secret='***', identity_token={self.identity_token})"

    __str__ = __repr__


class Keychain(Protocol):
    def resolve(self, registry: str) -> Credential | None: ...


class AnonymousKeychain:
    """No credentials for anyone."""

    def resolve(self, registry: str) -> Credential | None:
        return None


def host_of_key(key: str) -> str:
    """The host a login-file key stands for (docker/cli ``ConvertToHostname``): scheme and path dropped."""
    text = key.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    return text.split("/", 1)[0].lower()


def is_docker_hub(registry: str) -> bool:
    return host_of_key(registry) in DOCKER_HUB_ALIASES


class DefaultKeychain:
    """Credentials from the user's login files; files are read lazily and answers cached per registry."""

    def __init__(self, env: Mapping[str, str] | None = None, home: Path | None = None) -> None:
        self._env: Mapping[str, str] = dict(os.environ) if env is None else env
        self._home = home if home is not None else Path.home()
        self._cache: dict[str, Credential | None] = {}
        self._files: dict[Path, dict[str, Any] | None] = {}
        # Helpers are subprocesses; one lock keeps concurrent lookups from running them twice.
        self._lock = threading.Lock()

    def config_files(self) -> list[Path]:
        """The files consulted, in order (podman/skopeo's first, then Docker's)."""
        files: list[Path] = []
        if self._env.get("REGISTRY_AUTH_FILE"):
            files.append(Path(self._env["REGISTRY_AUTH_FILE"]))
        if self._env.get("XDG_RUNTIME_DIR"):
            files.append(Path(self._env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
        config_home = Path(self._env["XDG_CONFIG_HOME"]) if self._env.get("XDG_CONFIG_HOME") else self._home / ".config"
        files.append(config_home / "containers" / "auth.json")
        files.append(self.docker_config_path())
        return files

    def docker_config_path(self) -> Path:
        if self._env.get("DOCKER_CONFIG"):
            return Path(self._env["DOCKER_CONFIG"]) / "config.json"
        return self._home / ".docker" / "config.json"

    def resolve(self, registry: str) -> Credential | None:
        key = DOCKER_HUB if is_docker_hub(registry) else host_of_key(registry)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = self._lookup(key)
            return self._cache[key]

    def _lookup(self, host: str) -> Credential | None:
        for path in self.config_files():
            data = self._load(path)
            if data is None:
                continue
            podman = path != self.docker_config_path()
            found = self._from_file(path, data, host, podman)
            if found is not None:
                return found
        return None

    def _load(self, path: Path) -> dict[str, Any] | None:
        if path in self._files:
            return self._files[path]
        data: dict[str, Any] | None = None
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = None
        except (OSError, UnicodeDecodeError) as exc:
            raise AuthError(f"cannot read {path}: {type(exc).__name__}", where=str(path),
                            fix="fix the file's permissions or encoding, or remove it") from None
        if text is not None and text.strip():
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as exc:
                # Only the position, never the content: the file holds secrets.
                raise AuthError(f"malformed JSON in {path} (line {exc.lineno}, column {exc.colno})",
                                fix="fix the file or log in again (`docker login` / `podman login`)") from None
            if not isinstance(parsed, dict):
                raise AuthError(f"malformed {path}: the top level is not a JSON object",
                                fix="fix the file or log in again (`docker login` / `podman login`)")
            data = parsed
        self._files[path] = data
        return data

    def _from_file(self, path: Path, data: dict[str, Any], host: str, podman: bool) -> Credential | None:
        hub = host == DOCKER_HUB
        # Docker Hub's preferred key: docker/cli writes https://index.docker.io/v1/, podman writes docker.io.
        hub_keys = _PODMAN_HUB_KEYS if podman else _DOCKER_HUB_KEYS
        helpers = _mapping(data, "credHelpers", path)
        helper = _find_by_host(helpers, host, hub_keys if hub else ())
        if helper is not None:
            if not isinstance(helper, str) or not helper:
                raise AuthError(f"malformed {path}: credHelpers entry for {host} is not a helper name",
                                fix='write e.g. "credHelpers": {"gcr.io": "gcloud"}')
            found = run_helper(helper, _server_url(host, helpers, hub), path)
            if found is not None:
                return found
        store = data.get("credsStore")
        if store:
            if not isinstance(store, str):
                raise AuthError(f"malformed {path}: credsStore is not a helper name",
                                fix='write e.g. "credsStore": "desktop"')
            found = run_helper(store, _server_url(host, {}, hub), path)
            if found is not None:
                return found
        auths = _mapping(data, "auths", path)
        entry = _find_by_host(auths, host, hub_keys if hub else ())
        if entry is None:
            return None
        if not isinstance(entry, dict):
            raise AuthError(f"malformed {path}: auths entry for {host} is not an object", fix="log in again")
        return _decode_entry(entry, path, host)


def _mapping(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise AuthError(f"malformed {path}: '{key}' is not an object", fix="fix the file or log in again")
    return value


def _find_by_host(entries: dict[str, Any], host: str, hub_keys: tuple[str, ...]) -> Any:
    """The entry for ``host``: an exact key first, then legacy keys (scheme/path) matched by host name."""
    hub = bool(hub_keys)
    for exact in hub_keys:
        if exact in entries:
            return entries[exact]
    if not hub and host in entries:
        return entries[host]
    for key, value in entries.items():
        if "://" not in key and "/" in key:
            # podman's repository-scoped key (quay.io/org/repo): not a registry-wide login.
            continue
        key_host = host_of_key(key)
        if (hub and key_host in DOCKER_HUB_ALIASES) or key_host == host:
            return value
    return None


def _server_url(host: str, helpers: dict[str, Any], hub: bool) -> str:
    """What docker/cli writes on a helper's stdin: the Hub's legacy URL, else the registry host."""
    if hub:
        return DOCKER_HUB_AUTH_KEY
    for key in helpers:
        if host_of_key(key) == host:
            return key
    return host


def _decode_entry(entry: dict[str, Any], path: Path, host: str) -> Credential | None:
    username, password = "", ""
    auth = entry.get("auth")
    if auth:
        try:
            decoded = base64.b64decode(str(auth), validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise AuthError(f"malformed {path}: the 'auth' value for {host} is not base64 of user:password",
                            fix=f"log in again with `docker login {host}`") from None
        if ":" not in decoded:
            raise AuthError(f"malformed {path}: the 'auth' value for {host} has no ':' between user and password",
                            fix=f"log in again with `docker login {host}`")
        # Split at the first ':' only: passwords and tokens may contain ':'.
        username, password = decoded.split(":", 1)
    token = entry.get("identitytoken")
    if token:
        return Credential(username=username, secret=str(token), identity_token=True)
    if username or password:
        return Credential(username=username, secret=password)
    return None


def run_helper(name: str, server_url: str, config: Path) -> Credential | None:
    """Ask ``docker-credential-<name> get`` for ``server_url``; None when it has nothing for it."""
    program = f"docker-credential-{name}"
    try:
        done = subprocess.run([program, "get"], input=server_url, capture_output=True, text=True,
                              timeout=_HELPER_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise AuthError(f"credential helper {program} (named in {config}) is not installed or not on PATH",
                        fix=f"install {program}, or remove it from {config}") from None
    except subprocess.TimeoutExpired:
        raise AuthError(f"credential helper {program} did not answer within {_HELPER_TIMEOUT_S:.0f}s "
                        f"for {server_url}", fix=f"unlock the keychain {program} uses, or remove it from {config}"
                        ) from None
    except OSError as exc:
        raise AuthError(f"cannot run credential helper {program}: {exc.strerror or type(exc).__name__}",
                        fix=f"fix or reinstall {program}, or remove it from {config}") from None
    if done.returncode != 0:
        said = (done.stdout + "\n" + done.stderr).strip()
        # docker-credential-helpers' errCredentialsNotFound message: "credentials not found in native keychain".
        if "credentials not found" in said.lower():
            return None
        first = said.splitlines()[0][:200] if said else "no output"
        if first.startswith("{"):
            first = "output withheld"  # JSON on failure might carry a secret
        raise AuthError(f"credential helper {program} failed for {server_url} (exit {done.returncode}): {first}",
                        fix=f"run `echo {server_url} | {program} get` to debug it, or remove it from {config}")
    try:
        answer = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise AuthError(f"credential helper {program} returned output that is not JSON for {server_url}",
                        fix=f"fix or reinstall {program}") from None
    if not isinstance(answer, dict):
        raise AuthError(f"credential helper {program} returned unexpected JSON for {server_url}",
                        fix=f"fix or reinstall {program}")
    username = str(answer.get("Username") or "")
    secret = str(answer.get("Secret") or "")
    if not username and not secret:
        return None
    if username == _IDENTITY_TOKEN_USER:
        return Credential(username="", secret=secret, identity_token=True)
    return Credential(username=username, secret=secret)
