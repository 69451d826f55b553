"""The ARGs in scope at each point of a Dockerfile, with snapshots that cost nothing to take.

An ARG default is expanded with the ARGs declared before it, and a RUN line sees its stage's ARGs as they are
at that line, so each declaration and each RUN keeps a picture of the scope. Copying the scope for each made
parsing quadratic in the number of ARGs (9,000 ARGs took seconds); a :class:`Scope` keeps every value a name
has had, in order, and a snapshot is a clock reading: looking a name up in it is a binary search.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

V = TypeVar("V")


class Scope(Mapping[str, V], Generic[V]):
    """Names and their current values, in declaration order; ``snapshot()`` freezes the current view."""

    def __init__(self, initial: Mapping[str, V] | None = None) -> None:
        self._now: dict[str, V] = {}
        self._history: dict[str, tuple[list[int], list[V]]] = {}
        self._clock = 0
        for name, value in (initial or {}).items():
            self[name] = value

    def __setitem__(self, name: str, value: V) -> None:
        self._clock += 1
        self._now[name] = value
        entry = self._history.get(name)
        if entry is None:
            entry = self._history[name] = ([], [])
        entry[0].append(self._clock)
        entry[1].append(value)

    def __getitem__(self, name: str) -> V:
        return self._now[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._now)

    def __len__(self) -> int:
        return len(self._now)

    def snapshot(self) -> Snapshot[V]:
        """The scope as it is now; later assignments do not show in it."""
        return Snapshot(self._history, self._clock)


class Snapshot(Mapping[str, V], Generic[V]):
    """A read-only view of a :class:`Scope` at one clock reading."""

    def __init__(self, history: Mapping[str, tuple[list[int], list[V]]], clock: int) -> None:
        self._history = history
        self._clock = clock

    def __getitem__(self, name: str) -> V:
        times, values = self._history[name]
        index = bisect.bisect_right(times, self._clock) - 1
        if index < 0:
            raise KeyError(name)
        return values[index]

    def __iter__(self) -> Iterator[str]:
        return (name for name, (times, _) in self._history.items() if times[0] <= self._clock)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"Snapshot({dict(self)!r})"
