"""The one HTTP session to registries: auth handshake, token cache, retries, redirects.

Handshake (distribution's token auth, https://distribution.github.io/distribution/spec/auth/token/, as
go-containerregistry ``pkg/v1/remote/transport`` does it): ``GET /v2/`` once per host; 200 means anonymous,
401 with ``Basic`` means basic auth with the keychain's credential, 401 with ``Bearer realm=...,service=...``
means the token flow. Tokens are cached per (host, scope) and reused until shortly before they expire.
Authorization is never sent to another host: redirects (blob downloads go to S3/CDN hosts) are followed by
hand. The pieces: ping.py (the first ``GET /v2/``: scheme and challenge), challenge.py (WWW-Authenticate),
token.py (the token request and answer), retry.py (when to send again), session.py (one send under a
deadline), errors.py (every error, naming hosts and repositories only; tokens, passwords and headers never
reach one).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import requests

from pinrepro import __version__
from pinrepro.errors import RegistryError
from pinrepro.reference import is_loopback_host
from pinrepro.registry import deadline, ping, retry, session, token
from pinrepro.registry.authn import Credential, Keychain
from pinrepro.registry.body import deadline_passed, plain_http_refused, problem_with_url
from pinrepro.registry.challenge import Challenge, parse_challenge, repository_scope, scope_repositories
from pinrepro.registry.errors import (
    auth_error,
    for_repository,
    for_suffix,
    host_label,
    status_error,
    unreachable,
)
from pinrepro.scrub import remember

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 10


@dataclass
class _HostState:
    scheme: str = "https"
    challenge: Challenge | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    # scope a repository needs when a 401 asked for something else than the default pull scope
    scopes: dict[str, str] = field(default_factory=dict)
    # the error of a ping that failed to connect, after its retries
    unreachable: RegistryError | None = None


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
        self._backoff_base = deadline.setting("PINREPRO_BACKOFF_S", retry.DEFAULT_BACKOFF_S)
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self._sleep = sleep
        self._clock = clock
        self._session = session.new_session(user_agent, pool_size)
        self._hosts: dict[str, _HostState] = {}
        self._tokens: dict[tuple[str, str], token.Token] = {}
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

    def preconnect(self, api_host: str, connections: int) -> None:
        """Before the first ping of a loopback or insecure ``api_host``: open ``connections`` plain-HTTP connections
        in the background for the requests after it. Not TLS ones: a TLS 1.3 server sends its session tickets after
        the handshake, and urllib3 takes an idle connection with unread bytes for a dropped one and opens another."""
        plain = api_host.lower() in self.insecure_registries or is_loopback_host(api_host)
        if plain and self._host(api_host).challenge is None:
            url = f"http://{api_host}/v2/"
            session.preconnect(self._session, url, connections, verify=self._verify(url), timeout=self.timeout)

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
            raise status_error(response, method, api_host, repository, path, upstream, sent=sent)
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
            return ping.first_answer(self, api_host, repository, state)

    def _authorization(self, api_host: str, repository: str, state: _HostState) -> str | None:
        challenge = state.challenge
        if challenge is None or challenge.scheme == "none":
            return None
        if challenge.scheme == "basic":
            credential = self._credential(api_host)
            if credential is None or credential.identity_token:
                return None
            return token.basic(credential)
        scope = state.scopes.get(repository, repository_scope(repository))
        cached = self._cached_token(api_host, scope)
        if cached is None:
            with state.lock:
                cached = self._cached_token(api_host, scope)
                if cached is None:
                    self._fetch_token(api_host, challenge, [scope], repository)
                    cached = self._cached_token(api_host, scope)
        return f"Bearer {cached}" if cached else None

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
            found = self._tokens.get((api_host, scope))
        if found is None or self._clock() >= found.expires_at:
            return None
        return found.value

    def _fetch_token(self, api_host: str, challenge: Challenge, scopes: list[str], repository: str) -> None:
        credential = self._credential(api_host)
        realm_host = token.check_realm(api_host, challenge.realm, repository, self._host(api_host).scheme,
                                       self.insecure_registries)
        asked = token.token_request(challenge, scopes, credential)
        response = self._send_with_retries(asked.method, asked.url, asked.headers, False, data=asked.data)
        received = self._clock()
        with response:
            if response.status_code in (401, 403):
                raise auth_error(response.status_code, api_host, repository, credential is not None,
                                 token_endpoint=realm_host)
            if response.status_code >= 300:
                raise status_error(response, "GET", api_host, repository, "", None, sent=credential is not None,
                                   what=f"token request to {realm_host}{for_suffix(repository)} failed "
                                        f"(token service of {api_host})")
            fresh = token.read_token(response.content, realm_host, api_host, repository, received)
        with self._lock:
            for scope in scopes:
                self._tokens[(api_host, scope)] = fresh

    # -- sending -----------------------------------------------------------------------------------

    def _verify(self, url: str) -> bool:
        return urlsplit(url).netloc.lower() not in self.insecure_registries

    def _send_once(self, method: str, url: str, headers: Mapping[str, str], stream: bool,
                   data: str | None = None, tally: list[int] | None = None) -> requests.Response:
        seconds = getattr(self._deadline_s, "value", None) or self.total_deadline
        response = session.send_once(self._session, method, url, headers, stream=stream, data=data,
                                     timeout=self.timeout, seconds=seconds, verify=self._verify(url),
                                     max_body=self.max_body)
        if tally is not None:
            tally.append(1)  # counted by its caller, if what it asked is used
        else:
            self._counted(1)
        return response

    def _counted(self, answers: int) -> None:
        with self._lock:
            self._count += answers

    def _send_with_retries(self, method: str, url: str, headers: Mapping[str, str], stream: bool, *,
                           data: str | None = None, retry_connection_errors: bool = True,
                           tally: list[int] | None = None) -> requests.Response:
        """Send; after a connection error or a 408/429/5xx ask the retry policy whether and when to send again.

        The answer given up on carries the policy on ``response.raw.retries`` (urllib3's place for it), so its
        error can say how many retries were made.
        """
        attempt = retry.policy(self.max_retries, self._backoff_base)
        waited = 0.0
        while True:
            try:
                response = self._send_once(method, url, headers, stream, data, tally)
            except session.DeadlinePassed as exc:
                # Not retried: a server slow enough to miss it once would only make the wait a multiple.
                raise deadline_passed(urlsplit(url).netloc, exc.seconds) from None
            except requests.exceptions.RequestException as exc:
                following = retry.next_attempt(attempt, method, url, waited=waited, budget=self.max_retry_wait,
                                               error=exc) \
                    if retry_connection_errors and retry.transient(exc) else None
                if following is None:
                    raise unreachable(urlsplit(url).netloc, exc, self.timeout) from None
            else:
                if not attempt.is_retry(method, response.status_code):
                    return response
                following = retry.next_attempt(attempt, method, url, waited=waited, budget=self.max_retry_wait,
                                               response=response.raw)
                if following is None:
                    response.raw.retries = attempt
                    return response
                response.close()
            attempt, wait = following
            self._sleep(wait)
            waited += wait

    def _send_following_redirects(self, method: str, url: str, api_host: str, headers: Mapping[str, str] | None,
                                  auth: str | None, stream: bool, repository: str,
                                  upstream: str | None) -> requests.Response:
        # Redirects are followed here, not by requests, so that credentials never follow a redirect to another
        # host: blob downloads are redirected to S3/CDN hosts, which must not see the registry's token.
        origin = urlsplit(url)
        current = url
        for _ in range(_MAX_REDIRECTS + 1):
            sent = dict(headers or {})
            target = urlsplit(current)
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

