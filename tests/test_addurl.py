"""``ADD <url>`` pinned by checksum, against a loopback HTTP server (pinrepro.addurl through the CLI).

Git sources (``repo.git#ref``) are left to pinrepro.addgit (tests/test_addgit.py).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pinrepro import lockfile
from pinrepro.addurl import find_adds, pin_text, syntax_supports_checksum
from pinrepro.dockerfile import parse
from tests.support.cliproject import run


class FileServer:
    """Serves ``files`` (path -> bytes) on loopback; tests change them to simulate an upstream release."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 10
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def server() -> Iterator[FileServer]:
    with FileServer() as running:
        yield running


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def project(tmp_path: Path, dockerfile: str, config: str = "") -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "Dockerfile").write_bytes(dockerfile.encode())
    if config:
        (root / "pinrepro.toml").write_text(config)
    return root


def test_add_url_pinned_verified_and_upgraded(tmp_path: Path, server: FileServer) -> None:
    server.files["/tool-1.0.tar.gz"] = b"release one"
    url = f"{server.url}/tool-1.0.tar.gz"
    text = f"# syntax=docker/dockerfile:1\r\nFROM scratch\r\nADD --chown=1000 \\\r\n    {url} /opt/tool.tgz\r\n"
    root = project(tmp_path, text)
    result = run(root, "lock")
    assert result.exit_code == 0, result.stderr
    first = sha(b"release one")
    assert (root / "Dockerfile").read_bytes() == text.replace("ADD --chown", f"ADD --checksum={first} --chown").encode()
    lock = lockfile.read(root / "pinrepro.lock")
    assert lock is not None
    assert lock.urls[url].checksum == first and lock.urls[url].size == 11 and lock.urls[url].sites == ("Dockerfile:3",)
    assert run(root, "verify").exit_code == 0
    downloads = len(server.requests)
    assert run(root, "lock").exit_code == 0
    assert len(server.requests) == downloads  # an unchanged lock downloads nothing

    # Upstream replaces the file under the same URL.
    server.files["/tool-1.0.tar.gz"] = b"release one, rebuilt"
    assert run(root, "verify").exit_code == 0
    online = run(root, "verify", "--online")
    assert f"ADD {url} now has {sha(b'release one, rebuilt')[:19]} (locked: {first[:19]})" in online.stdout
    assert "[url-changed]" in online.stdout
    assert run(root, "lock").exit_code == 0
    assert first in (root / "Dockerfile").read_text()
    assert run(root, "lock", "--upgrade").exit_code == 0
    assert f"--checksum={sha(b'release one, rebuilt')} --chown" in (root / "Dockerfile").read_text()
    assert run(root, "verify", "--online").exit_code == 0

    # A hand edit to the checksum is drift, with file and line.
    (root / "Dockerfile").write_text((root / "Dockerfile").read_text().replace(sha(b"release one, rebuilt"), first))
    drift = run(root, "verify")
    assert drift.exit_code == 1 and "Dockerfile:3: error: ADD" in drift.stdout and "[drift]" in drift.stdout


def test_without_a_new_enough_syntax_line_the_add_is_reported(tmp_path: Path, server: FileServer) -> None:
    server.files["/a.bin"] = b"a"
    text = f"FROM scratch\nADD {server.url}/a.bin /a\n"
    root = project(tmp_path, text)
    result = run(root, "lock")
    assert result.exit_code == 0
    assert "Dockerfile:1: warning: ADD --checksum needs Dockerfile syntax 1.6 or later" in result.stderr
    assert (root / "Dockerfile").read_text() == text
    assert "[unpinned]" in run(root, "verify").stdout
    # Opting in adds the syntax line and the checksum.
    (root / "pinrepro.toml").write_text("syntax_directive = true\n")
    assert run(root, "lock").exit_code == 0
    assert (root / "Dockerfile").read_text() == (
        f"# syntax=docker/dockerfile:1\nFROM scratch\nADD --checksum={sha(b'a')} {server.url}/a.bin /a\n")
    # The lock's sites already count the added line: locking again changes nothing.
    lock = lockfile.read(root / "pinrepro.lock")
    assert lock is not None and lock.urls[f"{server.url}/a.bin"].sites == ("Dockerfile:3",)
    before = (root / "pinrepro.lock").read_bytes()
    assert run(root, "lock").exit_code == 0
    assert (root / "pinrepro.lock").read_bytes() == before


def test_policy_mode_puts_the_checksum_in_the_policy(tmp_path: Path, server: FileServer) -> None:
    server.files["/m.onnx"] = b"weights"
    text = f"FROM scratch\nADD {server.url}/m.onnx /m.onnx\n"
    root = project(tmp_path, text, 'pin = "policy"\n')
    assert run(root, "lock").exit_code == 0
    assert (root / "Dockerfile").read_text() == text
    policy = json.loads((root / "pinrepro.policy.json").read_text())
    assert policy["rules"] == [{"action": "CONVERT", "selector": {"identifier": f"{server.url}/m.onnx"},
                                "updates": {"attrs": {"http.checksum": sha(b"weights")}}}]
    assert run(root, "verify").exit_code == 0


@pytest.mark.parametrize(("config", "path", "message"), [
    ("add_max_bytes = 10\n", "/big", "ADD {url}/big is larger than add_max_bytes (10 bytes) - raise add_max_bytes"),
    ("", "/missing", "ADD {url}/missing: the server answered 404 - check the URL"),
])
def test_bad_downloads_are_one_line_and_change_nothing(tmp_path: Path, server: FileServer, config: str, path: str,
                                                       message: str) -> None:
    server.files["/big"] = b"x" * 11
    text = f"# syntax=docker/dockerfile:1\nFROM scratch\nADD {server.url}{path} /x\n"
    root = project(tmp_path, text, config)
    result = run(root, "lock")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: Dockerfile:3: {message.format(url=server.url)}")
    assert result.stderr.count("\n") == 1
    assert (root / "Dockerfile").read_text() == text and not (root / "pinrepro.lock").exists()


