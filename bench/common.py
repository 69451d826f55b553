"""What the benches share: an isolated HOME, timing whole commands, and the table of targets met or missed.

Every bench prints its comparisons side by side from one run (the same machine load for every column) and
then one line per target: the value measured, the target, and "met" or "missed"; it exits 1 when one is missed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the project's virtual environment: `pinrepro` is installed beside python


def pinrepro_command() -> list[str]:
    """The console script a user runs (not ``python -m``), so its start-up is what is measured."""
    script = BIN / "pinrepro"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pinrepro"]


def isolate(scratch: Path) -> dict[str, str]:
    """An environment in which no tool reads this machine's logins, caches or pip configuration.

    Also what a user's install has: compiled bytecode. A development shell may set PYTHONDONTWRITEBYTECODE,
    and then every start compiles every module again - a cost no installed pinrepro pays.
    """
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "pinrepro")], check=False,
                   capture_output=True)
    home = scratch / "home"
    (home / "run").mkdir(parents=True, exist_ok=True)
    values = {
        "HOME": str(home), "XDG_RUNTIME_DIR": str(home / "run"), "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"), "DOCKER_CONFIG": str(home / ".docker"),
        "REGISTRY_AUTH_FILE": str(home / "auth.json"), "NO_COLOR": "1",
    }
    os.environ.update(values)
    return values


@dataclass(frozen=True)
class Run:
    seconds: float
    stdout: str
    stderr: str
    returncode: int


def timed(argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
          timeout: float = 600, check: bool = True) -> Run:
    """One whole process, wall clock from spawn to exit."""
    start = time.perf_counter()
    done = subprocess.run(list(argv), cwd=cwd, env=dict(env) if env is not None else None, capture_output=True,
                          text=True, timeout=timeout, check=False)
    seconds = time.perf_counter() - start
    if check and done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return Run(seconds, done.stdout, done.stderr, done.returncode)


def best_of(argv: Sequence[str], rounds: int, **kwargs: object) -> tuple[float, float, list[Run]]:
    """(wall, CPU) of the fastest of ``rounds`` runs, and every run: on a shared machine the minimum is the run the
    others disturbed least, and its CPU time (user + system) says what the command itself cost."""
    import resource

    results = []
    for _ in range(max(1, rounds)):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        run = timed(argv, **kwargs)  # type: ignore[arg-type]
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        results.append((run.seconds, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, run))
    wall, cpu, _ = min(results, key=lambda item: item[0])
    return wall, cpu, [run for _, _, run in results]


@dataclass(frozen=True)
class Target:
    name: str
    measured: str
    goal: str
    met: bool


def report(targets: Sequence[Target]) -> int:
    """Print one line per target; 1 when any was missed, else 0."""
    width = max(len(t.name) for t in targets)
    goal_width = max(len(t.goal) for t in targets)
    print()
    print("targets:")
    for target in targets:
        print(f"  {target.name:<{width}}  {target.measured:>14}  {target.goal:<{goal_width}}  "
              f"{'met' if target.met else 'missed'}")
    missed = [t.name for t in targets if not t.met]
    print()
    if missed:
        print("FAIL: missed " + ", ".join(missed))
        return 1
    print("OK: every target met")
    return 0


def table(rows: Sequence[Sequence[str]]) -> None:
    """Columns left-aligned to their widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                               for i, cell in enumerate(row)).rstrip())
