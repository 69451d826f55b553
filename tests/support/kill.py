"""A kill harness: start a pinrepro command, send it a real signal at a random point, report what was left.

Half of the kills land at a uniformly random time within one uninterrupted run; the other half wait until a
file appears (the journal, i.e. the renames have begun) and then add a small random delay, so the narrow
final phase is hit too. Every run is bounded by ``timeout``: a process that does not die fails the test.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.waiting import wait_until


@dataclass(frozen=True)
class Killed:
    returncode: int
    stderr: str
    delay: float  # seconds after start when the signal was sent (None-like -1: the run ended first)
    waited_for_marker: bool
    exit_after_signal: float  # seconds from the signal to the process's exit


def pinrepro_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pinrepro", *args]


def run_once(command: Sequence[str], *, cwd: Path, timeout: float = 60.0,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL, env=env)


def kill_once(command: Sequence[str], *, cwd: Path, signum: int, delay: float, marker: Path | None = None,
              rng: random.Random, timeout: float = 60.0, env: dict[str, str] | None = None) -> Killed:
    """Start ``command``, send ``signum`` after ``delay`` (or after ``marker`` appears plus up to ``delay``)."""
    process = subprocess.Popen(list(command), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    started = time.monotonic()
    deadline = started + timeout
    sent_at = -1.0
    try:
        if marker is not None:
            wait_until(lambda: marker.exists() or process.poll() is not None, deadline - time.monotonic(),
                       interval=0.0005)
            delay = rng.uniform(0, delay)  # a random point after the marker
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=delay)  # ends early when the command finishes first
        if process.poll() is None:
            sent_at = time.monotonic()
            os.kill(process.pid, signum)
        _, stderr = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError(f"{command} did not exit within {timeout}s after signal {signum}") from None
    finished = time.monotonic()
    return Killed(process.returncode, stderr, sent_at - started if sent_at >= 0 else -1.0, marker is not None,
                  finished - sent_at if sent_at >= 0 else 0.0)


SIGNALS = {"KILL": signal.SIGKILL, "INT": signal.SIGINT}
