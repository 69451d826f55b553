"""A threaded loopback HTTP(S) server whose answer to each path the test sets: the registry from hell.

``server.on(path, behaviour)`` routes a path (exact, or a prefix ending in ``*``) to one of the behaviours
below; unrouted paths answer 404. Every request is recorded (method, path, headers) for assertions. A
stalled or dripping handler stops when the server stops, so no test leaves threads behind.

Behaviours: ``json_answer`` (status, JSON body, headers), ``drip`` (a byte per interval, forever),
``stall`` (accept, never answer), ``reset`` (TCP RST), ``huge`` (N bytes), ``redirect`` (Location),
``bad_chunking`` / ``short_body`` (broken framing), ``echo_auth`` (an error body repeating the
Authorization header, as some servers do).
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import json
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Handler = http.server.BaseHTTPRequestHandler
Behaviour = Callable[[Handler, "HostileServer"], None]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


def json_answer(status: int, body: Any = None, headers: dict[str, str] | None = None,
                raw: bytes | None = None) -> Behaviour:
    def answer(handler: Handler, server: HostileServer) -> None:
        data = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(data)
    return answer


def drip(interval: float = 0.2, *, in_headers: bool = False) -> Behaviour:
    """A 200 whose body (or, with ``in_headers``, whose header lines) comes one byte per ``interval``, forever."""
    def answer(handler: Handler, server: HostileServer) -> None:
        if in_headers:
            first, filler = b"HTTP/1.1 200 OK\r\nX-Slow: ", b"a"
        else:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Connection", "close")  # no length: the body runs until the server closes
            handler.end_headers()
            first, filler = b"{", b" "
        index = 0
        while not server.stopping.wait(interval):
            try:
                handler.wfile.write(first[index:index + 1] or filler)
                handler.wfile.flush()
            except OSError:
                return
            index += 1
        handler.close_connection = True
    return answer


def stall(handler: Handler, server: HostileServer) -> None:
    server.stopping.wait(600)


def reset(handler: Handler, server: HostileServer) -> None:
    # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.connection.close()
    handler.close_connection = True


def huge(size: int, status: int = 200) -> Behaviour:
    def answer(handler: Handler, server: HostileServer) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        block = b" " * (1 << 20)
        sent = 0
        try:
            while sent < size and not server.stopping.is_set():
                piece = block[: min(len(block), size - sent)]
                handler.wfile.write(piece)
                sent += len(piece)
        except OSError:
            return
        server.sent_bytes += sent
    return answer


def redirect(location: str, status: int = 307) -> Behaviour:
    def answer(handler: Handler, server: HostileServer) -> None:
        handler.send_response(status)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    return answer


def bad_chunking(handler: Handler, server: HostileServer) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    handler.wfile.write(b"5\r\n{\"a\":\r\nZZZ-not-hex\r\n")
    handler.wfile.flush()
    handler.close_connection = True


def short_body(handler: Handler, server: HostileServer) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    handler.wfile.write(b'{"token": "abc"')
    handler.wfile.flush()
    handler.close_connection = True


def echo_auth(status: int = 400, code: str = "DENIED") -> Behaviour:
    """An error whose message repeats what the client sent: the Authorization header, decoded and not."""
    def answer(handler: Handler, server: HostileServer) -> None:
        sent = handler.headers.get("Authorization", "")
        decoded = ""
        if sent.startswith("Basic "):
            decoded = base64.b64decode(sent[6:]).decode("utf-8", "replace")
        message = f"bad credentials {decoded} (header {sent})"
        json_answer(status, {"errors": [{"code": code, "message": message}]})(handler, server)
    return answer


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _route(self) -> None:
        owner = self.server.owner
        owner.seen.append(Seen(self.command, self.path, dict(self.headers.items())))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        behaviour = owner.find(self.path.split("?", 1)[0])
        if behaviour is None:
            json_answer(404, {"errors": [{"code": "NAME_UNKNOWN", "message": "no"}]})(self, owner)
            return
        behaviour(self, owner)

    do_GET = do_HEAD = do_POST = _route


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: HostileServer


@dataclass
class HostileServer:
    """Start with ``start()`` (or as a context manager); ``host`` is ``127.0.0.1:<port>``."""

    tls: tuple[Path, Path] | None = None  # (certificate, key) to serve HTTPS
    routes: dict[str, Behaviour] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    sent_bytes: int = 0
    _server: _Server | None = None
    _thread: threading.Thread | None = None

    def on(self, path: str, behaviour: Behaviour) -> HostileServer:
        self.routes[path] = behaviour
        return self

    def find(self, path: str) -> Behaviour | None:
        if path in self.routes:
            return self.routes[path]
        prefixes = [p for p in self.routes if p.endswith("*") and path.startswith(p[:-1])]
        return self.routes[max(prefixes, key=len)] if prefixes else None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> HostileServer:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.owner = self
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate for ``name`` (and 127.0.0.1) and its key, written under ``directory``."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
