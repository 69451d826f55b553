"""Concurrent layer reads with a bound: how many layers stream at once, and each digest read once per run.

Images share their lower layers (every CUDA image of a release carries the same multi-GB libraries), and lock
scans images and platforms concurrently: without this, two scans that reach the same layer at the same moment
would each download it. Memory stays flat because each stream is read in fixed-size chunks and at most
``streams`` are open, however many scans run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from pinrepro.inventory.layers import LayerFacts

# Open layer streams at once. Each costs its read buffers and a decompressor window (zstd's is the largest,
# bounded by the frame header), not the layer's size.
DEFAULT_STREAMS = 8


class LayerFlights:
    """Runs ``read`` for a layer digest at most once at a time per digest, and at most ``streams`` at once."""

    def __init__(self, streams: int = DEFAULT_STREAMS) -> None:
        self._streams = threading.BoundedSemaphore(max(1, streams))
        self._lock = threading.Lock()
        self._per_digest: dict[str, threading.Lock] = {}
        self._done: dict[str, LayerFacts] = {}
        self.reads = 0  # layers read (from the registry, or a scan's cache), for benches and tests

    def facts(self, digest: str, read: Callable[[], LayerFacts]) -> LayerFacts:
        with self._lock:
            gate = self._per_digest.setdefault(digest, threading.Lock())
        with gate:  # a second scan of the same digest waits here, then takes the first one's result
            with self._lock:
                known = self._done.get(digest)
            if known is not None:
                return known
            with self._streams:
                facts = read()
            with self._lock:
                self._done[digest] = facts
                self.reads += 1
            return facts
