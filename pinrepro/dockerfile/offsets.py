"""Where each character of an instruction came from in the file, kept as runs rather than one int per character.

A logical instruction is its physical lines joined (continuations and comment lines dropped), so the text of
an instruction maps back to the file in a few contiguous runs: one per physical line at most. Holding one
Python int per character made a 4 MB RUN line cost hundreds of megabytes; :class:`Offsets` holds the runs and
answers ``offsets[i]`` with a binary search, and slices as a new :class:`Offsets`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from typing import overload


class Offsets(Sequence[int]):
    """The file offset of each character of a text: an immutable sequence of ints, stored as runs."""

    __slots__ = ("_files", "_hash", "_length", "_starts")

    def __init__(self, starts: Sequence[int] = (), files: Sequence[int] = (), length: int = 0) -> None:
        """``starts[i]`` is where run i starts in the text (0 first, increasing, each run non-empty),
        ``files[i]`` its offset in the file; runs that continue each other in the file are merged, so equal
        sequences have equal runs."""
        merged_starts: list[int] = []
        merged_files: list[int] = []
        for start, file in zip(starts, files, strict=True):
            if merged_starts and merged_files[-1] + (start - merged_starts[-1]) == file:
                continue  # continues the previous run
            merged_starts.append(start)
            merged_files.append(file)
        self._starts = tuple(merged_starts)
        self._files = tuple(merged_files)
        self._length = length
        self._hash: int | None = None

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> Offsets: ...

    def __getitem__(self, index: int | slice) -> int | Offsets:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._length)
            if step != 1:
                values = [self[position] for position in range(start, stop, step)]
                return Offsets(range(len(values)), values, len(values))
            return self._slice(start, max(start, stop))
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError("offset index out of range")
        run = bisect.bisect_right(self._starts, index) - 1
        return self._files[run] + index - self._starts[run]

    def _slice(self, start: int, stop: int) -> Offsets:
        if start >= stop:
            return Offsets()
        first = bisect.bisect_right(self._starts, start) - 1
        last = bisect.bisect_left(self._starts, stop)
        starts = [0] + [s - start for s in self._starts[first + 1:last]]
        files = [self._files[first] + start - self._starts[first], *self._files[first + 1:last]]
        return Offsets(starts, files, stop - start)

    def __iter__(self) -> Iterator[int]:
        if not self._starts:
            return
        bounds = (*self._starts[1:], self._length)
        for start, end, file in zip(self._starts, bounds, self._files, strict=True):
            yield from range(file, file + end - start)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Offsets):
            return NotImplemented
        return (self._length, self._starts, self._files) == (other._length, other._starts, other._files)

    def __hash__(self) -> int:
        # Kept: an Instruction is a cache key (commands.scripts), and a long RUN has a run per line.
        if self._hash is None:
            self._hash = hash((self._length, self._starts, self._files))
        return self._hash

    def __repr__(self) -> str:
        return f"Offsets({list(zip(self._starts, self._files, strict=True))!r}, length={self._length})"


class OffsetsBuilder:
    """Runs appended in text order: ``add(length, file)`` says the next ``length`` characters come from
    ``file`` onwards."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._files: list[int] = []
        self.length = 0

    def add(self, length: int, file: int) -> None:
        if length <= 0:
            return
        self._starts.append(self.length)
        self._files.append(file)
        self.length += length

    def build(self) -> Offsets:
        return Offsets(self._starts, self._files, self.length)