def test_credentials_in_a_url_never_reach_lock_or_output(tmp_path: Path, server: FileServer) -> None:
    secret = "s3cr3t-token"
    text = f"# syntax=docker/dockerfile:1\nFROM scratch\nADD http://bot:{secret}@127.0.0.1:1/x.tgz /x\n"
    root = project(tmp_path, text)
    result = run(root, "lock")
    assert result.exit_code == 0
    assert "cannot pin ADD http://***@127.0.0.1:1/x.tgz: the URL carries credentials" in result.stderr
    assert secret not in result.output + (root / "pinrepro.lock").read_text()
    assert server.requests == []


@pytest.mark.parametrize(("syntax", "ok"), [
    ("docker/dockerfile:1", True), ("docker/dockerfile:1.6", True), ("docker/dockerfile:1.10-labs", True),
    ("docker.io/docker/dockerfile:1.7.0", True), ("docker/dockerfile:1.5", False),
    ("docker/dockerfile:1.4-labs", False),
    (f"docker/dockerfile:1@sha256:{'a' * 64}", True), ("", False), ("example.com/frontend:1", False),
])
def test_syntax_versions(syntax: str, ok: bool) -> None:
    assert syntax_supports_checksum({"syntax": syntax} if syntax else {}) is ok


def test_find_adds_reads_json_form_heredocs_and_several_sources() -> None:
    dockerfile = parse(
        'FROM scratch\nADD ["https://h/a b.tgz", "/x"]\nRUN <<EOF\nADD https://h/not-an-instruction /y\nEOF\n'
        "ADD https://h/1 https://h/2 /dir/\nADD https://h/repo.git#v1 /src\nADD local.txt /z\n"
        "ADD https://h/${VERSION}/t.tgz /t\n")
    assert [(s.line, s.url, s.reason is None) for s in find_adds(dockerfile)] == [
        (2, "https://h/a b.tgz", True), (6, "https://h/1", False), (9, "https://h/${VERSION}/t.tgz", False)]


class _DripHandler(BaseHTTPRequestHandler):
    """Promises 400 bytes and sends one every 50 ms: every read is quick, the download takes 20 s."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "400")
        self.end_headers()
        try:
            for _ in range(400):
                self.wfile.write(b"x")
                self.wfile.flush()
                threading.Event().wait(0.05)
        except OSError:
            pass  # the client gave up, as it should

    def log_message(self, *args: object) -> None:
        pass


def test_a_server_that_drips_is_cut_off_by_the_download_deadline(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Review of #12: the 60 s read timeout never fired for a server sending a byte now and then; `lock`
    waited for the whole trickle (days, for a real file). PINREPRO_BLOB_DEADLINE bounds the whole download."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _DripHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/tool.tgz"
        text = f"# syntax=docker/dockerfile:1\nFROM scratch\nADD {url} /x\n"
        root = project(tmp_path, text)
        monkeypatch.setenv("PINREPRO_BLOB_DEADLINE", "1")
        result = run(root, "lock")
        assert result.exit_code == 2, result.output
        assert result.stderr == (f"error: Dockerfile:3: cannot download ADD {url}: not complete within 1s - try again "
                                 "later, or raise PINREPRO_BLOB_DEADLINE\n")
        assert (root / "Dockerfile").read_text() == text and not (root / "pinrepro.lock").exists()
        monkeypatch.setenv("PINREPRO_BLOB_DEADLINE", "soon")
        bad = run(root, "lock")
        assert bad.exit_code == 2
        assert bad.stderr.startswith("error: environment: PINREPRO_BLOB_DEADLINE='soon' is not a positive number")
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def test_a_star_in_an_add_url_is_matched_exactly_by_the_policy(tmp_path: Path, server: FileServer) -> None:
    """Review of #12: BuildKit's default selector match is a wildcard, so ``?f=a*b`` also matched (and converted
    to itself, with this checksum) every other ``?f=a...b`` download."""
    server.files["/get?f=a*b.tgz"] = b"tool"
    text = f"FROM scratch\nADD {server.url}/get?f=a*b.tgz /t\n"
    root = project(tmp_path, text, 'pin = "policy"\n')
    assert run(root, "lock").exit_code == 0
    policy = json.loads((root / "pinrepro.policy.json").read_text())
    assert policy["rules"] == [{"action": "CONVERT",
                                "selector": {"identifier": f"{server.url}/get?f=a*b.tgz", "match_type": "EXACT"},
                                "updates": {"attrs": {"http.checksum": sha(b"tool")}}}]
    assert run(root, "verify").exit_code == 0


def test_pin_text_edits_only_the_checksum_flag() -> None:
    # A URL that holds the text "--checksum=" keeps it: the flag goes among ADD's flags, and an existing flag's
    # value is replaced in place.
    old, new = sha(b"old"), sha(b"new")
    text = ("# syntax=docker/dockerfile:1\nFROM scratch\nADD https://h.test/a?x=--checksum=y /a\n"
            f"ADD --chown=1 --checksum={old} https://h.test/b /b\n")
    out, findings = pin_text(parse(text), lambda site: new, add_syntax=False)
    assert findings == []
    assert out == ("# syntax=docker/dockerfile:1\nFROM scratch\n"
                   f"ADD --checksum={new} https://h.test/a?x=--checksum=y /a\n"
                   f"ADD --chown=1 --checksum={new} https://h.test/b /b\n")
