"""Transport: the auth handshake, token cache, retries, redirects and error messages, against `responses`."""

from __future__ import annotations

import base64
import email.utils
import json
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import urllib3

from pinrepro.errors import AuthError, NotFoundError, RegistryError, RegistryUnreachable
from pinrepro.registry import deadline, session
from pinrepro.registry.authn import AnonymousKeychain, Credential
from pinrepro.registry.transport import Challenge, Transport, parse_challenge, scope_repositories
from tests.support.waiting import wait_until

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "registry"
HUB_TOKEN = json.loads((FIXTURES / "dockerhub-token.json").read_text(encoding="utf-8"))
PING_401 = (FIXTURES / "dockerhub-ping-401.json").read_text(encoding="utf-8")
ERROR_401 = (FIXTURES / "registry-401-error.json").read_text(encoding="utf-8")
TOO_MANY = (FIXTURES / "error-toomanyrequests.json").read_text(encoding="utf-8")
DIGEST = "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
HUB_CHALLENGE = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"'
PASSWORD = "s3cret-Passw0rd"


class StaticKeychain:
    def __init__(self, credentials: dict[str, Credential]) -> None:
        self.credentials = credentials
        self.asked: list[str] = []

    def resolve(self, registry: str) -> Credential | None:
        self.asked.append(registry)
        return self.credentials.get(registry)


