"""A tiny token server for distribution's token auth mode, on 127.0.0.1.

The registry (distribution 2.8, ``registry/auth/token``) accepts an ES256 JWT whose ``x5c`` header carries a
certificate chaining to its ``auth.token.rootcertbundle``, with claims ``iss`` (= ``auth.token.issuer``),
``aud`` (= ``auth.token.service``; 2.8 wants a plain string), ``exp``/``nbf``/``iat`` and
``access: [{type, name, actions}]`` (distribution ``docs/spec/auth/jwt.md``). This server issues such tokens
for ``GET /token?service=..&scope=..[&scope=..]``, checks Basic credentials, and records every request so tests
can assert how often a client came and which scopes it asked for.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import http.server
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

ISSUER = "pinrepro-test-issuer"
SERVICE = "pinrepro-test-registry"
_ALLOWED_ACTIONS = ("pull", "push", "delete")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class TokenRequest:
    """One request the issuer saw: who asked (None = anonymous, or the rejected user name) and for what."""

    user: str | None
    service: str | None
    scopes: tuple[str, ...]
    status: int


@dataclass(frozen=True)
class Scope:
    """``repository:<name>:<actions>``; the name may contain ':' (host:port), so split at the ends."""

    type: str
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        kind, sep, rest = text.partition(":")
        name, sep2, actions = rest.rpartition(":")
        if not sep or not sep2 or not kind or not name:
            return None
        return cls(kind, name, tuple(a for a in actions.split(",") if a))


@dataclass
class _Signer:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def generate(cls) -> _Signer:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pinrepro test token issuer")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=False,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def jwt(self, claims: dict[str, Any]) -> str:
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(der).decode("ascii")]}
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        der_sig = self.key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        # JWS ES256 wants the raw r||s pair (RFC 7518 section 3.4), not the DER that cryptography produces.
        r, s = decode_dss_signature(der_sig)
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


@dataclass
class TokenIssuer:
    """Issues registry tokens on ``http://127.0.0.1:<port>/token``.

    ``users`` maps user name to password; users get the actions they ask for (pull, push, delete).
    Anonymous requests get ``pull`` when ``anonymous_pull`` is true, otherwise a token with no access at all -
    as Docker Hub does for private repositories, so the registry then answers 401/insufficient_scope.
    Wrong credentials get a 401 from the issuer itself. ``POST /token`` serves the OAuth2 password and
    refresh-token grants, so identity tokens (``add_refresh_token``) work too.
    """

    users: dict[str, str] = field(default_factory=dict)
    anonymous_pull: bool = False
    service: str = SERVICE
    issuer: str = ISSUER
    expires_in: int = 300
    _signer: _Signer = field(default_factory=_Signer.generate, repr=False)
    _server: http.server.ThreadingHTTPServer | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _requests: list[TokenRequest] = field(default_factory=list, repr=False)
    _refresh_tokens: dict[str, str] = field(default_factory=dict, repr=False)

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> TokenIssuer:
        if self._server is not None:
            return self
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                issuer._handle(self)

            def do_POST(self) -> None:
                issuer._handle_post(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        # Port 0: the kernel picks a free port and we read it back, so nothing can race us for it.
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="token-issuer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> TokenIssuer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the registry and tests need ----------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("token issuer is not running")
        return int(self._server.server_address[1])

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def write_cert(self, path: Path) -> Path:
        """Write the signing certificate (PEM) - the registry's ``auth.token.rootcertbundle``."""
        path.write_bytes(self._signer.cert.public_bytes(serialization.Encoding.PEM))
        return path

    @property
    def requests(self) -> list[TokenRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    def scopes_seen(self) -> list[str]:
        """Every scope asked for, in order, across all requests."""
        return [scope for request in self.requests for scope in request.scopes]

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()

    def issue(self, subject: str, access: list[dict[str, Any]]) -> str:
        """A signed token for ``subject`` with ``access`` (also used by tests to forge edge cases)."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + self.expires_in,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        return self._signer.jwt(claims)

    # -- request handling --------------------------------------------------------------------------------
    def _handle(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(handler.path)
        if url.path != "/token":
            self._reply(handler, 404, {"errors": [{"code": "NOT_FOUND", "message": url.path}]})
            return
        query = urllib.parse.parse_qs(url.query)
        service = query.get("service", [None])[0]
        scopes = tuple(query.get("scope", []))
        user, ok = self._authenticate(handler.headers.get("Authorization"))
        if not ok:
            self._record(TokenRequest(user, service, scopes, 401))
            self._reply(
                handler, 401,
                {"errors": [{"code": "UNAUTHORIZED", "message": "invalid username or password"}]},
                extra={"WWW-Authenticate": 'Basic realm="pinrepro-test-issuer"'},
            )
            return
        if service is not None and service != self.service:
            self._record(TokenRequest(user, service, scopes, 400))
            self._reply(handler, 400, {"errors": [{"code": "DENIED", "message": f"unknown service {service}"}]})
            return
        access = []
        for text in scopes:
            scope = Scope.parse(text)
            if scope is None:
                continue
            granted = self._grant(user, scope)
            access.append({"type": scope.type, "name": scope.name, "actions": list(granted)})
        token = self.issue(user or "", access)
        self._record(TokenRequest(user, service, scopes, 200))
        issued_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._reply(
            handler, 200,
            {"token": token, "access_token": token, "expires_in": self.expires_in, "issued_at": issued_at},
        )

    def _handle_post(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        """The OAuth2 flow (distribution ``docs/spec/auth/oauth.md``): a form with ``grant_type`` =
        ``refresh_token`` (an identity token, as ``docker login`` stores) or ``password``; ``scope`` is
        space-separated. ``access_type=offline`` with a password grant also returns a refresh token."""
        url = urllib.parse.urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(handler.rfile.read(length).decode("utf-8", "replace"))
        if url.path != "/token":
            self._reply(handler, 404, {"errors": [{"code": "NOT_FOUND", "message": url.path}]})
            return

        def one(key: str) -> str | None:
            return form.get(key, [None])[0]

        service = one("service")
        scopes = tuple((one("scope") or "").split())
        grant = one("grant_type")
        user: str | None = None
        if grant == "refresh_token":
            with self._lock:
                user = self._refresh_tokens.get(one("refresh_token") or "")
            ok = user is not None
        elif grant == "password":
            user = one("username")
            ok = user is not None and self.users.get(user) == one("password")
        else:
            ok = False
        if not ok:
            self._record(TokenRequest(user, service, scopes, 401))
            self._reply(handler, 401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid grant"}]})
            return
        assert user is not None
        access = []
        for text in scopes:
            scope = Scope.parse(text)
            if scope is not None:
                access.append({"type": scope.type, "name": scope.name, "actions": list(self._grant(user, scope))})
        self._record(TokenRequest(user, service, scopes, 200))
        body: dict[str, Any] = {"access_token": self.issue(user, access), "expires_in": self.expires_in,
                                "scope": " ".join(scopes)}
        if grant == "password" and one("access_type") == "offline":
            body["refresh_token"] = self.add_refresh_token(user)
        self._reply(handler, 200, body)

    def add_refresh_token(self, user: str) -> str:
        """Mint an identity (refresh) token for ``user``, as ``docker login`` would store it."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._refresh_tokens[token] = user
        return token

    def _authenticate(self, header: str | None) -> tuple[str | None, bool]:
        if not header:
            return None, True
        kind, _, value = header.partition(" ")
        if kind.lower() != "basic":
            return None, False
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None, False
        user, sep, password = decoded.partition(":")
        if not sep or self.users.get(user) != password:
            return user or None, False
        return user, True

    def _grant(self, user: str | None, scope: Scope) -> tuple[str, ...]:
        if scope.type != "repository":
            return ()
        if user is not None:
            return tuple(a for a in scope.actions if a in _ALLOWED_ACTIONS)
        if self.anonymous_pull:
            return tuple(a for a in scope.actions if a == "pull")
        return ()

    def _record(self, request: TokenRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @staticmethod
    def _reply(
        handler: http.server.BaseHTTPRequestHandler,
        status: int,
        body: dict[str, Any],
        extra: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (extra or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
