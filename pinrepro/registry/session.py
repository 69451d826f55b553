"""One HTTP exchange with a registry host: requests' session as pinrepro sets it up, and one send under a deadline.

No ~/.netrc credentials (they would follow redirects), no redirects followed by requests (the transport
follows them itself, checking each Location), every connection watched by deadline.py, every kept body read
here with a size cap.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from pinrepro.registry import deadline
from pinrepro.registry.body import buffer_capped
from pinrepro.registry.errors import ERROR_BODY_LIMIT


class DeadlinePassed(Exception):
    """The request's total deadline cut it (connect, headers and body together)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


class _NoNetrc(requests.auth.AuthBase):
    """Set as the session's auth so requests never adds ~/.netrc credentials (they would follow redirects)."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


class _Session(requests.Session):
    """Redirects are followed by hand (Transport._send_following_redirects, which checks each Location);
    requests would otherwise parse Location even with allow_redirects=False, and crash on a bad one."""

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[object, ...], Any] = {}

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        return None

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> Any:
        """requests' own, read once per scheme and host: it scans the whole environment (proxies, no_proxy, CA
        bundles) on every request, which cost a lock of hundreds of images more CPU than its own work (#15).
        The environment does not change while pinrepro runs."""
        parts = urlsplit(url.decode() if isinstance(url, bytes) else url or "")
        key = (parts.scheme, parts.netloc, repr(proxies), stream, verify, cert)
        settings = self._environment.get(key)
        if settings is None:
            settings = self._environment[key] = super().merge_environment_settings(url, proxies, stream, verify,
                                                                                   cert)
        return dict(settings)


def new_session(user_agent: str, pool_size: int) -> requests.Session:
    """A session with ``pool_size`` keep-alive connections per host, each watched by deadline.py."""
    session = _Session()
    session.auth = _NoNetrc()
    session.headers["User-Agent"] = user_agent
    # Requests go unverified only to hosts the user listed as insecure (Transport._verify): urllib3's warning would
    # only repeat that. Once, for the process: a catch_warnings around each request swapped the process-wide
    # filters, and concurrent requests restored each other's, so the warning showed now and then.
    warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
    # Retries are the transport's (registry/retry.py): each attempt gets its own deadline.
    adapter = requests.adapters.HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    deadline.watch(adapter)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def send_once(session: requests.Session, method: str, url: str, headers: Mapping[str, str], *, stream: bool,
              data: str | None, timeout: float, seconds: float, verify: bool, max_body: int) -> requests.Response:
    """Send one request, done within ``seconds``; a body not streamed (or an error's) is read, capped, here."""
    # Always streamed from requests' side: a body we keep is read here, with a size cap, under the deadline.
    with deadline.scope(seconds) as limit:
        try:
            settings = session.merge_environment_settings(url, {}, True, verify, None)
            response = session.send(_prepare(session, method, url, headers, data), timeout=timeout,
                                    allow_redirects=False, **settings)
            response.pinrepro_deadline = limit  # type: ignore[attr-defined]
            if not stream or response.status_code >= 300:
                error = response.status_code >= 300
                buffer_capped(response, ERROR_BODY_LIMIT if error else max_body, urlsplit(url).netloc,
                              truncate=error)
        except requests.exceptions.RequestException as exc:
            if limit.fired:
                raise DeadlinePassed(seconds) from exc
            raise
    return response


def _prepare(session: requests.Session, method: str, url: str, headers: Mapping[str, str],
             data: str | None) -> requests.PreparedRequest:
    """The request Session.request would prepare, without Session.prepare_request's general merging (params,
    hooks, cookie-jar copies, netrc), about 5% of a request's CPU (issue #15): the session's headers under the
    request's, the session's cookies; no auth (the session's only keeps ~/.netrc out, which is not read here)."""
    merged = requests.structures.CaseInsensitiveDict(session.headers)
    merged.update(headers)
    prepared = requests.PreparedRequest()
    prepared.prepare(method=method, url=url, headers=merged, data=data, cookies=session.cookies)
    return prepared


class Early:
    """A request sent in a thread before it is known to be needed (the plain-HTTP ping, while https is tried):
    adopted - its answer, or its error - or discarded, its answer closed when it comes.

    ``send`` appends to the list it is given once per answer a server sent (retries included); ``count`` gets
    their number when the request is adopted, so a discarded one is not counted."""

    def __init__(self, url: str, send: Callable[[str, list[int]], requests.Response],
                 count: Callable[[int], None]) -> None:
        self.url = url
        self._tally: list[int] = []
        self._count = count
        self._answer: Future[requests.Response] = Future()
        self._adopted = False
        threading.Thread(target=self._send, args=(send,), name="pinrepro-ping", daemon=True).start()

    def _send(self, send: Callable[[str, list[int]], requests.Response]) -> None:
        try:
            self._answer.set_result(send(self.url, self._tally))
        except BaseException as exc:  # raised by adopt()
            self._answer.set_exception(exc)

    def adopt(self) -> requests.Response:
        self._adopted = True
        try:
            return self._answer.result()
        finally:
            self._count(len(self._tally))

    def discard(self) -> None:
        if not self._adopted:
            self._answer.add_done_callback(_close_answer)


def _close_answer(answer: Future[requests.Response]) -> None:
    if answer.exception() is None:
        answer.result().close()


def preconnect(session: requests.Session, url: str, count: int, *, verify: bool, timeout: float) -> None:
    """Open ``count`` keep-alive connections to ``url``'s host in background threads, for the requests that follow:
    while a registry is pinged, the first wave of lookups' connections are made, instead of each of them paying its
    handshake after the ping (issue #15). A connection that fails is dropped quietly: the request that would have
    used it opens its own and reports the error."""
    if count < 1 or getattr(requests.adapters.HTTPAdapter.send, "__module__", None) != "requests.adapters":
        return  # a stand-in for the HTTP layer (the tests' ``responses``) sends nothing real: connect nowhere
    settings = session.merge_environment_settings(url, {}, True, verify, None)
    if requests.utils.select_proxy(url, settings["proxies"]):
        return  # a proxy's connections are its own pool manager's
    adapter = session.get_adapter(url)
    assert isinstance(adapter, requests.adapters.HTTPAdapter)
    pool = adapter.get_connection_with_tls_context(requests.Request("GET", url).prepare(), settings["verify"],
                                                   proxies=settings["proxies"], cert=settings["cert"])
    if not isinstance(pool, urllib3.HTTPConnectionPool) or pool.pool is None:
        return
    free = pool.pool.maxsize - 1  # one is the ping's
    # Taken from the pool here, all of them, so that no thread connects one another has put back.
    held = []
    with contextlib.suppress(urllib3.exceptions.HTTPError):  # the pool was closed
        held = [pool._get_conn() for _ in range(min(count, free))]
    for connection in held:
        threading.Thread(target=_connect, args=(pool, connection, timeout), name="pinrepro-connect",
                         daemon=True).start()


def _connect(pool: urllib3.HTTPConnectionPool, connection: Any, timeout: float) -> None:
    # Whatever fails here only costs the time it was to save: the request that takes this pool slot opens its own
    # connection and reports why it cannot. Nothing may escape a background thread (it would print a traceback).
    with contextlib.suppress(Exception):
        try:
            if connection.sock is None:
                connection.timeout = timeout
                connection.connect()
        except Exception:
            connection.close()
        if pool.pool is not None and pool.pool.full():
            connection.close()  # lookups already opened their own: urllib3 would discard it with a warning
        else:
            pool._put_conn(connection)
