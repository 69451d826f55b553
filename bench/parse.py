"""Dockerfile parsing stays linear in the file size (issue #14 item 11).

Parses pathological but legal Dockerfiles - a RUN continued over 100,000 lines, a 4 MB RUN line, a 4 MB ARG
default, a 4 MB FROM tag - and prints CPU seconds per case (process time, so a busy machine does not
distort it). Also parses each case at a quarter of its size: a ratio near 4 means linear, 16 quadratic.
Exits 1 when a case takes a second or more, or grows faster than 6x for 4x the input.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable

from pinrepro.dockerfile import parse

CASES: dict[str, Callable[[int], str]] = {
    "RUN continued over N lines": lambda n: "FROM ubuntu:22.04\nRUN echo a \\\n" + "  && echo b \\\n" * n + " true\n",
    "FROM continued over N lines": lambda n: "FROM \\\n" + "  \\\n" * n + " ubuntu:22.04\n",
    "RUN line of N*40 bytes": lambda n: "FROM ubuntu:22.04\nRUN " + "x" * (n * 40) + "\n",
    "ARG default of N*40 bytes": lambda n: "ARG A=" + "x" * (n * 40) + "\nFROM ubuntu\n",
    "FROM tag word of N*40 bytes": lambda n: "FROM ubuntu:" + "x" * (n * 40) + "\n",
}


def cpu_seconds(text: str) -> float:
    started = time.process_time()
    # An over-long tag is an error; the time to say so counts all the same.
    with contextlib.suppress(Exception):
        parse(text)
    return time.process_time() - started


def main() -> int:
    full = 100_000  # 100,000 lines, or 4 MB lines
    missed = False
    print(f"{'case':32} {'N/4':>8} {'N':>8} {'ratio':>6}")
    for name, make in CASES.items():
        small, big = cpu_seconds(make(full // 4)), cpu_seconds(make(full))
        ratio = big / small if small > 0.001 else 0.0
        bad = big >= 1.0 or ratio > 6
        missed |= bad
        print(f"{name:32} {small:8.3f} {big:8.3f} {ratio:6.1f}{'  MISSED' if bad else ''}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
