"""A thread pool that does not hold Ctrl-C hostage.

``with ThreadPoolExecutor()`` waits for every worker on the way out, also when the way out is a
KeyboardInterrupt - and a worker blocked on a server that drips would keep pinrepro alive for minutes. Here
an exception (Ctrl-C included) cancels what has not started and leaves without waiting; the CLI then exits
at once (os._exit) so no worker thread is joined either.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor


@contextlib.contextmanager
def worker_pool(max_workers: int) -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=max_workers)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