class Sleeps:
    """An injected sleep that records the waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def _transport(keychain: object = None, **options: object) -> tuple[Transport, Sleeps]:
    sleeps = Sleeps()
    transport = Transport(keychain if keychain is not None else AnonymousKeychain(),  # type: ignore[arg-type]
                          sleep=sleeps, **options)  # type: ignore[arg-type]
    return transport, sleeps


def _hub_ping(rsps: responses.RequestsMock) -> None:
    rsps.get("https://registry-1.docker.io/v2/", status=401, body=PING_401,
             headers={"WWW-Authenticate": HUB_CHALLENGE, "Content-Type": "application/json"})


def _hub_token(rsps: responses.RequestsMock, token: dict[str, object] | None = None) -> None:
    rsps.get("https://auth.docker.io/token", json=token or HUB_TOKEN)


def _query(call: responses.Call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(str(call.request.url)).query)


def _ratelimit_headers(remaining: str) -> dict[str, str]:
    return {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": remaining, "docker-ratelimit-source": "1.2.3.4"}


# -- challenge parsing ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (HUB_CHALLENGE, Challenge("bearer", "https://auth.docker.io/token", "registry.docker.io", None)),
        ('Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull"',
         Challenge("bearer", "https://ghcr.io/token", "ghcr.io", "repository:user/image:pull")),
        ("Bearer realm=https://auth.example.com/token,service=registry.example.com",
         Challenge("bearer", "https://auth.example.com/token", "registry.example.com", None)),
        ('Bearer realm="https://nvcr.io/proxy_auth",scope="repository:nvidia/cuda:pull"',
         Challenge("bearer", "https://nvcr.io/proxy_auth", None, "repository:nvidia/cuda:pull")),
        ('Basic realm="Registry Realm"', Challenge("basic", "Registry Realm")),
        ('Basic realm="x", Bearer realm="https://t.example/token", service="s"',
         Challenge("bearer", "https://t.example/token", "s")),
        ('Bearer realm="https://a.example/t?x=\\"q\\"",error="insufficient_scope"',
         Challenge("bearer", 'https://a.example/t?x="q"')),
        ("", None),
        (None, None),
    ],
)
def test_parse_challenge(header: str | None, expected: Challenge | None) -> None:
    assert parse_challenge(header) == expected


@pytest.mark.parametrize(
    ("scope", "names"),
    [
        ("repository:library/ubuntu:pull", ["library/ubuntu"]),
        ("repository:localhost:5000/foo/bar:pull", ["localhost:5000/foo/bar"]),
        ("repository:a:pull,push repository:b/c:pull", ["a", "b/c"]),
        ("registry:catalog:*", []),
    ],
)
def test_scope_repositories(scope: str, names: list[str]) -> None:
    assert scope_repositories(scope) == names


# -- Docker Hub -------------------------------------------------------------------------------------

def test_docker_hub_anonymous_flow(rsps: responses.RequestsMock) -> None:
    _hub_ping(rsps)
    _hub_token(rsps)
    rsps.head("https://registry-1.docker.io/v2/library/ubuntu/manifests/22.04", status=200,
              headers={"Docker-Content-Digest": DIGEST, "Content-Type": INDEX_TYPE, **_ratelimit_headers("99")})
    transport, _ = _transport()
    response = transport.request("HEAD", "registry-1.docker.io", "library/ubuntu",
                                 "/v2/library/ubuntu/manifests/22.04")
    assert response.headers["Docker-Content-Digest"] == DIGEST
    assert transport.request_count == 3
    ping, token, head = rsps.calls
    assert "Authorization" not in ping.request.headers
    assert _query(token) == {"service": ["registry.docker.io"], "scope": ["repository:library/ubuntu:pull"]}
    assert "Authorization" not in token.request.headers
    assert head.request.headers["Authorization"] == f"Bearer {HUB_TOKEN['token']}"
    assert head.request.headers["User-Agent"].startswith("pinrepro/")
    # every request has a timeout
    assert all(call.request.req_kwargs["timeout"] == 30.0 for call in rsps.calls)  # type: ignore[attr-defined]


def test_docker_hub_429_retry_after_then_success(rsps: responses.RequestsMock) -> None:
    _hub_ping(rsps)
    _hub_token(rsps)
    url = "https://registry-1.docker.io/v2/library/ubuntu/manifests/22.04"
    rsps.head(url, status=429, headers={"Retry-After": "7", **_ratelimit_headers("0")})
    rsps.head(url, status=200, headers={"Docker-Content-Digest": DIGEST, "Content-Type": INDEX_TYPE})
    transport, sleeps = _transport()
    response = transport.request("HEAD", "registry-1.docker.io", "library/ubuntu", "/v2/library/ubuntu/manifests/22.04")
    assert response.status_code == 200
    assert sleeps.waits == [7.0]
    assert transport.request_count == 4


def test_retry_after_http_date(rsps: responses.RequestsMock) -> None:
    rsps.get("https://ghcr.io/v2/", status=200)
    url = "https://ghcr.io/v2/org/img/manifests/1"
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    rsps.get(url, status=503, headers={"Retry-After": when})
    rsps.get(url, status=200, body=b"{}")
    transport, sleeps = _transport()
    assert transport.request("GET", "ghcr.io", "org/img", "/v2/org/img/manifests/1").status_code == 200
    assert len(sleeps.waits) == 1
    assert 15.0 <= sleeps.waits[0] <= 20.0


def test_docker_hub_429_after_retries_names_the_rate_limit(rsps: responses.RequestsMock) -> None:
    _hub_ping(rsps)
    _hub_token(rsps)
    rsps.get("https://registry-1.docker.io/v2/library/ubuntu/manifests/22.04", status=429, body=TOO_MANY,
             headers={"Content-Type": "application/json", **_ratelimit_headers("0;w=21600")})
    transport, sleeps = _transport(max_retries=2)
    with pytest.raises(RegistryError) as info:
        transport.request("GET", "registry-1.docker.io", "library/ubuntu", "/v2/library/ubuntu/manifests/22.04")
    assert str(info.value) == (
        "GET /v2/library/ubuntu/manifests/22.04 on registry-1.docker.io failed: 429 Too Many Requests - Docker "
        "Hub's pull rate limit is used up; ratelimit-remaining: 0;w=21600, ratelimit-limit: 100;w=21600 - wait "
        "until the limit resets (see the ratelimit-remaining header), log in with `docker login` for a higher "
        "limit, or use a mirror")
    assert len(sleeps.waits) == 2
    assert transport.request_count == 2 + 3


def test_retry_after_beyond_the_wait_budget_is_not_waited_for(rsps: responses.RequestsMock) -> None:
    rsps.get("https://ghcr.io/v2/", status=200)
    rsps.get("https://ghcr.io/v2/org/img/manifests/1", status=429, headers={"Retry-After": "3600"})
    transport, sleeps = _transport(max_retry_wait=30.0)
    with pytest.raises(RegistryError) as info:
        transport.request("GET", "ghcr.io", "org/img", "/v2/org/img/manifests/1")
    assert str(info.value) == ("GET /v2/org/img/manifests/1 on ghcr.io failed: 429 Too Many Requests after 0 retries; "
                               "Retry-After: 3600 - wait and try again, or ask the registry's operators about its "
                               "rate limit")
    assert sleeps.waits == []
    assert transport.request_count == 2


def test_retries_are_bounded_with_exponential_backoff(rsps: responses.RequestsMock,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PINREPRO_BACKOFF_S")  # the real waits (recorded, not slept), not the suite's short ones
    rsps.get("https://ghcr.io/v2/", status=200)
    rsps.get("https://ghcr.io/v2/org/img/manifests/1", status=503, body="upstream down")
    transport, sleeps = _transport(max_retries=3)
    with pytest.raises(RegistryError) as info:
        transport.request("GET", "ghcr.io", "org/img", "/v2/org/img/manifests/1")
    assert str(info.value) == ("GET /v2/org/img/manifests/1 on ghcr.io failed: 503 Service Unavailable after 3 "
                               "retries - the registry is having trouble; try again later")
    assert transport.request_count == 1 + 4
    assert len(sleeps.waits) == 3
    # base 0.5 s doubling, jitter in [0.5, 1.0] of that
    for attempt, wait in enumerate(sleeps.waits):
        assert 0.25 * 2**attempt <= wait <= 0.5 * 2**attempt


def test_total_wait_is_bounded(rsps: responses.RequestsMock) -> None:
    rsps.get("https://ghcr.io/v2/", status=200)
    rsps.get("https://ghcr.io/v2/org/img/manifests/1", status=502, headers={"Retry-After": "4"})
    transport, sleeps = _transport(max_retries=10, max_retry_wait=10.0)
    with pytest.raises(RegistryError, match="502 Bad Gateway"):
        transport.request("GET", "ghcr.io", "org/img", "/v2/org/img/manifests/1")
    assert sleeps.waits == [4.0, 4.0]


def test_connection_errors_are_retried(rsps: responses.RequestsMock) -> None:
    rsps.get("https://ghcr.io/v2/", status=200)
    url = "https://ghcr.io/v2/org/img/manifests/1"
    rsps.get(url, body=requests.exceptions.ConnectionError("Connection reset by peer"))
    rsps.get(url, status=200, body=b"ok")
    transport, sleeps = _transport()
    assert transport.request("GET", "ghcr.io", "org/img", "/v2/org/img/manifests/1").content == b"ok"
    assert len(sleeps.waits) == 1


# -- GHCR, nvcr.io, basic ---------------------------------------------------------------------------

def test_ghcr_bearer_with_credentials(rsps: responses.RequestsMock) -> None:
    rsps.get("https://ghcr.io/v2/", status=401, body=ERROR_401,
             headers={"WWW-Authenticate": 'Bearer realm="https://ghcr.io/token",service="ghcr.io",'
                                          'scope="repository:user/image:pull"'})
    rsps.get("https://ghcr.io/token", json={"token": "ghcr-token-value"})
    rsps.get("https://ghcr.io/v2/org/img/manifests/v1", status=200, body=b"{}")
    keychain = StaticKeychain({"ghcr.io": Credential("octocat", PASSWORD)})
    transport, _ = _transport(keychain)
    transport.request("GET", "ghcr.io", "org/img", "/v2/org/img/manifests/v1")
    _, token, get = rsps.calls
    # the ping's scope names another repository: a scope for this one is built
    assert _query(token) == {"service": ["ghcr.io"], "scope": ["repository:org/img:pull"]}
    assert token.request.headers["Authorization"] == "Basic " + base64.b64encode(
        f"octocat:{PASSWORD}".encode()).decode()
    assert get.request.headers["Authorization"] == "Bearer ghcr-token-value"


def test_nvcr_challenge_without_service(rsps: responses.RequestsMock) -> None:
    rsps.get("https://nvcr.io/v2/", status=401,
             headers={"WWW-Authenticate": 'Bearer realm="https://nvcr.io/proxy_auth",scope="repository:nvidia/cuda:pull"'})
    rsps.get("https://nvcr.io/proxy_auth", json={"token": "nv-token", "expires_in": 300})
    rsps.head("https://nvcr.io/v2/nvidia/pytorch/manifests/24.01-py3", status=200,
              headers={"Docker-Content-Digest": DIGEST})
    keychain = StaticKeychain({"nvcr.io": Credential("$oauthtoken", "nvapi-KEY")})
    transport, _ = _transport(keychain)
    transport.request("HEAD", "nvcr.io", "nvidia/pytorch", "/v2/nvidia/pytorch/manifests/24.01-py3")
    token = rsps.calls[1]
    assert _query(token) == {"scope": ["repository:nvidia/pytorch:pull"]}  # no service parameter
    assert base64.b64decode(token.request.headers["Authorization"].removeprefix("Basic ")) == b"$oauthtoken:nvapi-KEY"


def test_realm_with_query_string_is_merged(rsps: responses.RequestsMock) -> None:
    rsps.get("https://registry.example.com/v2/", status=401,
             headers={"WWW-Authenticate": "Bearer realm=https://auth.example.com/token?account=ci&x=1,"
                                          "service=registry.example.com"})
    rsps.get("https://auth.example.com/token", json={"access_token": "only-access-token"})
    rsps.get("https://registry.example.com/v2/a/b/manifests/1", status=200)
    transport, _ = _transport()
    transport.request("GET", "registry.example.com", "a/b", "/v2/a/b/manifests/1")
    assert _query(rsps.calls[1]) == {"account": ["ci"], "x": ["1"], "service": ["registry.example.com"],
                                     "scope": ["repository:a/b:pull"]}
    assert rsps.calls[2].request.headers["Authorization"] == "Bearer only-access-token"


def test_basic_auth(rsps: responses.RequestsMock) -> None:
    rsps.get("https://registry.example.com/v2/", status=401, headers={"WWW-Authenticate": 'Basic realm="Registry"'})
    rsps.get("https://registry.example.com/v2/a/manifests/1", status=200)
    keychain = StaticKeychain({"registry.example.com": Credential("AWS", PASSWORD)})
    transport, _ = _transport(keychain)
    transport.request("GET", "registry.example.com", "a", "/v2/a/manifests/1")
    expected = "Basic " + base64.b64encode(f"AWS:{PASSWORD}".encode()).decode()
    assert rsps.calls[1].request.headers["Authorization"] == expected
    assert transport.request_count == 2


def test_basic_auth_wrong_password(rsps: responses.RequestsMock) -> None:
    rsps.get("https://registry.example.com/v2/", status=401, headers={"WWW-Authenticate": 'Basic realm="Registry"'})
    rsps.get("https://registry.example.com/v2/a/manifests/1", status=401,
             headers={"WWW-Authenticate": 'Basic realm="Registry"'}, body=ERROR_401)
    keychain = StaticKeychain({"registry.example.com": Credential("bob", PASSWORD)})
    transport, _ = _transport(keychain)
    with pytest.raises(AuthError) as info:
        transport.request("GET", "registry.example.com", "a", "/v2/a/manifests/1")
    assert str(info.value) == ("401 from registry.example.com for a: wrong username or password (credentials were "
                               "sent and rejected) - log in again with `docker login registry.example.com` (use a "
                               "token where the registry needs one)")
    _assert_no_secret(info.value, transport, PASSWORD)


def test_token_endpoint_rejects_the_password(rsps: responses.RequestsMock) -> None:
    rsps.get("https://ghcr.io/v2/", status=401,
             headers={"WWW-Authenticate": 'Bearer realm="https://ghcr.io/token",service="ghcr.io"'})
    rsps.get("https://ghcr.io/token", status=401, body=ERROR_401)
    keychain = StaticKeychain({"ghcr.io": Credential("octocat", PASSWORD)})
    transport, _ = _transport(keychain)
    with pytest.raises(AuthError) as info:
        transport.request("GET", "ghcr.io", "org/img", "/v2/org/img/manifests/1")
    assert str(info.value) == ("401 from ghcr.io (token service of ghcr.io) for org/img: wrong username or password "
                               "(credentials were sent and rejected) - log in again with `docker login ghcr.io` "
                               "(use a token where the registry needs one)")
    _assert_no_secret(info.value, transport, PASSWORD)


def test_no_credentials_message(rsps: responses.RequestsMock) -> None:
    rsps.get("https://ghcr.io/v2/", status=401,
             headers={"WWW-Authenticate": 'Bearer realm="https://ghcr.io/token",service="ghcr.io"'})
    rsps.get("https://ghcr.io/token", json={"token": "anon-token-123"})
    challenge = ('Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:org/private:pull",'
                 'error="insufficient_scope"')
    rsps.get("https://ghcr.io/v2/org/private/manifests/1", status=401, body=ERROR_401,
             headers={"WWW-Authenticate": challenge})
    transport, _ = _transport()
    with pytest.raises(AuthError) as info:
        transport.request("GET", "ghcr.io", "org/private", "/v2/org/private/manifests/1")
    assert str(info.value) == ("401 from ghcr.io for org/private: no credentials found (the repository is private or "
                               "does not exist) - log in with `docker login ghcr.io`, and check the repository name")
    # ping, token, 401, a fresh token for the challenge's scope, retried once: 401 again
    assert transport.request_count == 5
    _assert_no_secret(info.value, transport, "anon-token-123")


def test_403_with_credentials(rsps: responses.RequestsMock) -> None:
    rsps.get("https://registry.example.com/v2/", status=401, headers={"WWW-Authenticate": 'Basic realm="r"'})
    rsps.get("https://registry.example.com/v2/team/app/manifests/1", status=403,
             json={"errors": [{"code": "DENIED", "message": "denied"}]})
    keychain = StaticKeychain({"registry.example.com": Credential("bob", PASSWORD)})
    transport, _ = _transport(keychain)
    with pytest.raises(AuthError) as info:
        transport.request("GET", "registry.example.com", "team/app", "/v2/team/app/manifests/1")
    assert str(info.value) == ("403 from registry.example.com for team/app: credentials were sent but do not allow "
                               "pulling team/app - check the account's access, or log in as another user with "
                               "`docker login registry.example.com`")


def _assert_no_secret(exc: BaseException, transport: Transport, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in str(exc)
        assert secret not in repr(exc)
        assert secret not in repr(transport)
        assert secret not in " ".join(str(arg) for arg in exc.args)


# -- token cache ------------------------------------------------------------------------------------

def test_token_reused_per_scope(rsps: responses.RequestsMock) -> None:
    _hub_ping(rsps)
    _hub_token(rsps)
    for repository in ("library/ubuntu", "library/debian"):
        rsps.head(f"https://registry-1.docker.io/v2/{repository}/manifests/latest", status=200,
                  headers={"Docker-Content-Digest": DIGEST})
    transport, _ = _transport()
    for _ in range(3):
        transport.request("HEAD", "registry-1.docker.io", "library/ubuntu", "/v2/library/ubuntu/manifests/latest")
    assert transport.request_count == 1 + 1 + 3
    transport.request("HEAD", "registry-1.docker.io", "library/debian", "/v2/library/debian/manifests/latest")
    assert transport.request_count == 1 + 1 + 3 + 2
    token_calls = [c for c in rsps.calls if c.request.url.startswith("https://auth.docker.io/")]  # type: ignore[union-attr]
    assert [_query(c)["scope"] for c in token_calls] == [["repository:library/ubuntu:pull"],
                                                         ["repository:library/debian:pull"]]


def test_token_expiry(rsps: responses.RequestsMock) -> None:
    _hub_ping(rsps)
    _hub_token(rsps, {"token": "t", "expires_in": 300, "issued_at": "2009-11-10T23:00:00Z"})
    rsps.head("https://registry-1.docker.io/v2/library/ubuntu/manifests/latest", status=200)
    clock = Clock()
    transport, _ = _transport(clock=clock)

    def head() -> None:
        transport.request("HEAD", "registry-1.docker.io", "library/ubuntu", "/v2/library/ubuntu/manifests/latest")

    head()
    assert transport.request_count == 3
    clock.now += 200  # an old issued_at does not make a fresh token look expired
    head()
    assert transport.request_count == 4
    clock.now += 95  # within the renewal margin (10 s before expiry)
    head()
    assert transport.request_count == 6


def test_expires_in_defaults_to_60_seconds(rsps: responses.RequestsMock) -> None:
    _hub_ping(rsps)
    _hub_token(rsps, {"token": "t"})
    rsps.head("https://registry-1.docker.io/v2/library/ubuntu/manifests/latest", status=200)
    clock = Clock()
    transport, _ = _transport(clock=clock)
    transport.request("HEAD", "registry-1.docker.io", "library/ubuntu", "/v2/library/ubuntu/manifests/latest")
    clock.now += 49
    transport.request("HEAD", "registry-1.docker.io", "library/ubuntu", "/v2/library/ubuntu/manifests/latest")
    assert transport.request_count == 4
    clock.now += 6  # renewed 6 s (a tenth of the lifetime) before expiry
    transport.request("HEAD", "registry-1.docker.io", "library/ubuntu", "/v2/library/ubuntu/manifests/latest")
    assert transport.request_count == 6


def test_prefetch_one_token_request_for_all_scopes(rsps: responses.RequestsMock) -> None:
    _hub_ping(rsps)
    _hub_token(rsps)
    repositories = ["library/ubuntu", "library/debian", "nvidia/cuda"]
    for repository in repositories:
        rsps.head(f"https://registry-1.docker.io/v2/{repository}/manifests/latest", status=200)
    transport, _ = _transport()
    transport.prefetch_tokens("registry-1.docker.io", repositories)
    assert transport.request_count == 2
    assert _query(rsps.calls[1]) == {"service": ["registry.docker.io"],
                                     "scope": [f"repository:{r}:pull" for r in repositories]}
    for repository in repositories:
        transport.request("HEAD", "registry-1.docker.io", repository, f"/v2/{repository}/manifests/latest")
    assert transport.request_count == 2 + 3
    transport.prefetch_tokens("registry-1.docker.io", repositories)  # all cached: nothing sent
    assert transport.request_count == 5


def test_scope_not_covered_fetches_a_token_and_retries_once(rsps: responses.RequestsMock) -> None:
    _hub_ping(rsps)
    rsps.get("https://auth.docker.io/token", json={"token": "shared"})
    rsps.get("https://auth.docker.io/token", json={"token": "own"})
    url = "https://registry-1.docker.io/v2/org/extra/manifests/1"
    rsps.get(url, status=401, body=ERROR_401, headers={
        "WWW-Authenticate": HUB_CHALLENGE + ',scope="repository:org/extra:pull",error="insufficient_scope"'})
    rsps.get(url, status=200, body=b"{}")
    transport, _ = _transport()
    transport.prefetch_tokens("registry-1.docker.io", ["library/ubuntu", "org/extra"])
    transport.request("GET", "registry-1.docker.io", "org/extra", "/v2/org/extra/manifests/1")
    assert transport.request_count == 5
    assert rsps.calls[2].request.headers["Authorization"] == "Bearer shared"
    assert _query(rsps.calls[3])["scope"] == ["repository:org/extra:pull"]
    assert rsps.calls[4].request.headers["Authorization"] == "Bearer own"


def test_anonymous_ping_then_bearer_challenge_on_request(rsps: responses.RequestsMock) -> None:
    rsps.get("https://registry.example.com/v2/", status=200)
    url = "https://registry.example.com/v2/a/manifests/1"
    rsps.get(url, status=401, headers={"WWW-Authenticate": 'Bearer realm="https://registry.example.com/auth",'
                                                           'service="reg",scope="repository:a:pull"'})
    rsps.get("https://registry.example.com/auth", json={"token": "late"})
    rsps.get(url, status=200)
    transport, _ = _transport()
    transport.request("GET", "registry.example.com", "a", "/v2/a/manifests/1")
    assert rsps.calls[3].request.headers["Authorization"] == "Bearer late"


def test_identity_token_uses_oauth2_refresh_grant(rsps: responses.RequestsMock) -> None:
    refresh_answer = json.loads((FIXTURES / "oauth-refresh-token-response.json").read_text(encoding="utf-8"))
    rsps.get("https://registry.example.com/v2/", status=401,
             headers={"WWW-Authenticate": 'Bearer realm="https://auth.example.com/token",service="reg.example"'})
    rsps.post("https://auth.example.com/token", json=refresh_answer)
    rsps.get("https://registry.example.com/v2/a/manifests/1", status=200)
    keychain = StaticKeychain({"registry.example.com": Credential("", "refresh-XYZ", identity_token=True)})
    transport, _ = _transport(keychain)
    transport.request("GET", "registry.example.com", "a", "/v2/a/manifests/1")
    post = rsps.calls[1]
    assert post.request.method == "POST"
    assert parse_qs(str(post.request.body)) == {"grant_type": ["refresh_token"], "service": ["reg.example"],
                                               "refresh_token": ["refresh-XYZ"], "client_id": ["pinrepro"],
                                               "scope": ["repository:a:pull"]}
    assert "Authorization" not in post.request.headers
    assert rsps.calls[2].request.headers["Authorization"] == f"Bearer {refresh_answer['access_token']}"


def test_token_answer_without_token(rsps: responses.RequestsMock) -> None:
    _hub_ping(rsps)
    rsps.get("https://auth.docker.io/token", json={"details": "nope"})
    transport, _ = _transport()
    with pytest.raises(RegistryError) as info:
        transport.request("GET", "registry-1.docker.io", "library/x", "/v2/library/x/manifests/1")
    assert str(info.value) == ("the token service auth.docker.io for registry-1.docker.io answered without a token "
                               "(for library/x) - check the registry's auth configuration")


# -- redirects ---------------------------------------------------------------------------------------

def test_redirect_to_another_host_drops_authorization(rsps: responses.RequestsMock) -> None:
    _hub_ping(rsps)
    _hub_token(rsps)
    blob = "https://registry-1.docker.io/v2/library/ubuntu/blobs/" + DIGEST
    cdn = "https://production.cloudflare.docker.com/registry-v2/docker/registry/v2/blobs/sha256/5b/data?sig=x"
    rsps.get(blob, status=307, headers={"Location": cdn})
    rsps.get(cdn.split("?")[0], status=200, body=b"layer-bytes")
    transport, _ = _transport()
    response = transport.request("GET", "registry-1.docker.io", "library/ubuntu", "/v2/library/ubuntu/blobs/" + DIGEST)
    assert response.content == b"layer-bytes"
    assert rsps.calls[2].request.headers["Authorization"].startswith("Bearer ")
    assert rsps.calls[3].request.url == cdn
    assert "Authorization" not in rsps.calls[3].request.headers
    assert transport.request_count == 4


def test_redirect_on_the_same_host_keeps_authorization(rsps: responses.RequestsMock) -> None:
    rsps.get("https://registry.example.com/v2/", status=401, headers={"WWW-Authenticate": 'Basic realm="r"'})
    rsps.get("https://registry.example.com/v2/a/blobs/" + DIGEST, status=302, headers={"Location": "/storage/x"})
    rsps.get("https://registry.example.com/storage/x", status=200, body=b"data")
    keychain = StaticKeychain({"registry.example.com": Credential("u", PASSWORD)})
    transport, _ = _transport(keychain)
    transport.request("GET", "registry.example.com", "a", "/v2/a/blobs/" + DIGEST)
    assert rsps.calls[2].request.headers["Authorization"].startswith("Basic ")


def test_redirect_loop_is_an_error(rsps: responses.RequestsMock) -> None:
    rsps.get("https://registry.example.com/v2/", status=200)
    rsps.get("https://registry.example.com/v2/a/blobs/x", status=302, headers={"Location": "/v2/a/blobs/x"})
    transport, _ = _transport()
    with pytest.raises(RegistryError, match=r"registry\.example\.com redirected more than 10 times for a"):
        transport.request("GET", "registry.example.com", "a", "/v2/a/blobs/x")


# -- errors ------------------------------------------------------------------------------------------

def test_not_found_codes(rsps: responses.RequestsMock) -> None:
    rsps.get("https://ghcr.io/v2/", status=200)
    rsps.get("https://ghcr.io/v2/org/img/manifests/nope", status=404,
             body=(FIXTURES / "error-manifest-unknown.json").read_text(encoding="utf-8"))
    rsps.get("https://ghcr.io/v2/org/missing/manifests/1", status=404,
             body=(FIXTURES / "error-name-unknown.json").read_text(encoding="utf-8"))
    transport, _ = _transport()
    with pytest.raises(NotFoundError) as info:
        transport.request("GET", "ghcr.io", "org/img", "/v2/org/img/manifests/nope")
    assert str(info.value) == ("tag 'nope' not found in ghcr.io/org/img - check the tag (the registry's tag list "
                               "shows what exists)")
    with pytest.raises(NotFoundError) as info:
        transport.request("GET", "ghcr.io", "org/missing", "/v2/org/missing/manifests/1")
    assert str(info.value) == ("repository ghcr.io/org/missing not found - check the image name (and log in if it "
                               "is private)")


def test_allow_status_returns_the_response(rsps: responses.RequestsMock) -> None:
    rsps.get("https://ghcr.io/v2/", status=200)
    rsps.head("https://ghcr.io/v2/org/img/manifests/1", status=405)
    transport, _ = _transport()
    response = transport.request("HEAD", "ghcr.io", "org/img", "/v2/org/img/manifests/1", allow_status=(404, 405))
    assert response.status_code == 405


def test_dns_failure_message(rsps: responses.RequestsMock) -> None:
    rsps.get("https://no-such-registry.example/v2/", body=requests.exceptions.ConnectionError(
        "HTTPSConnectionPool(host='no-such-registry.example', port=443): Max retries exceeded with url: /v2/ "
        "(Caused by NameResolutionError(\"Failed to resolve 'no-such-registry.example' ([Errno -2] Name or "
        "service not known)\"))"))
    transport, sleeps = _transport(max_retries=2)
    with pytest.raises(RegistryError) as info:
        transport.request("GET", "no-such-registry.example", "a", "/v2/a/manifests/1")
    assert str(info.value) == ("cannot reach no-such-registry.example: the host name does not resolve (DNS) (for a) - "
                               "check the registry name, your DNS and proxy settings")
    assert len(sleeps.waits) == 2


def test_tls_failure_message_and_no_http_fallback(rsps: responses.RequestsMock) -> None:
    rsps.get("https://registry.example.com/v2/", body=requests.exceptions.SSLError(
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"))
    transport, sleeps = _transport()
    with pytest.raises(RegistryError) as info:
        transport.request("GET", "registry.example.com", "a", "/v2/a/manifests/1")
    assert str(info.value) == ("cannot reach registry.example.com: certificate verify failed (for a) - install the "
                               "registry's CA certificate (REQUESTS_CA_BUNDLE), or list the registry under "
                               "insecure_registries if it has no valid certificate")
    assert len(rsps.calls) == 1  # not retried, never tried over plain http
    assert sleeps.waits == []


def test_timeout_message(rsps: responses.RequestsMock) -> None:
    rsps.get("https://ghcr.io/v2/", body=requests.exceptions.ReadTimeout("read timed out"))
    transport, sleeps = _transport(timeout=5.0, max_retries=1)
    with pytest.raises(RegistryError) as info:
        transport.request("GET", "ghcr.io", "a", "/v2/a/manifests/1")
    assert str(info.value) == ("cannot reach ghcr.io: no answer within 5s (for a) - check the network and proxy "
                               "settings (HTTPS_PROXY), or try again later")
    assert len(sleeps.waits) == 1


def test_loopback_falls_back_to_http(rsps: responses.RequestsMock) -> None:
    rsps.get("https://127.0.0.1:5000/v2/", body=requests.exceptions.SSLError("wrong version number"))
    rsps.get("http://127.0.0.1:5000/v2/", status=200)
    rsps.get("http://127.0.0.1:5000/v2/a/manifests/1", status=200, body=b"{}")
    transport, sleeps = _transport()
    transport.request("GET", "127.0.0.1:5000", "a", "/v2/a/manifests/1")
    transport.request("GET", "127.0.0.1:5000", "a", "/v2/a/manifests/1")
    # Both schemes are pinged at once (plain HTTP does not wait for TLS to fail), so in either order.
    assert sorted(c.request.url for c in rsps.calls[:2]) == ["http://127.0.0.1:5000/v2/",
                                                             "https://127.0.0.1:5000/v2/"]
    assert [c.request.url for c in rsps.calls[2:]] == ["http://127.0.0.1:5000/v2/a/manifests/1",
                                                      "http://127.0.0.1:5000/v2/a/manifests/1"]
    assert sleeps.waits == []
    # the failed TLS attempt got no HTTP answer, so it is not counted
    assert transport.request_count == 3


def test_loopback_prefers_https_when_both_answer(rsps: responses.RequestsMock) -> None:
    rsps.get("https://127.0.0.1:5000/v2/", status=200)
    rsps.get("http://127.0.0.1:5000/v2/", status=200)
    rsps.get("https://127.0.0.1:5000/v2/a/manifests/1", status=200, body=b"{}")
    transport, _ = _transport()
    transport.request("GET", "127.0.0.1:5000", "a", "/v2/a/manifests/1")
    for early in [t for t in threading.enumerate() if t.name == "pinrepro-ping"]:
        early.join(timeout=10)
    assert [c.request.url for c in rsps.calls if "/a/" in c.request.url] == ["https://127.0.0.1:5000/v2/a/manifests/1"]
    # the plain-HTTP ping asked alongside is discarded, and not counted
    assert transport.request_count == 2


def test_insecure_registry_falls_back_to_http_without_verify(rsps: responses.RequestsMock) -> None:
    rsps.get("https://registry.internal:5000/v2/", body=requests.exceptions.ConnectionError("Connection refused"))
    rsps.get("http://registry.internal:5000/v2/", status=200)
    rsps.get("http://registry.internal:5000/v2/a/manifests/1", status=200)
    transport, _ = _transport(insecure_registries=["registry.internal:5000"])
    transport.request("GET", "registry.internal:5000", "a", "/v2/a/manifests/1")
    assert rsps.calls[0].request.req_kwargs["verify"] is False  # type: ignore[attr-defined]
    assert rsps.calls[2].request.url == "http://registry.internal:5000/v2/a/manifests/1"


def test_connection_refused_on_a_real_loopback_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # nothing listens on the port now
    transport, sleeps = _transport(max_retries=2, timeout=5.0)
    with pytest.raises(RegistryError) as info:
        transport.request("GET", f"127.0.0.1:{port}", "team/app", "/v2/team/app/manifests/1")
    assert type(info.value) is RegistryUnreachable
    assert str(info.value) == (f"cannot reach 127.0.0.1:{port}: connection refused (for team/app) - check that the "
                               "registry is running and the host and port are right")
    assert len(sleeps.waits) == 2  # https once (no retry: http remains), http with 2 retries
    assert transport.request_count == 0
    # the host is remembered as down: the next lookup fails at once and names its own repository
    with pytest.raises(RegistryError) as info:
        transport.request("GET", f"127.0.0.1:{port}", "team/other", "/v2/team/other/manifests/1")
    assert str(info.value).startswith(f"cannot reach 127.0.0.1:{port}: connection refused (for team/other) - ")
    assert len(sleeps.waits) == 2


def test_ping_5xx_after_retries(rsps: responses.RequestsMock) -> None:
    rsps.get("https://ghcr.io/v2/", status=500)
    transport, sleeps = _transport(max_retries=1)
    with pytest.raises(RegistryError, match=r"^GET /v2/ on ghcr.io failed: 500 Internal Server Error after 1 retry - "):
        transport.request("GET", "ghcr.io", "a", "/v2/a/manifests/1")
    assert len(sleeps.waits) == 1


def test_netrc_is_never_used(rsps: responses.RequestsMock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text(f"machine ghcr.io login netrcuser password {PASSWORD}\n", encoding="utf-8")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    rsps.get("https://ghcr.io/v2/", status=200)
    rsps.get("https://ghcr.io/v2/a/manifests/1", status=200)
    transport, _ = _transport()
    transport.request("GET", "ghcr.io", "a", "/v2/a/manifests/1")
    assert all("Authorization" not in c.request.headers for c in rsps.calls)


def test_token_service_down_names_the_repository_and_registry(rsps: responses.RequestsMock) -> None:
    _hub_ping(rsps)
    rsps.get("https://auth.docker.io/token", status=503)
    transport, sleeps = _transport(max_retries=1)
    with pytest.raises(RegistryError) as info:
        transport.request("GET", "registry-1.docker.io", "library/x", "/v2/library/x/manifests/1")
    assert str(info.value) == ("token request to auth.docker.io (for library/x) failed (token service of "
                               "registry-1.docker.io): 503 Service Unavailable after 1 retry - the registry is having "
                               "trouble; try again later")
    assert len(sleeps.waits) == 1


def test_realm_that_is_not_a_url(rsps: responses.RequestsMock) -> None:
    rsps.get("https://registry.example.com/v2/", status=401, headers={"WWW-Authenticate": 'Bearer realm="/token"'})
    transport, _ = _transport()
    with pytest.raises(RegistryError) as info:
        transport.request("GET", "registry.example.com", "a/b", "/v2/a/b/manifests/1")
    assert str(info.value) == ("registry.example.com asked for a token from '/token', which is not an http(s) URL "
                               "(for a/b) - check the registry's auth configuration")


def test_preconnect_opens_the_connections_the_first_requests_use() -> None:
    """While a host is pinged, the first wave's connections open; the requests after it reuse them."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.settimeout(10)
        host = f"127.0.0.1:{listener.getsockname()[1]}"
        transport = Transport(AnonymousKeychain(), pool_size=8)
        try:
            transport.preconnect(host, 5)
            accepted = [listener.accept()[0] for _ in range(5)]
            for thread in [t for t in threading.enumerate() if t.name == "pinrepro-connect"]:
                thread.join(timeout=10)
            adapter = transport._session.get_adapter(f"http://{host}/v2/")
            pools = list(adapter.poolmanager.pools._container.values())  # type: ignore[attr-defined]
            idle = [c for pool in pools for c in pool.pool.queue if c is not None and c.sock is not None]
            assert len(idle) == 5  # kept in the pool the requests take their connections from
        finally:
            transport.close()
        for connection in accepted:
            connection.close()


