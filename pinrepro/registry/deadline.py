"""A total deadline per HTTP request: connect, headers and body together, not only an idle timeout.

A socket timeout bounds each read, so a server that drips one byte per second, or answers the headers one
byte at a time, never trips it. Here every connection the session opens is watched: when a request starts,
its connection is armed with the time left; a watchdog thread shuts the socket down when the time is up,
which wakes the blocked read with an error the transport then reports as a deadline. The arming ends when
urllib3 gives the connection back to its pool (the body was read). Not on close: http.client closes a
``Connection: close`` connection while its response still reads from the socket; a socket really closed
has no descriptor left, so a late shutdown of it touches nothing.

Settings (environment, seconds): PINREPRO_HTTP_TIMEOUT - connect timeout and longest silence (default 30);
PINREPRO_HTTP_DEADLINE - total per request including its body (default 120); PINREPRO_BLOB_DEADLINE - total
for one layer download (default 1800); PINREPRO_MAX_BODY - the largest answer kept in memory, in bytes
(default 8 MiB); PINREPRO_BACKOFF_S - the first retry's wait (default 0.5, doubling with jitter).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from pinrepro.errors import ConfigError


def setting(name: str, default: float) -> float:
    """A positive number from the environment, or ``default``; a bad value is a one-line error."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0 or value != value or value == float("inf"):
        raise ConfigError(f"{name}={raw[:40]!r} is not a positive number of seconds (or bytes)",
                          where="environment", fix=f"unset it to use the default ({default:g})")
    return value


@dataclass
class Scope:
    """One request's deadline; ``fired`` says the watchdog cut it."""

    seconds: float
    ends_at: float
    fired: bool = False

    def remaining(self) -> float:
        return self.ends_at - time.monotonic()


@dataclass
class _Handle:
    scope: Scope
    sock: Any
    cancelled: bool = False


class _Watchdog:
    """One daemon thread that shuts down the sockets of requests whose deadline passed."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Handle]] = []
        self._counter = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, scope: Scope, sock: Any) -> _Handle:
        handle = _Handle(scope, sock)
        with self._wake:
            heapq.heappush(self._heap, (scope.ends_at, next(self._counter), handle))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pinrepro-deadline", daemon=True)
                self._thread.start()
            # Woken only when this deadline is now the first to pass: the thread already sleeps until an earlier
            # one, and waking it for every request cost a lock of hundreds of images a thread switch each (#15).
            if self._heap[0][2] is handle:
                self._wake.notify()
        return handle

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                ends_at, _, handle = self._heap[0]
                delay = ends_at - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._heap)
            if not handle.cancelled:
                handle.scope.fired = True
                # socket.socket.shutdown, not SSLSocket's: that one tears down TLS state under the reader.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(handle.sock, socket.SHUT_RDWR)


_WATCHDOG = _Watchdog()
_CURRENT = threading.local()


@contextlib.contextmanager
def scope(seconds: float) -> Iterator[Scope]:
    """Requests sent in this block (on this thread) are cut after ``seconds`` in total."""
    current = Scope(seconds, time.monotonic() + seconds)
    previous = getattr(_CURRENT, "scope", None)
    _CURRENT.scope = current
    try:
        yield current
    finally:
        _CURRENT.scope = previous


def _arm(connection: Any) -> None:
    current: Scope | None = getattr(_CURRENT, "scope", None)
    sock = getattr(connection, "sock", None)
    if current is None or sock is None:
        return
    handle = _WATCHDOG.arm(current, sock)
    _disarm(connection)
    connection.pinrepro_deadline = handle


def _disarm(connection: Any) -> None:
    handle = getattr(connection, "pinrepro_deadline", None)
    if handle is not None:
        handle.cancelled = True
        connection.pinrepro_deadline = None


class _WatchedHTTPConnection(HTTPConnection):
    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _arm(self)
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _arm(self)
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection

    def _put_conn(self, conn: Any) -> None:
        # Back in the pool means its answer was read: the next request on it gets its own deadline.
        if conn is not None:
            _disarm(conn)
        super()._put_conn(conn)


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            _disarm(conn)
        super()._put_conn(conn)


def watch(adapter: requests.adapters.HTTPAdapter) -> None:
    """Make every connection ``adapter`` opens honour the deadline scope of the thread that uses it."""
    adapter.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
    plain = adapter.proxy_manager_for

    def proxied(proxy: str, **kwargs: Any) -> Any:
        # Requests through an HTTP(S) proxy get their own pool manager: watch its connections too.
        manager = plain(proxy, **kwargs)
        if type(manager).__name__ == "ProxyManager":
            manager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
        return manager

    adapter.proxy_manager_for = proxied  # type: ignore[method-assign]


def watched_session() -> requests.Session:
    """A requests session whose connections honour deadline scopes (for the GitHub API and ADD downloads)."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter()
    watch(adapter)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
