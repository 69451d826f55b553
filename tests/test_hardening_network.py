"""Hostile and broken registries (issue #14 items 2, 3, 8, 9, 10, 12, 13), each case through the CLI.

The registry is tests/support/hostile.py on loopback; pinrepro runs as a subprocess with a hard timeout, so a
regression that hangs fails the test instead of hanging CI. Backoff is shortened with PINREPRO_BACKOFF_S.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pinrepro.cli import cli
from tests.support.dockerconfig import DockerConfigFactory
from tests.support.hostile import (
    HostileServer,
    bad_chunking,
    drip,
    echo_auth,
    huge,
    json_answer,
    redirect,
    reset,
    self_signed,
    short_body,
    stall,
)
from tests.support.waiting import wait_until

PASSWORD = "hunter2-Very-Secret"
USER = "robot"


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as hostile:
        yield hostile


def project(tmp_path: Path, image: str) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "Dockerfile").write_text(f"FROM {image}\n")
    return root


def run(root: Path, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PINREPRO_BACKOFF_S": "0.01", "PINREPRO_HTTP_DEADLINE": "2", **env}
    return subprocess.run([sys.executable, "-m", "pinrepro", *(args or ("lock",)), "-C", str(root)],
                          capture_output=True, text=True, timeout=timeout, env=full, stdin=subprocess.DEVNULL,
                          check=False)


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single error line; also checks the promise: exit 2, one line, no internal error, files unchanged."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "internal error" not in lines[0] and "Traceback" not in result.stderr
    return lines[0]


def unchanged(root: Path, image: str) -> None:
    assert (root / "Dockerfile").read_text() == f"FROM {image}\n"
    assert sorted(p.name for p in root.iterdir()) == ["Dockerfile"]


# -- item 8: total deadline --------------------------------------------------------------------------------------

@pytest.mark.parametrize("behaviour", [drip(0.2), drip(0.2, in_headers=True), stall],
                         ids=["drip-body", "drip-headers", "stall"])
def test_slow_server_ends_within_the_deadline(tmp_path: Path, server: HostileServer, behaviour: Any) -> None:
    server.on("/v2/", json_answer(200, {})).on("/v2/app/manifests/*", behaviour)
    image = f"{server.host}/app:1"
    root = project(tmp_path, image)
    line = one_error(run(root))
    assert f"{server.host} did not send a complete answer within 2s" in line
    assert "PINREPRO_HTTP_DEADLINE" in line
    unchanged(root, image)


def test_stalled_ping_ends_within_the_deadline(tmp_path: Path, server: HostileServer) -> None:
    server.on("/v2/", stall)
    root = project(tmp_path, f"{server.host}/app:1")
    assert "did not send a complete answer within 2s" in one_error(run(root))


def test_bad_timeout_setting_is_one_line(tmp_path: Path, server: HostileServer) -> None:
    server.on("/v2/", json_answer(200, {}))
    root = project(tmp_path, f"{server.host}/app:1")
    line = one_error(run(root, PINREPRO_HTTP_DEADLINE="soon"))
    assert "PINREPRO_HTTP_DEADLINE='soon' is not a positive number" in line


# -- item 9: Ctrl-C --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("behaviour", [drip(0.2), stall], ids=["drip", "stall"])
def test_ctrl_c_while_a_response_drips_exits_130_at_once(tmp_path: Path, server: HostileServer,
                                                         behaviour: Any) -> None:
    server.on("/v2/", json_answer(200, {})).on("/v2/app/manifests/*", behaviour)
    image = f"{server.host}/app:1"
    root = project(tmp_path, image)
    env = {**os.environ, "PINREPRO_HTTP_DEADLINE": "600"}
    process = subprocess.Popen([sys.executable, "-m", "pinrepro", "lock", "-C", str(root)], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: any("manifests" in s.path for s in server.seen), 30)
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)  # bounded: a regression fails here instead of hanging
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert "interrupted; no file was changed" in stderr
    # Measured, not asserted tightly (no timing assertions): printed for the record with -s.
    print(f"exit {time.monotonic() - sent:.2f}s after SIGINT")
    unchanged(root, image)


# -- item 10: caps ----------------------------------------------------------------------------------------------

def test_huge_ping_answer_is_refused_not_buffered(tmp_path: Path, server: HostileServer) -> None:
    server.on("/v2/", huge(384 << 20))
    root = project(tmp_path, f"{server.host}/app:1")
    line = one_error(run(root))
    assert "sent an answer larger than" in line and "PINREPRO_MAX_BODY" in line
    assert server.sent_bytes < 384 << 20


def test_huge_token_answer_is_refused(tmp_path: Path, server: HostileServer) -> None:
    realm = f"http://{server.host}/token"
    server.on("/v2/", json_answer(401, {}, {"WWW-Authenticate": f'Bearer realm="{realm}",service="x"'}))
    server.on("/token", huge(64 << 20))
    line = one_error(run(project(tmp_path, f"{server.host}/app:1"), PINREPRO_MAX_BODY=str(1 << 20)))
    assert "sent an answer larger than 1048576 bytes" in line


def test_huge_error_body_is_cut_and_the_error_still_named(tmp_path: Path, server: HostileServer) -> None:
    server.on("/v2/", json_answer(200, {})).on("/v2/app/manifests/*", huge(256 << 20, status=500))
    line = one_error(run(project(tmp_path, f"{server.host}/app:1")))
    assert "500" in line
    assert server.sent_bytes < 256 << 20


def test_deeply_nested_json_manifest_is_one_line(tmp_path: Path, server: HostileServer) -> None:
    server.on("/v2/", json_answer(200, {}))
    server.on("/v2/app/manifests/*", json_answer(200, raw=b"[" * 200_000 + b"]" * 200_000,
                                                 headers={"Content-Type": "application/vnd.oci.image.index.v1+json"}))
    line = one_error(run(project(tmp_path, f"{server.host}/app:1")))
    assert "app" in line


def test_deeply_nested_json_token_is_one_line(tmp_path: Path, server: HostileServer) -> None:
    realm = f"http://{server.host}/token"
    server.on("/v2/", json_answer(401, {}, {"WWW-Authenticate": f'Bearer realm="{realm}"'}))
    server.on("/token", json_answer(200, raw=b'{"token":' * 100_000))
    assert "answered without a token" in one_error(run(project(tmp_path, f"{server.host}/app:1")))


def test_one_megabyte_reference_prints_a_short_line(tmp_path: Path) -> None:
    root = project(tmp_path, "ubuntu:" + "x" * (1 << 20))
    line = one_error(run(root, "verify"))
    assert len(line) < 1000 and "characters cut" in line


# -- item 12: broken framing and bad values ----------------------------------------------------------------------

@pytest.mark.parametrize("behaviour", [bad_chunking, short_body], ids=["bad-chunking", "short-body"])
def test_broken_body_is_one_line(tmp_path: Path, server: HostileServer, behaviour: Any) -> None:
    server.on("/v2/", json_answer(200, {})).on("/v2/app/manifests/*", behaviour)
    line = one_error(run(project(tmp_path, f"{server.host}/app:1")))
    assert "broke off" in line
    assert f"the answer from {server.host} broke off (bad chunked encoding, or shorter than its Content-Length)" in line


@pytest.mark.parametrize("behaviour", [bad_chunking, short_body], ids=["bad-chunking", "short-body"])
def test_broken_token_answer_is_one_line(tmp_path: Path, server: HostileServer, behaviour: Any) -> None:
    realm = f"http://{server.host}/token"
    server.on("/v2/", json_answer(401, {}, {"WWW-Authenticate": f'Bearer realm="{realm}"'}))
    server.on("/token", behaviour)
    line = one_error(run(project(tmp_path, f"{server.host}/app:1")))
    assert "broke off" in line
    assert f"the answer from {server.host} broke off (bad chunked encoding, or shorter than its Content-Length)" in line


def test_reset_connection_is_one_line(tmp_path: Path, server: HostileServer) -> None:
    server.on("/v2/", json_answer(200, {})).on("/v2/app/manifests/*", reset)
    line = one_error(run(project(tmp_path, f"{server.host}/app:1")))
    assert server.host in line


def test_non_ascii_token_is_one_line(tmp_path: Path, server: HostileServer) -> None:
    realm = f"http://{server.host}/token"
    server.on("/v2/", json_answer(401, {}, {"WWW-Authenticate": f'Bearer realm="{realm}"'}))
    server.on("/token", json_answer(200, {"token": "tökén\r\nX-Injected: 1"}))
    line = one_error(run(project(tmp_path, f"{server.host}/app:1")))
    assert "characters an HTTP header cannot carry" in line


@pytest.mark.parametrize("realm", ["http://[::1/token", "http://[zz::1]:x/token"])
def test_invalid_ipv6_realm_is_one_line(tmp_path: Path, server: HostileServer, realm: str) -> None:
    server.on("/v2/", json_answer(401, {}, {"WWW-Authenticate": f'Bearer realm="{realm}"'}))
    assert "not an http(s) URL" in one_error(run(project(tmp_path, f"{server.host}/app:1")))


# -- item 13: the right cause -------------------------------------------------------------------------------------

def test_500_on_ping_is_named_not_a_tls_error(tmp_path: Path, server: HostileServer) -> None:
    server.on("/v2/", json_answer(500, {"errors": [{"code": "UNKNOWN", "message": "db down"}]}))
    line = one_error(run(project(tmp_path, f"{server.host}/app:1")))
    assert "500" in line and "TLS" not in line and "db down" in line


@pytest.mark.parametrize(("location", "words"), [
    ("file:///etc/passwd", "'file:///etc/passwd', which pinrepro cannot follow: 'file:' is not http or https"),
    ("http://[::1/blob", "which pinrepro cannot follow: the URL does not parse"),
    ("gopher://example.invalid/x", "'gopher:' is not http or https"),
])
def test_redirect_to_something_not_http_names_the_url(tmp_path: Path, server: HostileServer, location: str,
                                                      words: str) -> None:
    server.on("/v2/", json_answer(200, {})).on("/v2/app/manifests/*", redirect(location))
    line = one_error(run(project(tmp_path, f"{server.host}/app:1")))
    assert words in line
    assert "passwd:" not in line  # nothing of the file was read


# -- item 3: secrets in server-provided error text ---------------------------------------------------------------

def test_registry_echoing_basic_credentials_in_its_error_is_scrubbed(tmp_path: Path, server: HostileServer,
                                                                    docker_config: DockerConfigFactory) -> None:
    server.on("/v2/", json_answer(401, {}, {"WWW-Authenticate": 'Basic realm="r"'}))
    server.on("/v2/app/manifests/*", echo_auth(400, "DENIED"))
    docker_config(auths={server.host: (USER, PASSWORD)})
    result = run(project(tmp_path, f"{server.host}/app:1"))
    line = one_error(result)
    assert "DENIED" in line  # the server's words are kept ...
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, basic, basic[4:20]):  # ... its echo of the credential is not
        assert secret not in result.stderr and secret not in result.stdout
    assert any(s.headers.get("Authorization") == f"Basic {basic}" for s in server.seen)


def test_token_service_echoing_password_url_encoded_is_scrubbed(tmp_path: Path, server: HostileServer,
                                                               docker_config: DockerConfigFactory) -> None:
    secret = "p@ss/w0rd+with&stuff"
    realm = f"http://{server.host}/token"
    server.on("/v2/", json_answer(401, {}, {"WWW-Authenticate": f'Bearer realm="{realm}"'}))
    from urllib.parse import quote, quote_plus
    message = f"bad password {quote(secret, safe='')} or {quote_plus(secret)} or {secret}"
    server.on("/token", json_answer(500, {"errors": [{"code": "UNAUTHORIZED", "message": message}]}))
    docker_config(auths={server.host: (USER, secret)})
    result = run(project(tmp_path, f"{server.host}/app:1"))
    line = one_error(result)
    assert "UNAUTHORIZED" in line
    for form in (secret, quote(secret, safe=""), quote_plus(secret)):
        assert form not in result.stderr


# -- item 2: plain HTTP realms and redirects from an HTTPS registry -------------------------------------------------

@pytest.fixture
def tls_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HostileServer, str]]:
    """An HTTPS registry on a non-loopback name (registry.test resolves to 127.0.0.1 in this process)."""
    cert, key = self_signed(tmp_path, "registry.test")
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.1" if host == "registry.test" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    monkeypatch.setenv("PINREPRO_BACKOFF_S", "0.01")
    with HostileServer(tls=(cert, key)) as hostile:
        yield hostile, f"registry.test:{hostile.port}"


def _invoke(root: Path) -> Any:
    return CliRunner().invoke(cli, ["lock", "-C", str(root)], catch_exceptions=False)


def test_https_registry_with_plain_http_realm_gets_no_credentials(
        tmp_path: Path, tls_registry: tuple[HostileServer, str], docker_config: DockerConfigFactory) -> None:
    hostile, host = tls_registry
    with HostileServer() as plain:
        plain.on("/token", json_answer(200, {"token": "t0ken-value"}))
        realm = f"http://not-loopback.test:{plain.port}/token"
        hostile.on("/v2/", json_answer(401, {}, {"WWW-Authenticate": f'Bearer realm="{realm}",service="s"'}))
        docker_config(auths={host: (USER, PASSWORD)})
        root = project(tmp_path, f"{host}/app:1")
        result = _invoke(root)
        assert result.exit_code == 2
        assert "plain-HTTP" in result.stderr and "clear text" in result.stderr
        assert plain.seen == []
        assert PASSWORD not in result.stderr


def test_https_registry_redirecting_a_manifest_to_plain_http_is_refused(
        tmp_path: Path, tls_registry: tuple[HostileServer, str], docker_config: DockerConfigFactory) -> None:
    hostile, host = tls_registry
    with HostileServer() as plain:
        plain.on("/*", json_answer(200, {}))
        hostile.on("/v2/", json_answer(200, {}))
        hostile.on("/v2/app/manifests/*", redirect(f"http://{plain.host}/stolen"))
        root = project(tmp_path, f"{host}/app:1")
        result = _invoke(root)
        assert result.exit_code == 2
        assert "from https to plain-HTTP" in result.stderr
        assert plain.seen == []


def test_deadline_holds_through_an_http_proxy(tmp_path: Path, server: HostileServer) -> None:
    registry = "registry.invalid:5000"
    server.on(f"http://{registry}/v2/", json_answer(200, {}))
    server.on(f"http://{registry}/v2/app/manifests/*", drip(0.2))
    root = project(tmp_path, f"{registry}/app:1")
    (root / "pinrepro.toml").write_text(f'insecure_registries = ["{registry}"]\n')
    proxy = f"http://{server.host}"
    result = run(root, HTTP_PROXY=proxy, HTTPS_PROXY=proxy, http_proxy=proxy, https_proxy=proxy, NO_PROXY="",
                 no_proxy="")
    line = one_error(result)
    assert f"{registry} did not send a complete answer within 2s" in line
    assert any(s.path.startswith(f"http://{registry}/v2/app/manifests/") for s in server.seen)


# -- cases the list missed ----------------------------------------------------------------------------------

def test_gzip_bomb_token_answer_is_capped_after_decompression(tmp_path: Path, server: HostileServer) -> None:
    import gzip

    bomb = gzip.compress(b" " * (256 << 20), compresslevel=9)  # ~250 KiB on the wire, 256 MiB inflated
    realm = f"http://{server.host}/token"
    server.on("/v2/", json_answer(401, {}, {"WWW-Authenticate": f'Bearer realm="{realm}"'}))
    server.on("/token", json_answer(200, raw=bomb, headers={"Content-Encoding": "gzip"}))
    line = one_error(run(project(tmp_path, f"{server.host}/app:1"), PINREPRO_MAX_BODY=str(1 << 20)))
    assert "sent an answer larger than 1048576 bytes" in line


def test_huge_retry_after_does_not_make_pinrepro_wait(tmp_path: Path, server: HostileServer) -> None:
    server.on("/v2/", json_answer(200, {}))
    server.on("/v2/app/manifests/*", json_answer(503, {"errors": [{"code": "UNAVAILABLE", "message": "later"}]},
                                                 {"Retry-After": "999999999"}))
    line = one_error(run(project(tmp_path, f"{server.host}/app:1"), timeout=30))
    assert "503" in line and "Retry-After" not in line.split(" - ")[1]


def test_terminal_escapes_in_server_text_are_not_printed_raw(tmp_path: Path, server: HostileServer) -> None:
    server.on("/v2/", json_answer(200, {}))
    server.on("/v2/app/manifests/*", json_answer(400, {"errors": [
        {"code": "DENIED", "message": "\x1b]0;pwned\x07\x1b[2J\rerror: all fine\nsecond line"}]}))
    result = run(project(tmp_path, f"{server.host}/app:1"))
    line = one_error(result)
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "DENIED" in line


def test_add_url_download_that_drips_ends_within_the_deadline(tmp_path: Path, server: HostileServer) -> None:
    """ADD <url> downloads (for --checksum) get the same total deadline, and a cut body is never pinned."""
    server.on("/file.tar.gz", drip(0.2))
    root = tmp_path / "project"
    root.mkdir()
    text = f"# syntax=docker/dockerfile:1.7\nFROM scratch\nADD http://{server.host}/file.tar.gz /x\n"
    (root / "Dockerfile").write_text(text)
    line = one_error(run(root, PINREPRO_BLOB_DEADLINE="2"))
    assert "not complete within 2s" in line and "PINREPRO_BLOB_DEADLINE" in line
    assert (root / "Dockerfile").read_text() == text
    assert sorted(p.name for p in root.iterdir()) == ["Dockerfile"]
