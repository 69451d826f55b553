"""Reading a Dockerfile stays linear in its size (issues #14 and #13).

Reads pathological but legal Dockerfiles - a RUN continued over 100,000 lines, 4 MB RUN / ARG / FROM-tag
lines, tens of thousands of ARGs, stages and heredoc commands - each at a tenth, three tenths and the whole of
its size (10k / 30k / 100k lines, 0.4 / 1.2 / 4 MB), and prints CPU seconds (process time, so a busy machine
distorts it less; the best of two runs) for each reader of the file:

- ``parse``: FROM sites and their ARGs (``pinrepro.dockerfile.parse``, what lock and verify read);
- ``instructions``: the instruction reader alone (continuations, directives, heredocs);
- ``installs``: verify's check of the RUN lines that install Python packages (``pinrepro.installs``);
- ``commands``: the simple commands of every RUN (what ``pinrepro check``'s rules read).

Targets: ``parse`` and ``instructions`` read each whole case in under a second; every reader grows at most
30x from a tenth to the whole of a case (10x is linear, 100x quadratic; the margin is for a busy machine and for
memory effects at 4 MB). ``installs`` and ``commands`` build an object per shell word and judge each command,
so their times are printed without a limit of their own. Exits 1 when a target is missed.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Target, report, table
from pinrepro import config as config_module
from pinrepro.config import Config
from pinrepro.dockerfile import instructions, parse
from pinrepro.dockerfile import reader as dockerfile_reader
from pinrepro.dockerfile.commands import commands, scripts
from pinrepro.installs import check_dockerfile_installs

FULL = 100_000  # lines, or 40-byte units of a long line (4 MB)
STEPS = (FULL // 10, 3 * FULL // 10, FULL)
MAX_GROWTH = 30.0
MIN_BASE = 0.005  # seconds: below this a tenth's time is noise, and its growth is not judged

CASES: dict[str, tuple[str, Callable[[int], str]]] = {
    "RUN continued over N lines": (
        "lines", lambda n: "FROM ubuntu:22.04\nRUN echo a \\\n" + "  && pip install b \\\n" * n + " true\n"),
    "FROM continued over N lines": ("lines", lambda n: "FROM \\\n" + "  \\\n" * n + " ubuntu:22.04\n"),
    "RUN line of N*40 bytes": ("bytes", lambda n: "FROM ubuntu:22.04\nRUN " + "x" * (n * 40) + "\n"),
    "RUN words, N*40 bytes": ("bytes", lambda n: "FROM ubuntu:22.04\nRUN pip install " + "'a' b $c " * (n * 4) + "\n"),
    "ARG default of N*40 bytes": ("bytes", lambda n: "ARG A=" + "x" * (n * 40) + "\nFROM ubuntu\n"),
    "FROM tag word of N*40 bytes": ("bytes", lambda n: "FROM ubuntu:" + "x" * (n * 40) + "\n"),
    "heredoc of N commands": (
        "lines", lambda n: "FROM ubuntu:22.04\nRUN <<EOF\n" + "pip install b\n" * n + "EOF\n"),
    "N/3 global ARGs": ("lines", lambda n: "".join(f"ARG A{i}=v{i}\n" for i in range(n // 3)) + "FROM ubuntu:$A1\n"),
    "N/5 stage ARGs and RUNs": ("lines", lambda n: "FROM ubuntu:22.04\n" + "".join(
        f"ARG A{i}=v{i}\nRUN echo $A{i}\n" for i in range(n // 5))),
    "N/3 stages, each FROM the last": ("lines", lambda n: "FROM ubuntu:22.04 AS s0\n" + "".join(
        f"FROM s{i} AS s{i + 1}\n" for i in range(n // 3))),
}


def readers(config: Config) -> dict[str, Callable[[str], object]]:
    def run_commands(text: str) -> object:
        return [list(commands(i)) for i in instructions(text)[0] if i.command == "run"]

    return {
        "parse": parse,
        "instructions": instructions,
        "installs": lambda text: check_dockerfile_installs(text, "Dockerfile", config),
        "commands": run_commands,
    }


def cpu_seconds(read: Callable[[str], object], text: str) -> float:
    best = float("inf")
    for _ in range(2):
        # Every run starts cold: the reader's caches would answer the second run for free.
        dockerfile_reader._instructions.cache_clear()
        scripts.cache_clear()
        started = time.process_time()
        # An over-long tag is an error; the time to say so counts all the same.
        with contextlib.suppress(Exception):
            read(text)
        best = min(best, time.process_time() - started)
    return best


def label(unit: str, n: int) -> str:
    return f"{n // 1000}k lines" if unit == "lines" else f"{n * 40 / 1e6:.1f} MB"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="pinrepro-bench-parse-") as scratch:
        (Path(scratch) / "pinrepro.toml").write_text("")
        config = config_module.load(Path(scratch))
        rows = [["case", "reader", *(f"N={n // 1000}k" for n in STEPS), "growth"]]
        targets: list[Target] = []
        for name, (unit, make) in CASES.items():
            texts = [make(n) for n in STEPS]
            for reader, read in readers(config).items():
                seconds = [cpu_seconds(read, text) for text in texts]
                judged = seconds[0] >= MIN_BASE
                growth = seconds[-1] / seconds[0] if judged else 0.0
                shown = f"{growth:.1f}x" if judged else "-"
                rows.append([name, reader, *(f"{s:.3f}" for s in seconds), shown])
                if reader in ("parse", "instructions"):
                    targets.append(Target(f"{name}, {label(unit, FULL)}: {reader}", f"{seconds[-1]:.3f} s",
                                          "< 1 s", seconds[-1] < 1.0))
                if judged:
                    targets.append(Target(f"{name}: {reader}, 10x the input", shown, f"<= {MAX_GROWTH:.0f}x",
                                          growth <= MAX_GROWTH))
    print("CPU seconds per read (best of 2), at a tenth, three tenths and all of each case's size:")
    table(rows)
    return report(targets)


if __name__ == "__main__":
    sys.exit(main())
