"""The one HTTP session to registries: auth handshake, token cache, retries, redirects, errors.

Handshake (go-containerregistry ``pkg/v1/remote/transport``; FACTS.md "Auth handshake"): ``GET /v2/`` once
per host; 200 means anonymous, 401 with ``Basic`` means basic auth with the keychain's credential, 401 with
``Bearer realm=...,service=...,scope=...`` means the token flow. Tokens are cached per (host, scope) and
reused until shortly before they expire. Authorization is never sent to another host: redirects (blob
downloads go to S3/CDN hosts) are followed by hand. Error messages name hosts and repositories only; tokens,
passwords and headers never reach a message.
"""

from __future__ import annotations

import base64
import random
import re
import threading
import time
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
import urllib3

from pinrepro import __version__
from pinrepro.errors import RegistryError
from pinrepro.reference import DOCKER_HUB, DOCKER_HUB_API_HOST, is_loopback_host
from pinrepro.registry import deadline
from pinrepro.registry.authn import Credential, Keychain
from pinrepro.registry.body import buffer_capped, loads, plain_http_refused, problem_with_url
from pinrepro.registry.challenge import ANONYMOUS, Challenge, parse_challenge, repository_scope, scope_repositories
from pinrepro.registry.errors import (
    ERROR_BODY_LIMIT,
    auth_error,
    error_codes,
    for_repository,
    for_suffix,
    host_label,
    not_found,
    retry_after,
    unreachable,
)
from pinrepro.scrub import remember

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 10
_BACKOFF_BASE_S = 0.5
# distribution token spec: "if expires_in is absent, assume 60 seconds"; a shorter value is treated as 60.
_DEFAULT_TOKEN_LIFETIME_S = 60.0
_RETRIES_HEADER = "X-Pinrepro-Retries"
# RFC 6750 b64token, loosened to any visible ASCII: what an Authorization header can carry.
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")


@dataclass
class _Token:
    value: str = field(repr=False)
    expires_at: float


@dataclass
class _HostState:
    scheme: str = "https"
    challenge: Challenge | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    # scope a repository needs when a 401 asked for something else than the default pull scope
    scopes: dict[str, str] = field(default_factory=dict)
    # the error of a ping that failed to connect, after its retries
    unreachable: RegistryError | None = None


