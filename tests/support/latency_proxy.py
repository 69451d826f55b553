"""A loopback TCP proxy that adds latency, to make round trips visible in benches.

Every chunk is held for ``delay`` seconds in each direction (a delay line, not a per-chunk sleep, so a
response in many chunks costs one delay, not one per chunk), and a new connection pays one extra round trip
before its first byte goes through, as a TCP handshake over a real link would. Threads, one accept loop and
two pumps per direction per connection; fine for the tens of connections a bench opens.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import threading
import time

_CHUNK = 65536


class LatencyProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target_host:target_port``, adding ``delay`` seconds each way."""

    def __init__(self, target_host: str, target_port: int, *, delay: float = 0.020, handshake: bool = True) -> None:
        self.target = (target_host, target_port)
        self.delay = delay
        self.handshake = handshake
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self.connections = 0
        self.bytes_up = 0
        self.bytes_down = 0

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("proxy is not running")
        return int(self._listener.getsockname()[1])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def rtt(self) -> float:
        return 2 * self.delay

    def start(self) -> LatencyProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(256)
        self._listener = listener
        self._accept_thread = threading.Thread(target=self._accept_loop, name="latency-proxy", daemon=True)
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            # Wake the blocking accept() so the loop sees the stop flag.
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            self._listener.close()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
        with self._lock:
            open_sockets = list(self._sockets)
            self._sockets.clear()
        for sock in open_sockets:
            _close(sock)

    def __enter__(self) -> LatencyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._stopping.is_set():
                _close(client)
                return
            accepted = time.monotonic()
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
                self._sockets.update((client, upstream))
            not_before = accepted + (self.rtt if self.handshake else 0.0)
            pair = _Pair(client, upstream)
            self._pipe(client, upstream, not_before, pair, upstream=True)
            self._pipe(upstream, client, 0.0, pair, upstream=False)

    def _finished(self, pair: _Pair) -> None:
        """Called once per direction; the second call closes the connection's sockets."""
        with self._lock:
            pair.open_directions -= 1
            if pair.open_directions > 0:
                return
            self._sockets.discard(pair.client)
            self._sockets.discard(pair.upstream)
        _close(pair.client)
        _close(pair.upstream)

    def _pipe(
        self, source: socket.socket, sink: socket.socket, not_before: float, pair: _Pair, *, upstream: bool
    ) -> None:
        queue: collections.deque[tuple[float, bytes]] = collections.deque()
        ready = threading.Condition()

        def reader() -> None:
            while True:
                try:
                    data = source.recv(_CHUNK)
                except OSError:
                    data = b""
                with ready:
                    queue.append((max(time.monotonic() + self.delay, not_before + self.delay), data))
                    ready.notify()
                if not data:
                    return

        def writer() -> None:
            while True:
                with ready:
                    while not queue:
                        ready.wait()
                    due, data = queue.popleft()
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if not data:
                    with contextlib.suppress(OSError):
                        sink.shutdown(socket.SHUT_WR)
                    self._finished(pair)
                    return
                try:
                    sink.sendall(data)
                except OSError:
                    # The peer went away: unblock our reader too, then let the other direction finish.
                    for sock in (source, sink):
                        with contextlib.suppress(OSError):
                            sock.shutdown(socket.SHUT_RDWR)
                    self._drain(queue, ready)
                    self._finished(pair)
                    return
                with self._lock:
                    if upstream:
                        self.bytes_up += len(data)
                    else:
                        self.bytes_down += len(data)

        threading.Thread(target=reader, daemon=True).start()
        threading.Thread(target=writer, daemon=True).start()

    @staticmethod
    def _drain(queue: collections.deque[tuple[float, bytes]], ready: threading.Condition) -> None:
        """Wait for the reader's end-of-stream marker so that it does not outlive the connection."""
        while True:
            with ready:
                while not queue:
                    if not ready.wait(timeout=5):
                        return
                _, data = queue.popleft()
            if not data:
                return


class _Pair:
    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.open_directions = 2


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