def test_preconnect_connects_nowhere_when_the_http_layer_is_a_stand_in(rsps: responses.RequestsMock) -> None:
    transport, _ = _transport()
    transport.preconnect("ghcr.io", 5)
    assert [t for t in threading.enumerate() if t.name == "pinrepro-connect"] == []


def test_a_cookie_the_registry_sets_goes_with_the_next_requests(rsps: responses.RequestsMock) -> None:
    """A load balancer's sticky-session cookie is kept for the requests after it, as requests' Session keeps it."""
    rsps.get("https://ghcr.io/v2/", status=200, headers={"Set-Cookie": "lb=node-2; Path=/"})
    rsps.get("https://ghcr.io/v2/org/img/manifests/1", status=200)
    transport, _ = _transport()
    transport.request("GET", "ghcr.io", "org/img", "/v2/org/img/manifests/1")
    assert "Cookie" not in rsps.calls[0].request.headers
    assert rsps.calls[1].request.headers["Cookie"] == "lb=node-2"


def test_the_early_plain_http_ping_is_not_retried_when_https_answers(rsps: responses.RequestsMock) -> None:
    rsps.get("https://127.0.0.1:5000/v2/", status=200)
    rsps.get("http://127.0.0.1:5000/v2/", body=requests.exceptions.ConnectionError("connection reset"))
    rsps.get("https://127.0.0.1:5000/v2/a/manifests/1", status=200, body=b"{}")
    transport, sleeps = _transport()
    transport.request("GET", "127.0.0.1:5000", "a", "/v2/a/manifests/1")
    for early in [t for t in threading.enumerate() if t.name == "pinrepro-ping"]:
        early.join(timeout=10)
    assert sleeps.waits == []  # sent once: no retries behind the scheme that won
    assert transport.request_count == 2


