"""Docker config files and credential helpers for tests: ``$DOCKER_CONFIG/config.json`` written in a tmp dir, and
``docker-credential-<name>`` scripts that answer from a store of the test's own (protocol:
https://github.com/docker/docker-credential-helpers)."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# The user of the shared htpasswd and token registries (tests/conftest.py).
TEST_USER = "alice"
TEST_PASSWORD = "s3cret-pw"

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
