"""LayerFlights: a layer digest read once however many scans want it at the same moment, and at most N layer
streams open at once (issue #15: concurrent scans with a bound on memory)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from pinrepro.inventory.flights import LayerFlights
from pinrepro.inventory.layers import LayerFacts

_TIMEOUT = 30  # seconds: a deadlock fails the test instead of hanging it


class Reads:
    """A reader that blocks until released, recording how many run at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.open = 0
        self.peak = 0
        self.calls: list[str] = []
        self.two_open = threading.Event()

    def reader(self, digest: str) -> LayerFacts:
        with self.lock:
            self.open += 1
            self.peak = max(self.peak, self.open)
            self.calls.append(digest)
            if self.open >= 2:
                self.two_open.set()
        try:
            assert self.release.wait(_TIMEOUT)
            return LayerFacts(whiteouts=frozenset({digest}))
        finally:
            with self.lock:
                self.open -= 1


def test_one_read_per_digest_for_concurrent_scans() -> None:
    flights, reads = LayerFlights(streams=4), Reads()
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(flights.facts, "sha256:shared", lambda: reads.reader("sha256:shared")) for _ in range(6)]
        reads.release.set()
        results = [f.result(timeout=_TIMEOUT) for f in futures]
    assert reads.calls == ["sha256:shared"]
    assert flights.reads == 1
    assert all(result is results[0] for result in results)


def test_at_most_n_streams_at_once() -> None:
    flights, reads = LayerFlights(streams=2), Reads()
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(flights.facts, f"sha256:{n}", lambda n=n: reads.reader(f"sha256:{n}"))
                   for n in range(6)]
        # Release once two reads are open; the gate holds the other four back until one of them ends.
        assert reads.two_open.wait(_TIMEOUT)
        reads.release.set()
        for future in futures:
            future.result(timeout=_TIMEOUT)
    assert sorted(reads.calls) == [f"sha256:{n}" for n in range(6)]
    assert reads.peak == 2


def test_a_failed_read_is_not_remembered() -> None:
    flights = LayerFlights()

    def broken() -> LayerFacts:
        raise OSError("connection reset")

    with pytest.raises(OSError):
        flights.facts("sha256:x", broken)
    facts = flights.facts("sha256:x", LayerFacts)  # the next scan reads it again
    assert facts == LayerFacts()
    assert flights.reads == 1