class _NoNetrc(requests.auth.AuthBase):
    """Set as the session's auth so requests never adds ~/.netrc credentials (they would follow redirects)."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


class _Session(requests.Session):
    """Redirects are followed by hand (Transport._send_following_redirects, which checks each Location);
    requests would otherwise parse Location even with allow_redirects=False, and crash on a bad one."""

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        return None


class Transport:
    """Sends registry requests with the right scheme and credentials; raises pinrepro errors."""

    def __init__(self, keychain: Keychain, *, insecure_registries: Iterable[str] = (), timeout: float | None = None,
                 max_retries: int = 4, max_retry_wait: float = 30.0, sleep: Callable[[float], None] = time.sleep,
                 user_agent: str = f"pinrepro/{__version__}", clock: Callable[[], float] = time.monotonic,
                 pool_size: int = 16, total_deadline: float | None = None) -> None:
        self.keychain = keychain
        self.insecure_registries = frozenset(h.strip().lower() for h in insecure_registries)
        # Defaults suited to CI, each overridable from the environment (deadline.py lists them).
        self.timeout = timeout if timeout is not None else deadline.setting("PINREPRO_HTTP_TIMEOUT", 30.0)
        self.total_deadline = total_deadline if total_deadline is not None \
            else deadline.setting("PINREPRO_HTTP_DEADLINE", 120.0)
        self.blob_deadline = deadline.setting("PINREPRO_BLOB_DEADLINE", 1800.0)
        self.max_body = int(deadline.setting("PINREPRO_MAX_BODY", float(8 << 20)))
        self._backoff_base = deadline.setting("PINREPRO_BACKOFF_S", _BACKOFF_BASE_S)
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self._sleep = sleep
        self._clock = clock
        self._random = random.Random()
        self._session = _Session()
        self._session.auth = _NoNetrc()
        self._session.headers["User-Agent"] = user_agent
        adapter = requests.adapters.HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        deadline.watch(adapter)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._hosts: dict[str, _HostState] = {}
        self._tokens: dict[tuple[str, str], _Token] = {}
        self._credentials: dict[str, Credential | None] = {}
        self._lock = threading.Lock()
        self._count = 0
        self._deadline_s = threading.local()  # a longer deadline for the layer download this thread sends

    # -- bookkeeping -------------------------------------------------------------------------------

    @property
    def request_count(self) -> int:
        """HTTP requests a server answered: pings, tokens, retries and redirects included."""
        with self._lock:
            return self._count

    def close(self) -> None:
        self._session.close()

    def __repr__(self) -> str:
        return f"Transport(hosts={sorted(self._hosts)!r}, requests={self.request_count})"

    def _host(self, api_host: str) -> _HostState:
        with self._lock:
            state = self._hosts.get(api_host)
            if state is None:
                state = self._hosts[api_host] = _HostState()
            return state

    def _credential(self, api_host: str) -> Credential | None:
        with self._lock:
            if api_host in self._credentials:
                return self._credentials[api_host]
        credential = self.keychain.resolve(api_host)
        if credential is not None:
            remember(credential.secret)  # a server may echo it in an error text: scrub it from every message
        with self._lock:
            self._credentials[api_host] = credential
        return credential

    # -- public API --------------------------------------------------------------------------------

    def prefetch_tokens(self, api_host: str, repositories: Sequence[str]) -> None:
        """Fetch one token carrying a pull scope for every repository (one request for all of them)."""
        state = self._ping(api_host)
        challenge = state.challenge
        if challenge is None or challenge.scheme != "bearer":
            return
        with state.lock:
            wanted = []
            for repository in dict.fromkeys(repositories):
                scope = state.scopes.get(repository, repository_scope(repository))
                if self._cached_token(api_host, scope) is None:
                    wanted.append(scope)
            if wanted:
                self._fetch_token(api_host, challenge, wanted, repositories[0])

    def request(self, method: str, api_host: str, repository: str, path: str, *,
                headers: Mapping[str, str] | None = None, stream: bool = False,
                allow_status: Collection[int] = (), upstream: str | None = None,
                long_body: bool = False) -> requests.Response:
        """Send ``method`` to ``path`` on the registry; return a 2xx response (or one in ``allow_status``).

        ``upstream`` names the registry a mirror stands in for, so messages can name both. ``long_body``: a
        layer download, which gets PINREPRO_BLOB_DEADLINE instead of the per-request deadline.
        Anything else raises AuthError / NotFoundError / RegistryError.
        """
        state = self._ping(api_host, repository)
        url = f"{state.scheme}://{api_host}{path}"
        retried_auth = False
        while True:
            try:
                auth = self._authorization(api_host, repository, state)
                self._deadline_s.value = self.blob_deadline if long_body else None
                try:
                    response = self._send_following_redirects(method, url, api_host, headers, auth, stream,
                                                              repository, upstream)
                finally:
                    self._deadline_s.value = None
            except RegistryError as exc:
                raise for_repository(exc, repository) from None
            if response.status_code == 401 and not retried_auth and self._renew_auth(api_host, repository,
                                                                                    state, response, auth):
                retried_auth = True
                response.close()
                continue
            break
        if response.status_code < 300 or response.status_code in allow_status:
            return response
        try:
            # "sent" means the user's credentials went out (directly, or to get the token), not an anonymous token.
            sent = auth is not None and self._credential(api_host) is not None
            raise self._error_for(response, method, api_host, repository, path, upstream, sent=sent)
        finally:
            response.close()

    # -- handshake ---------------------------------------------------------------------------------

    def _ping(self, api_host: str, repository: str = "") -> _HostState:
        state = self._host(api_host)
        if state.challenge is not None:
            return state
        with state.lock:
            if state.challenge is not None:
                return state
            if state.unreachable is not None:
                # Tried and failed with every retry already: later lookups fail fast, naming their repository.
                raise for_repository(state.unreachable, repository)
            insecure = api_host.lower() in self.insecure_registries
            # Plain HTTP only for loopback (as Docker does) or hosts the user listed as insecure.
            schemes = ["https", "http"] if insecure or is_loopback_host(api_host) else ["https"]
            first_error: RegistryError | None = None
            for index, scheme in enumerate(schemes):
                last = index == len(schemes) - 1
                try:
                    response = self._send_with_retries("GET", f"{scheme}://{api_host}/v2/", {}, False,
                                                       retry_connection_errors=last)
                except RegistryError as exc:
                    # Plain HTTP got further than TLS (something answered): its failure is the real cause.
                    first_error = exc if first_error is None or (last and "connection refused" not in exc.what) \
                        else first_error
                    if last:
                        state.unreachable = first_error
                        raise for_repository(first_error, repository) from None
                    continue
                status = response.status_code
                response.close()
                if scheme == "http" and status in RETRY_STATUSES:
                    # The server answered: its own error is the cause, not the failed https attempt before it.
                    raise self._error_for(response, "GET", api_host, "", "/v2/", None, sent=False)
                if scheme == "http" and status not in (200, 401):
                    # A TLS server answering plain HTTP with 400: the https error is the real one.
                    state.unreachable = first_error or RegistryError(f"cannot reach {api_host}: /v2/ answered {status}")
                    raise for_repository(state.unreachable, repository)
                state.scheme = scheme
                if status == 401:
                    challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
                    state.challenge = challenge if challenge and challenge.scheme in ("bearer", "basic") \
                        else ANONYMOUS
                elif status in RETRY_STATUSES:
                    raise self._error_for(response, "GET", api_host, "", "/v2/", None, sent=False)
                else:
                    # 200, or a registry with an unusual /v2/: the real request's answer will tell.
                    state.challenge = ANONYMOUS
                return state
            raise AssertionError("unreachable")  # pragma: no cover

    def _authorization(self, api_host: str, repository: str, state: _HostState) -> str | None:
        challenge = state.challenge
        if challenge is None or challenge.scheme == "none":
            return None
        if challenge.scheme == "basic":
            credential = self._credential(api_host)
            if credential is None or credential.identity_token:
                return None
            return _basic(credential)
        scope = state.scopes.get(repository, repository_scope(repository))
        token = self._cached_token(api_host, scope)
        if token is None:
            with state.lock:
                token = self._cached_token(api_host, scope)
                if token is None:
                    self._fetch_token(api_host, challenge, [scope], repository)
                    token = self._cached_token(api_host, scope)
        return f"Bearer {token}" if token else None

    def _renew_auth(self, api_host: str, repository: str, state: _HostState, response: requests.Response,
                    sent: str | None) -> bool:
        """After a 401: adopt its challenge and fetch a token for the scope it names. True = retry once."""
        challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
        if challenge is None:
            return False
        with state.lock:
            if challenge.scheme == "bearer":
                if not challenge.realm:
                    return False
                # A registry that answered /v2/ anonymously may still want tokens per repository.
                state.challenge = challenge if state.challenge is None or state.challenge.scheme != "bearer" \
                    else Challenge("bearer", challenge.realm, challenge.service or state.challenge.service)
                scope = challenge.scope or repository_scope(repository)
                if repository and repository not in scope_repositories(scope) and challenge.scope:
                    scope = repository_scope(repository)
                if repository:
                    state.scopes[repository] = scope
                with self._lock:
                    self._tokens.pop((api_host, scope), None)
                self._fetch_token(api_host, state.challenge, [scope], repository)
                return True
            if challenge.scheme == "basic" and sent is None:
                credential = self._credential(api_host)
                if credential is None or credential.identity_token:
                    return False
                state.challenge = Challenge("basic", challenge.realm)
                return True
        return False

    def _cached_token(self, api_host: str, scope: str) -> str | None:
        with self._lock:
            token = self._tokens.get((api_host, scope))
        if token is None or self._clock() >= token.expires_at:
            return None
        return token.value

    def _fetch_token(self, api_host: str, challenge: Challenge, scopes: list[str], repository: str) -> None:
        credential = self._credential(api_host)
        realm = challenge.realm
        if not realm.startswith(("https://", "http://")) or problem_with_url(realm):
            raise RegistryError(f"{api_host} asked for a token from '{realm}', which is not an http(s) URL"
                                f"{for_suffix(repository)}", fix="check the registry's auth configuration")
        if realm.startswith("http://") and plain_http_refused(api_host, self._host(api_host).scheme,
                                                              self.insecure_registries):
            raise RegistryError(f"{api_host} asked for a token from plain-HTTP {urlsplit(realm).netloc}"
                                f"{for_suffix(repository)}; refused, credentials would travel in clear text",
                                fix="the registry's token realm must be https (or list the registry under "
                                    "insecure_registries if you accept that)")
        headers: dict[str, str] = {}
        if credential is not None and credential.identity_token:
            # An identity token is an OAuth2 refresh token (distribution docs/spec/auth/oauth.md).
            form = [("grant_type", "refresh_token"), ("refresh_token", credential.secret),
                    ("client_id", "pinrepro"), ("scope", " ".join(scopes))]
            if challenge.service:
                form.insert(1, ("service", challenge.service))
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            response = self._send_with_retries("POST", realm, headers, False, data=urlencode(form))
        else:
            parts = urlsplit(realm)
            # The realm may carry its own query string: merge, don't overwrite.
            query = parse_qsl(parts.query, keep_blank_values=True)
            if challenge.service:
                query.append(("service", challenge.service))
            query.extend(("scope", scope) for scope in scopes)
            url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
            if credential is not None:
                headers["Authorization"] = _basic(credential)
            response = self._send_with_retries("GET", url, headers, False)
        received = self._clock()
        with response:
            if response.status_code in (401, 403):
                raise auth_error(response.status_code, api_host, repository, credential is not None,
                                  token_endpoint=urlsplit(realm).netloc)
            if response.status_code >= 300:
                raise self._error_for(response, "GET", api_host, repository, "", None, sent=credential is not None,
                                      what=f"token request to {urlsplit(realm).netloc}{for_suffix(repository)} failed "
                                           f"(token service of {api_host})")
            try:
                body = loads(response.content)
            except ValueError:
                body = None
        value = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise RegistryError(f"the token service {urlsplit(realm).netloc} for {api_host} answered without a token"
                                f"{for_suffix(repository)}", fix="check the registry's auth configuration")
        remember(value)
        if not _TOKEN_CHARS.fullmatch(value):
            raise RegistryError(f"the token service {urlsplit(realm).netloc} for {api_host} sent a token with "
                                f"characters an HTTP header cannot carry{for_suffix(repository)}",
                                fix="check the registry's auth configuration")
        assert isinstance(body, dict)
        lifetime = body.get("expires_in")
        try:
            seconds = max(float(lifetime), _DEFAULT_TOKEN_LIFETIME_S) if lifetime is not None \
                else _DEFAULT_TOKEN_LIFETIME_S
        except (TypeError, ValueError):
            seconds = _DEFAULT_TOKEN_LIFETIME_S
        # issued_at is ignored on purpose: it is the server's clock; counting from receipt survives clock skew.
        # Renew a little early so a token does not expire in flight.
        expires_at = received + seconds - min(10.0, seconds / 10)
        token = _Token(value, expires_at)
        with self._lock:
            for scope in scopes:
                self._tokens[(api_host, scope)] = token

    # -- sending -----------------------------------------------------------------------------------

    def _verify(self, url: str) -> bool:
        return urlsplit(url).netloc.lower() not in self.insecure_registries

    def _send_once(self, method: str, url: str, headers: Mapping[str, str], stream: bool,
                   data: str | None = None) -> requests.Response:
        verify = self._verify(url)
        seconds = getattr(self._deadline_s, "value", None) or self.total_deadline
        # Always streamed from requests' side: a body we keep is read here, with a size cap, under the deadline.
        with deadline.scope(seconds) as limit:
            try:
                if verify:
                    response = self._session.request(method, url, headers=dict(headers), stream=True, data=data,
                                                     timeout=self.timeout, allow_redirects=False)
                else:
                    with warnings.catch_warnings():
                        # The user listed this host as insecure; the warning would only repeat that.
                        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
                        response = self._session.request(method, url, headers=dict(headers), stream=True,
                                                         data=data, timeout=self.timeout, allow_redirects=False,
                                                         verify=False)
                response.pinrepro_deadline = limit  # type: ignore[attr-defined]
                if not stream or response.status_code >= 300:
                    error = response.status_code >= 300
                    buffer_capped(response, ERROR_BODY_LIMIT if error else self.max_body, urlsplit(url).netloc,
                                  truncate=error)
            except requests.exceptions.RequestException as exc:
                if limit.fired:
                    raise _DeadlinePassed(seconds) from exc
                raise
        with self._lock:
            self._count += 1
        return response

    def _send_with_retries(self, method: str, url: str, headers: Mapping[str, str], stream: bool, *,
                           data: str | None = None, retry_connection_errors: bool = True) -> requests.Response:
        """Send, retrying connection errors and 408/429/5xx with backoff, bounded in count and total wait."""
        waited = 0.0
        attempt = 0
        while True:
            try:
                response = self._send_once(method, url, headers, stream, data)
            except _DeadlinePassed as exc:
                # Not retried: a server slow enough to miss it once would only make the wait a multiple.
                raise RegistryError(f"{urlsplit(url).netloc} did not send a complete answer within {exc.seconds:g}s",
                                    fix="the server is too slow or stalled; try again later, or raise "
                                        "PINREPRO_HTTP_DEADLINE") from None
            except requests.exceptions.RequestException as exc:
                transient = isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)) \
                    and not isinstance(exc, requests.exceptions.SSLError)
                wait = self._backoff(attempt)
                if not (transient and retry_connection_errors) or attempt >= self.max_retries \
                        or waited + wait > self.max_retry_wait:
                    raise unreachable(urlsplit(url).netloc, exc, self.timeout) from None
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                asked = retry_after(response.headers.get("Retry-After"))
                wait = asked if asked is not None else self._backoff(attempt)
                if attempt >= self.max_retries or waited + wait > self.max_retry_wait:
                    # Remembered for the error message (how many retries were made before giving up).
                    response.headers[_RETRIES_HEADER] = str(attempt)
                    return response
                response.close()
            self._sleep(wait)
            waited += wait
            attempt += 1

    def _backoff(self, attempt: int) -> float:
        # Exponential backoff with jitter so parallel workers do not retry in lock step.
        return float(self._backoff_base * (2 ** attempt) * self._random.uniform(0.5, 1.0))

    def _send_following_redirects(self, method: str, url: str, api_host: str, headers: Mapping[str, str] | None,
                                  auth: str | None, stream: bool, repository: str,
                                  upstream: str | None) -> requests.Response:
        origin = urlsplit(url)
        current = url
        for _ in range(_MAX_REDIRECTS + 1):
            sent = dict(headers or {})
            target = urlsplit(current)
            # Credentials only to the registry itself: blob redirects go to S3/CDN hosts (FACTS.md).
            if auth is not None and (target.netloc, target.scheme) == (origin.netloc, origin.scheme):
                sent["Authorization"] = auth
            response = self._send_with_retries(method, current, sent, stream)
            if response.status_code not in _REDIRECT_STATUSES or "Location" not in response.headers:
                return response
            location = response.headers["Location"]
            response.close()
            try:
                current = urljoin(current, location)
                problem = problem_with_url(current)
            except ValueError as exc:
                problem = f"the URL does not parse ({exc})"
            if problem:
                raise RegistryError(f"{host_label(api_host, upstream)} redirected {repository} to "
                                    f"'{location}', which pinrepro cannot follow: {problem}",
                                    fix="check the registry or proxy configuration")
            if urlsplit(current).scheme == "http" and origin.scheme == "https" and plain_http_refused(
                    api_host, "https", self.insecure_registries):
                raise RegistryError(f"{host_label(api_host, upstream)} redirected {repository} from https to "
                                    f"plain-HTTP {urlsplit(current).netloc}; refused",
                                    fix="the registry's storage must be served over https (or list the "
                                        "registry under insecure_registries if you accept plain HTTP)")
            if response.status_code == 303 and method != "HEAD":
                method = "GET"
        raise RegistryError(f"{host_label(api_host, upstream)} redirected more than {_MAX_REDIRECTS} times "
                            f"for {repository}", fix="check the registry or proxy configuration")

    # -- errors ------------------------------------------------------------------------------------

    def _error_for(self, response: requests.Response, method: str, api_host: str, repository: str, path: str,
                   upstream: str | None, *, sent: bool, what: str | None = None) -> RegistryError:
        status = response.status_code
        codes, messages = error_codes(response, method)
        host = host_label(api_host, upstream)
        retries = response.headers.get(_RETRIES_HEADER, "0")
        retried = f" after {retries} {'retry' if retries == '1' else 'retries'}"
        if what is None and status in (401, 403):
            return auth_error(status, api_host, repository, sent, upstream=upstream)
        if what is None and status == 404:
            return not_found(api_host, repository, path, codes, upstream)
        detail = f" ({'; '.join(messages)})" if messages else ""
        subject = what or f"{method} {path} on {host} failed"
        if status == 429:
            remaining = response.headers.get("ratelimit-remaining")
            limit = response.headers.get("ratelimit-limit")
            header = f"; ratelimit-remaining: {remaining}" if remaining is not None else ""
            header += f", ratelimit-limit: {limit}" if limit is not None else ""
            if response.headers.get("Retry-After"):
                header += f"; Retry-After: {response.headers['Retry-After']}"
            if api_host == DOCKER_HUB_API_HOST or upstream == DOCKER_HUB:
                return RegistryError(
                    f"{subject}: 429 Too Many Requests - Docker Hub's pull rate limit is used up{header}",
                    fix="wait until the limit resets (see the ratelimit-remaining header), log in with "
                        "`docker login` for a higher limit, or use a mirror")
            return RegistryError(f"{subject}: 429 Too Many Requests{retried}{header}",
                                 fix="wait and try again, or ask the registry's operators about its rate limit")
        if status >= 500 or status == 408:
            return RegistryError(f"{subject}: {status} {response.reason or ''}".rstrip() +
                                 f"{retried}{detail}",
                                 fix="the registry is having trouble; try again later")
        return RegistryError(f"{subject}: {status} {response.reason or ''}".rstrip() + detail,
                             fix="check the image reference and the registry")


def _basic(credential: Credential) -> str:
    raw = f"{credential.username}:{credential.secret}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


class _DeadlinePassed(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds
