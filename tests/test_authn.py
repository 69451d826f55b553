"""Keychains: Docker config (auths, credsStore, credHelpers with real helper scripts), podman auth.json."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from pinrepro.errors import AuthError
from pinrepro.registry.authn import AnonymousKeychain, Credential, DefaultKeychain

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "registry"


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def bindir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory at the front of PATH where tests write docker-credential-* helpers."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ.get('PATH', '')}")
    return directory


def _helper(bindir: Path, name: str, script: str) -> Path:
    """Write docker-credential-<name>; it logs each stdin to <name>.log beside it."""
    path = bindir / f"docker-credential-{name}"
    log = bindir / f"{name}.log"
    path.write_text(f"#!/bin/sh\nread -r url\necho \"$1 $url\" >> '{log}'\n{script}\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return log


def _keychain(home: Path, **env: str) -> DefaultKeychain:
    return DefaultKeychain(env=env, home=home)


def test_anonymous_keychain_has_nothing() -> None:
    assert AnonymousKeychain().resolve("ghcr.io") is None


def test_credential_repr_and_str_hide_the_secret() -> None:
    credential = Credential("bob", "hunter2-secret")
    assert "hunter2-secret" not in repr(credential)
    assert "hunter2-secret" not in str(credential)
    assert repr(credential) == "Credential(username='bob', secret='***', identity_token=False)"
    assert credential.secret == "hunter2-secret"


# -- Docker config: auths ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("registry", "expected"),
    [
        ("example.org", Credential("example", "org")),
        ("localhost", Credential("local", "host")),
        ("localhost:5000", Credential("local", "host-5000")),
        ("10.10.30.45", Credential("10.10", "30.45")),
        ("10.10.30.45:5000", Credential("10.10", "30.45-5000")),
        # legacy key "https://normalize.example.org/v1" is matched by host name
        ("normalize.example.org", Credential("normalize", "example")),
        # docker/cli looks up Docker Hub as index.docker.io (no https://index.docker.io/v1/ key here)
        ("docker.io", Credential("index", "docker.io")),
        ("registry-1.docker.io", Credential("index", "docker.io")),
        ("unknown.example.com", None),
        ("example.org:5000", None),
    ],
)
def test_docker_config_auths(home: Path, registry: str, expected: Credential | None) -> None:
    docker = home / ".docker"
    docker.mkdir()
    shutil.copy(FIXTURES / "docker-config-auths-full.json", docker / "config.json")
    assert _keychain(home).resolve(registry) == expected


def test_docker_config_env_var_and_hub_key(tmp_path: Path, home: Path) -> None:
    config_dir = tmp_path / "dockercfg"
    _write(config_dir / "config.json", {"auths": {
        "https://index.docker.io/v1/": {"auth": _auth("hubuser", "pa:ss:word")},
        "docker.io": {"auth": _auth("other", "x")},
    }})
    keychain = _keychain(home, DOCKER_CONFIG=str(config_dir))
    # split at the first ':' only
    assert keychain.resolve("docker.io") == Credential("hubuser", "pa:ss:word")
    assert keychain.resolve("index.docker.io") == Credential("hubuser", "pa:ss:word")


def test_identity_token_in_auths(home: Path) -> None:
    shutil.copy(FIXTURES / "docker-config-identitytoken.json", _write(home / ".docker" / "config.json", "{}"))
    credential = _keychain(home).resolve("example.org")
    assert credential == Credential("00000000-0000-0000-0000-000000000000", "some very long identity token",
                                    identity_token=True)


def test_empty_auth_entry_means_no_credentials(home: Path) -> None:
    _write(home / ".docker" / "config.json", {"auths": {"ghcr.io": {}}})
    assert _keychain(home).resolve("ghcr.io") is None


def test_missing_files_mean_anonymous(home: Path) -> None:
    assert _keychain(home).resolve("ghcr.io") is None


# -- malformed files --------------------------------------------------------------------------------

def test_malformed_json_names_the_file(home: Path) -> None:
    path = _write(home / ".docker" / "config.json", '{"auths": {"ghcr.io": {"auth": "c2VjcmV0OnBhc3M="}')
    with pytest.raises(AuthError) as info:
        _keychain(home).resolve("ghcr.io")
    assert str(info.value) == (f"malformed JSON in {path} (line 1, column 51) - fix the file or log in again "
                               "(`docker login` / `podman login`)")
    assert "c2VjcmV0OnBhc3M" not in str(info.value)


def test_top_level_not_an_object(home: Path) -> None:
    path = _write(home / ".docker" / "config.json", "[1, 2]")
    with pytest.raises(AuthError, match=f"malformed {path}: the top level is not a JSON object"):
        _keychain(home).resolve("ghcr.io")


def test_auth_value_without_colon(home: Path) -> None:
    path = _write(home / ".docker" / "config.json",
                  {"auths": {"ghcr.io": {"auth": base64.b64encode(b"nocolonsecret").decode()}}})
    with pytest.raises(AuthError) as info:
        _keychain(home).resolve("ghcr.io")
    assert str(info.value) == (f"malformed {path}: the 'auth' value for ghcr.io has no ':' between user and "
                               "password - log in again with `docker login ghcr.io`")
    assert "nocolonsecret" not in str(info.value)


def test_containers_auth_example_with_garbage_base64_is_an_error(home: Path) -> None:
    # The public example's values are not base64 of "user:password" (they decode to binary).
    path = home / ".config" / "containers" / "auth.json"
    path.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "containers-auth.json", path)
    with pytest.raises(AuthError, match=r"the 'auth' value for quay.io is not base64 of user:password"):
        _keychain(home).resolve("quay.io")


def test_auths_not_an_object(home: Path) -> None:
    path = _write(home / ".docker" / "config.json", {"auths": ["ghcr.io"]})
    with pytest.raises(AuthError, match=f"malformed {path}: 'auths' is not an object"):
        _keychain(home).resolve("ghcr.io")


# -- podman / skopeo --------------------------------------------------------------------------------

def test_podman_order_registry_auth_file_first(tmp_path: Path, home: Path) -> None:
    runtime = tmp_path / "run"
    auth_file = _write(tmp_path / "custom-auth.json", {"auths": {"quay.io": {"auth": _auth("fromenv", "1")}}})
    _write(runtime / "containers" / "auth.json", {"auths": {
        "quay.io": {"auth": _auth("fromruntime", "2")}, "ghcr.io": {"auth": _auth("runtimeghcr", "3")}}})
    _write(home / ".config" / "containers" / "auth.json", {"auths": {
        "ghcr.io": {"auth": _auth("fromconfig", "4")}, "nvcr.io": {"auth": _auth("$oauthtoken", "nv-key")}}})
    _write(home / ".docker" / "config.json", {"auths": {
        "nvcr.io": {"auth": _auth("docker", "5")}, "gcr.io": {"auth": _auth("dockergcr", "6")}}})
    keychain = _keychain(home, REGISTRY_AUTH_FILE=str(auth_file), XDG_RUNTIME_DIR=str(runtime))
    assert keychain.resolve("quay.io") == Credential("fromenv", "1")
    assert keychain.resolve("ghcr.io") == Credential("runtimeghcr", "3")
    assert keychain.resolve("nvcr.io") == Credential("$oauthtoken", "nv-key")
    assert keychain.resolve("gcr.io") == Credential("dockergcr", "6")
    assert keychain.config_files() == [auth_file, runtime / "containers" / "auth.json",
                                       home / ".config" / "containers" / "auth.json",
                                       home / ".docker" / "config.json"]


def test_podman_docker_hub_key_and_scoped_keys(home: Path) -> None:
    _write(home / ".config" / "containers" / "auth.json", {"auths": {
        "quay.io/org/private": {"auth": _auth("scoped", "x")},
        "docker.io": {"auth": _auth("podhub", "y")},
        "index.docker.io": {"auth": _auth("legacyhub", "z")},
    }})
    keychain = _keychain(home)
    assert keychain.resolve("docker.io") == Credential("podhub", "y")
    # repository-scoped keys are not registry-wide logins
    assert keychain.resolve("quay.io") is None


def test_xdg_config_home(tmp_path: Path, home: Path) -> None:
    _write(tmp_path / "xdg" / "containers" / "auth.json", {"auths": {"quay.io": {"auth": _auth("xdg", "1")}}})
    assert _keychain(home, XDG_CONFIG_HOME=str(tmp_path / "xdg")).resolve("quay.io") == Credential("xdg", "1")


def test_files_read_lazily_and_answers_cached(home: Path) -> None:
    path = _write(home / ".docker" / "config.json", {"auths": {"ghcr.io": {"auth": _auth("a", "1")}}})
    keychain = _keychain(home)
    path.write_text("not json at all", encoding="utf-8")  # nothing read at construction
    with pytest.raises(AuthError):
        keychain.resolve("ghcr.io")
    path.write_text(json.dumps({"auths": {"ghcr.io": {"auth": _auth("a", "1")}}}), encoding="utf-8")
    fresh = _keychain(home)
    assert fresh.resolve("ghcr.io") == Credential("a", "1")
    path.write_text(json.dumps({"auths": {"ghcr.io": {"auth": _auth("b", "2")}}}), encoding="utf-8")
    assert fresh.resolve("ghcr.io") == Credential("a", "1")


# -- credential helpers -----------------------------------------------------------------------------

def test_creds_store_helper(home: Path, bindir: Path) -> None:
    answer = (FIXTURES / "credential-helper-get-a.json").read_text(encoding="utf-8").strip()
    log = _helper(bindir, "teststore", f"echo '{answer}'")
    _write(home / ".docker" / "config.json", {"credsStore": "teststore", "auths": {"registry-a.com": {}}})
    keychain = _keychain(home)
    assert keychain.resolve("registry-a.com") == Credential("foo", "bar")
    assert keychain.resolve("registry-a.com") == Credential("foo", "bar")
    assert log.read_text(encoding="utf-8") == "get registry-a.com\n"  # cached: asked once


def test_creds_store_gets_docker_hub_legacy_url(home: Path, bindir: Path) -> None:
    log = _helper(bindir, "teststore", 'echo \'{"ServerURL":"https://index.docker.io/v1/","Username":"hub",'
                                       '"Secret":"hubpass"}\'')
    _write(home / ".docker" / "config.json", {"credsStore": "teststore"})
    assert _keychain(home).resolve("docker.io") == Credential("hub", "hubpass")
    assert log.read_text(encoding="utf-8") == "get https://index.docker.io/v1/\n"


def test_identity_token_from_helper(home: Path, bindir: Path) -> None:
    answer = (FIXTURES / "credential-helper-get-identitytoken-b.json").read_text(encoding="utf-8").strip()
    _helper(bindir, "teststore", f"echo '{answer}'")
    _write(home / ".docker" / "config.json", {"credsStore": "teststore"})
    assert _keychain(home).resolve("registry-b.com") == Credential("", "fizzbuzz", identity_token=True)


def test_cred_helpers_win_over_store_and_auths(home: Path, bindir: Path) -> None:
    helper_log = _helper(bindir, "gcrhelper", 'echo \'{"ServerURL":"gcr.io","Username":"_token","Secret":"g1"}\'')
    store_log = _helper(bindir, "teststore", 'echo \'{"ServerURL":"x","Username":"store","Secret":"s1"}\'')
    _write(home / ".docker" / "config.json", {
        "credHelpers": {"gcr.io": "gcrhelper"}, "credsStore": "teststore",
        "auths": {"gcr.io": {"auth": _auth("file", "f1")}},
    })
    keychain = _keychain(home)
    assert keychain.resolve("gcr.io") == Credential("_token", "g1")
    assert keychain.resolve("quay.io") == Credential("store", "s1")
    assert helper_log.read_text(encoding="utf-8") == "get gcr.io\n"
    assert store_log.read_text(encoding="utf-8") == "get quay.io\n"


def test_helper_not_found_falls_through_to_auths(home: Path, bindir: Path) -> None:
    _helper(bindir, "teststore", 'echo "credentials not found in native keychain"; exit 1')
    _write(home / ".docker" / "config.json", {"credsStore": "teststore",
                                             "auths": {"ghcr.io": {"auth": _auth("fileuser", "filepass")}}})
    keychain = _keychain(home)
    assert keychain.resolve("ghcr.io") == Credential("fileuser", "filepass")
    assert keychain.resolve("quay.io") is None


def test_missing_helper_is_an_error_naming_it(home: Path, bindir: Path) -> None:
    path = _write(home / ".docker" / "config.json", {"credsStore": "nosuchhelper-xyz"})
    with pytest.raises(AuthError) as info:
        _keychain(home).resolve("ghcr.io")
    assert str(info.value) == (f"credential helper docker-credential-nosuchhelper-xyz (named in {path}) is not "
                               f"installed or not on PATH - install docker-credential-nosuchhelper-xyz, or remove "
                               f"it from {path}")


def test_failing_helper_is_an_error_without_the_secret(home: Path, bindir: Path) -> None:
    _helper(bindir, "broken", 'echo "keychain is locked" >&2; exit 3')
    path = _write(home / ".docker" / "config.json", {"credHelpers": {"ghcr.io": "broken"}})
    with pytest.raises(AuthError) as info:
        _keychain(home).resolve("ghcr.io")
    assert str(info.value) == ("credential helper docker-credential-broken failed for ghcr.io (exit 3): keychain is "
                               "locked - run `echo ghcr.io | docker-credential-broken get` to debug it, or remove it "
                               f"from {path}")


def test_helper_printing_json_then_failing_hides_output(home: Path, bindir: Path) -> None:
    _helper(bindir, "leaky", 'echo \'{"Username":"u","Secret":"leaked-secret"}\'; exit 2')
    _write(home / ".docker" / "config.json", {"credHelpers": {"ghcr.io": "leaky"}})
    with pytest.raises(AuthError) as info:
        _keychain(home).resolve("ghcr.io")
    assert "leaked-secret" not in str(info.value)
    assert "leaked-secret" not in repr(info.value)
    assert "(exit 2): output withheld" in str(info.value)


def test_helper_returning_garbage(home: Path, bindir: Path) -> None:
    _helper(bindir, "garbage", "echo 'this is not json s3cr3t'")
    _write(home / ".docker" / "config.json", {"credHelpers": {"ghcr.io": "garbage"}})
    with pytest.raises(AuthError) as info:
        _keychain(home).resolve("ghcr.io")
    assert str(info.value) == ("credential helper docker-credential-garbage returned output that is not JSON for "
                               "ghcr.io - fix or reinstall docker-credential-garbage")


def test_cred_helpers_legacy_key_matched_by_host(home: Path, bindir: Path) -> None:
    log = _helper(bindir, "legacy", 'echo \'{"Username":"l","Secret":"p"}\'')
    _write(home / ".docker" / "config.json", {"credHelpers": {"https://registry.example.com": "legacy"}})
    assert _keychain(home).resolve("registry.example.com") == Credential("l", "p")
    assert log.read_text(encoding="utf-8") == "get https://registry.example.com\n"
