"""The bearer-token flow without the connection: which request to send to the realm, and the token in the answer.

Token request: https://distribution.github.io/distribution/spec/auth/token/ (GET with ``service`` and
``scope``, Basic credentials when the user has some); an identity token is an OAuth2 refresh token sent by POST
(https://distribution.github.io/distribution/spec/auth/oauth/). The answer's ``token`` (or ``access_token``)
lives ``expires_in`` seconds, at least 60.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pinrepro.errors import RegistryError
from pinrepro.registry.authn import Credential
from pinrepro.registry.body import loads, plain_http_refused, problem_with_url
from pinrepro.registry.challenge import Challenge
from pinrepro.registry.errors import for_suffix
from pinrepro.scrub import remember

# distribution token spec: "if expires_in is absent, assume 60 seconds"; a shorter value is treated as 60.
DEFAULT_LIFETIME_S = 60.0
# RFC 6750 b64token, loosened to any visible ASCII: what an Authorization header can carry.
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")


@dataclass
class Token:
    value: str = field(repr=False)
    expires_at: float


@dataclass(frozen=True)
class TokenRequest:
    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    data: str | None = field(default=None, repr=False)


def basic(credential: Credential) -> str:
    raw = f"{credential.username}:{credential.secret}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def check_realm(api_host: str, realm: str, repository: str, registry_scheme: str,
                insecure_registries: Collection[str]) -> str:
    """The realm's host, when pinrepro may send credentials there; else the error that says why not."""
    if not realm.startswith(("https://", "http://")) or problem_with_url(realm):
        raise RegistryError(f"{api_host} asked for a token from '{realm}', which is not an http(s) URL"
                            f"{for_suffix(repository)}", fix="check the registry's auth configuration")
    netloc = urlsplit(realm).netloc
    if realm.startswith("http://") and plain_http_refused(api_host, registry_scheme, insecure_registries):
        raise RegistryError(f"{api_host} asked for a token from plain-HTTP {netloc}"
                            f"{for_suffix(repository)}; refused, credentials would travel in clear text",
                            fix="the registry's token realm must be https (or list the registry under "
                                "insecure_registries if you accept that)")
    return netloc


def token_request(challenge: Challenge, scopes: list[str], credential: Credential | None) -> TokenRequest:
    """The request for one token carrying every scope in ``scopes``."""
    if credential is not None and credential.identity_token:
        form = [("grant_type", "refresh_token"), ("refresh_token", credential.secret),
                ("client_id", "pinrepro"), ("scope", " ".join(scopes))]
        if challenge.service:
            form.insert(1, ("service", challenge.service))
        return TokenRequest("POST", challenge.realm, {"Content-Type": "application/x-www-form-urlencoded"},
                            urlencode(form))
    parts = urlsplit(challenge.realm)
    # The realm may carry its own query string: merge, don't overwrite.
    query = parse_qsl(parts.query, keep_blank_values=True)
    if challenge.service:
        query.append(("service", challenge.service))
    query.extend(("scope", scope) for scope in scopes)
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
    return TokenRequest("GET", url, {"Authorization": basic(credential)} if credential is not None else {})


def read_token(content: bytes, realm_host: str, api_host: str, repository: str, received: float) -> Token:
    """The token in a token service's answer, valid until a little before it expires (counted from ``received``)."""
    try:
        body = loads(content)
    except ValueError:
        body = None
    value = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(value, str) or not value:
        raise RegistryError(f"the token service {realm_host} for {api_host} answered without a token"
                            f"{for_suffix(repository)}", fix="check the registry's auth configuration")
    remember(value)
    if not _TOKEN_CHARS.fullmatch(value):
        raise RegistryError(f"the token service {realm_host} for {api_host} sent a token with "
                            f"characters an HTTP header cannot carry{for_suffix(repository)}",
                            fix="check the registry's auth configuration")
    lifetime = body.get("expires_in")
    try:
        seconds = max(float(lifetime), DEFAULT_LIFETIME_S) if lifetime is not None else DEFAULT_LIFETIME_S
    except (TypeError, ValueError):
        seconds = DEFAULT_LIFETIME_S
    # issued_at is ignored on purpose: it is the server's clock; counting from receipt survives clock skew.
    # Renew a little early so a token does not expire in flight.
    return Token(value, received + seconds - min(10.0, seconds / 10))
