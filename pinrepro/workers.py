"""A thread pool that does not hold Ctrl-C hostage.

``with ThreadPoolExecutor()`` waits for every worker on the way out, also when the way out is a
KeyboardInterrupt - and a worker blocked on a server that drips would keep pinrepro alive for minutes. Here
an exception (Ctrl-C included) cancels what has not started and leaves without waiting; the CLI then exits
at once (os._exit) so no worker thread is joined either.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")


@contextlib.contextmanager
def worker_pool(max_workers: int) -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=max_workers)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def start_threads(pool: ThreadPoolExecutor, count: int) -> threading.Barrier:
    """Start ``count`` of ``pool``'s threads now, before work arrives (issue #15).

    ThreadPoolExecutor starts a thread on a submission that finds none idle, and the submitter waits until that
    thread runs: work submitted from busy threads (lock's scans, as each tag's answer arrives) waits for one
    thread start each. Tasks that wait for one another keep every thread busy, so each of them starts one.
    The caller aborts the returned barrier when it leaves, so that no thread waits for one that never started.
    """
    barrier = threading.Barrier(count)
    for _ in range(count):
        pool.submit(_arrive, barrier)
    return barrier


def _arrive(barrier: threading.Barrier) -> None:
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=5)


def as_completed(futures: Iterable[Future[T]], *, wake_every: float = 0.2) -> Iterator[Future[T]]:
    """concurrent.futures.as_completed, waking the waiting thread every ``wake_every`` seconds.

    Ctrl-C is handled by the main thread, between two bytecodes; the kernel hands the signal to any thread of the
    process, and a main thread blocked on a lock that another thread's signal does not interrupt would wait for
    the next future - forever, when a server stalls. Waking now and then lets it see the signal.
    """
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=wake_every, return_when=FIRST_COMPLETED)
        yield from done
