"""Debian's ``docker-registry`` (CNCF distribution 2.8) run as a subprocess on 127.0.0.1.

Three modes: ``anonymous``; ``htpasswd`` (Basic auth; distribution only accepts bcrypt hashes in the file);
``token`` (bearer tokens from :class:`~tests.support.token_issuer.TokenIssuer`, started alongside).
Storage lives in the server's own directory, deletes are enabled, logs go to ``registry.log`` there.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from tests.support.token_issuer import TokenIssuer
from tests.support.tools import require_tool
from tests.support.waiting import wait_until

Mode = Literal["anonymous", "htpasswd", "token"]

_READY_DEADLINE_S = 30.0
_START_ATTEMPTS = 5


# Called before a registry starts; tests/conftest.py sets it per test to fail one without the realregistry
# marker (a test selected by ``-m "not realregistry"`` must never need Debian's docker-registry).
start_guard: Callable[[], None] | None = None


class RegistryStartError(RuntimeError):
    """The registry process did not come up; the message carries the tail of its log."""


def hash_password(password: str) -> str:
    """A bcrypt hash for an htpasswd file (distribution rejects every other htpasswd hash format).

    Python's ``crypt`` (libxcrypt) makes ``$2b$`` hashes where it exists (until 3.12); the ``bcrypt`` package
    is the fallback on newer Pythons. Cost 5 keeps the per-request check cheap; this is test data.
    """
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt

        hashed = crypt.crypt(password, "$2b$05$" + "pinreproTestSaltValue.")
        if hashed and hashed.startswith("$2b$"):
            return hashed
    except ImportError:
        pass
    try:
        import bcrypt  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:  # pragma: no cover - depends on the Python build
        raise RuntimeError("no bcrypt implementation: install the 'bcrypt' package for htpasswd tests") from exc
    return str(bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode("ascii"))


def free_port() -> int:
    """A port the kernel just handed out (bind to 0, read, close); the caller retries if it gets taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RegistryServer:
    """A running ``docker-registry serve``; use as a context manager or call start()/stop()."""

    def __init__(
        self,
        workdir: Path,
        mode: Mode = "anonymous",
        *,
        users: dict[str, str] | None = None,
        anonymous_pull: bool = False,
    ) -> None:
        if mode not in ("anonymous", "htpasswd", "token"):
            raise ValueError(f"unknown registry mode {mode!r}")
        self.workdir = Path(workdir)
        self.mode: Mode = mode
        self.users = dict(users or {})
        self.anonymous_pull = anonymous_pull
        self.issuer: TokenIssuer | None = None
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # -- addresses ---------------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` - the registry part of an image reference."""
        if self.port is None:
            raise RuntimeError("registry is not running")
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "registry.log"

    def ref(self, repository: str, tag: str) -> str:
        return f"{self.host}/{repository}:{tag}"

    @property
    def pid(self) -> int | None:
        """The registry process's id while it runs (benches read its CPU clock)."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> RegistryServer:
        if self.running:
            return self
        if start_guard is not None:
            start_guard()
        binary = require_tool("docker-registry")
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.mode == "token" and self.issuer is None:
            self.issuer = TokenIssuer(users=self.users, anonymous_pull=self.anonymous_pull).start()
        last_error = ""
        for _attempt in range(_START_ATTEMPTS):
            port = free_port()
            config = self._write_config(port)
            with self.log_path.open("ab") as log:
                process = subprocess.Popen(
                    [binary, "serve", str(config)],
                    cwd=self.workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=_registry_env(),
                )
            if _wait_ready(process, port):
                self._process = process
                self.port = port
                return self
            _stop_process(process)
            last_error = self._log_tail()
            if "address already in use" not in last_error:
                break  # Something other than a lost port race: retrying will not help.
        if self.issuer is not None:
            self.issuer.stop()
            self.issuer = None
        raise RegistryStartError(f"docker-registry did not start ({self.mode}); log tail:\n{last_error}")

    def stop(self) -> None:
        if self._process is not None:
            _stop_process(self._process)
            self._process = None
        if self.issuer is not None:
            self.issuer.stop()
            self.issuer = None

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers -----------------------------------------------------------------------------------------
    def _write_config(self, port: int) -> Path:
        storage = self.workdir / "storage"
        storage.mkdir(exist_ok=True)
        config: dict[str, Any] = {
            "version": "0.1",
            "log": {"level": "error", "formatter": "text", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(storage)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            # A fixed secret silences the "no secret configured" warning; it only signs upload state.
            "http": {"addr": f"127.0.0.1:{port}", "secret": "pinrepro-test-secret"},
            "health": {"storagedriver": {"enabled": False}},
        }
        if self.mode == "htpasswd":
            htpasswd = self.workdir / "htpasswd"
            htpasswd.write_text("".join(f"{user}:{hash_password(pw)}\n" for user, pw in self.users.items()))
            config["auth"] = {"htpasswd": {"realm": "pinrepro-test", "path": str(htpasswd)}}
        elif self.mode == "token":
            assert self.issuer is not None
            bundle = self.issuer.write_cert(self.workdir / "token-root.pem")
            config["auth"] = {
                "token": {
                    "realm": self.issuer.realm,
                    "service": self.issuer.service,
                    "issuer": self.issuer.issuer,
                    "rootcertbundle": str(bundle),
                    "autoredirect": False,
                }
            }
        # JSON is YAML, and avoids a YAML dependency.
        path = self.workdir / "config.yml"
        path.write_text(json.dumps(config, indent=2))
        return path

    def _log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return "(no log)"


def _registry_env() -> dict[str, str]:
    # distribution reads REGISTRY_<SECTION>_<KEY> as config overrides; REGISTRY_AUTH_FILE (podman's auth file,
    # which tests set) would turn into an unknown auth type. Keep none of them.
    return {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}


def _wait_ready(process: subprocess.Popen[bytes], port: int) -> bool:
    """Poll ``/v2/`` until any HTTP answer (200 or 401) comes back, the process dies, or the deadline passes."""
    url = f"http://127.0.0.1:{port}/v2/"

    def answers() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # 401 in the auth modes: the server is up.
        except OSError:
            return False

    # Stops at an answer or at the process's exit; only the first is ready (no second request to tell them apart).
    return wait_until(lambda: process.poll() is not None or answers(), _READY_DEADLINE_S, interval=0.05) \
        and process.poll() is None


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