def test_preconnect_opens_no_tls_connections() -> None:
    """A TLS 1.3 server sends session tickets after the handshake; urllib3 would take such an idle connection for a
    dropped one and open another, so only plain-HTTP (loopback, insecure) hosts get connections ahead."""
    transport = Transport(AnonymousKeychain(), pool_size=8)
    try:
        transport.preconnect("registry.example.com", 5)
        assert [t for t in threading.enumerate() if t.name == "pinrepro-connect"] == []
    finally:
        transport.close()


def test_deadline_watchdog_wakes_for_a_sooner_deadline_armed_while_it_sleeps() -> None:
    """The watchdog sleeps until the first deadline and is woken only when a new one passes sooner: a manifest
    request armed while a layer download's 30-minute deadline is the first must still be cut at its own."""
    watchdog = deadline._Watchdog()
    download, download_peer = socket.socketpair()
    request, request_peer = socket.socketpair()
    with download, download_peer, request, request_peer:
        watchdog.arm(deadline.Scope(1800.0, time.monotonic() + 1800.0), download)
        # Asleep until the download's deadline (Condition keeps its sleepers in _waiters): the wake-up is tested.
        assert wait_until(lambda: len(watchdog._wake._waiters) == 1)  # type: ignore[attr-defined]
        short = deadline.Scope(0.2, time.monotonic() + 0.2)
        watchdog.arm(short, request)
        request.settimeout(10)
        assert request.recv(1) == b""  # shut down by the watchdog, not the 10 s timeout (which raises)
        assert short.fired
        download_peer.sendall(b"x")
        assert download.recv(1) == b"x"  # the download's connection is untouched


