"""The one way tests wait for something outside them: a condition polled until it holds or a deadline passes.

Never a bare sleep: a regression shows as a False (or a test failure) at the deadline instead of a hang, and a
fast machine does not wait longer than the condition needs."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, *, interval: float = 0.01) -> bool:
    """True as soon as ``predicate()`` holds; False once ``timeout`` seconds pass without it."""
    end = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        left = end - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(interval, left))


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port`` now."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True