def test_concurrent_unverified_requests_never_show_the_insecure_warning() -> None:
    """Hosts listed as insecure get unverified requests, and urllib3's InsecureRequestWarning would only repeat the
    user's own setting. Two such requests at once, the first ending while the second connects: the warning the
    second raises then (urllib3 warns once connected) is still not shown."""
    first_waits, second_in, first_done = threading.Event(), threading.Event(), threading.Event()

    def interleaving(request: requests.PreparedRequest, **kwargs: object) -> requests.Response:
        if str(request.url).endswith("/first"):
            first_waits.set()
            assert second_in.wait(10)
        else:
            second_in.set()
            assert first_done.wait(10)
            warnings.warn("Unverified HTTPS request", urllib3.exceptions.InsecureRequestWarning, stacklevel=1)
        answer = requests.Response()
        answer.status_code = 200
        return answer

    def send(path: str) -> None:
        session.send_once(unverified, "GET", f"https://insecure.example{path}", {}, stream=True, data=None,
                          timeout=5.0, seconds=10.0, verify=False, max_body=1024)

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        unverified = session.new_session("pinrepro/test", 2)
        unverified.send = interleaving  # type: ignore[method-assign]  # urllib3's connect and warning, in order
        first = threading.Thread(target=lambda: (send("/first"), first_done.set()))
        first.start()
        assert first_waits.wait(10)
        send("/second")
        first.join(timeout=10)
    assert [w for w in shown if issubclass(w.category, urllib3.exceptions.InsecureRequestWarning)] == []
