"""Bench: how long pinrepro takes before it does anything - start-up as users feel it.

Times, best of ``--rounds`` (wall clock, and the CPU time of that run), each as a new process:

  - ``pinrepro --version``;
  - ``pinrepro verify`` on a small project (one Dockerfile, two images from a loopback registry, locked);
  - the imports ``pinrepro lock`` pays before it reads a file: ``python -X importtime -c "import pinrepro.cli,
    pinrepro.lock"``, with the slowest modules listed. Requests, PyYAML, packaging and zstandard are imported
    only by the work that needs them (a request, a deployment file, a requirement layer, a zstd layer).

Targets (exit 1 when one is missed, 2 when a tool is missing): each under 150 ms.

    .venv/bin/python bench/startup.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Target, best_of, isolate, pinrepro_command, report, table, timed
from tests.support import images as im
from tests.support import pushing
from tests.support.registry import RegistryServer
from tests.support.tools import find_tool

LIMIT = 0.150
_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)")


def import_times(rounds: int, env: dict[str, str]) -> tuple[float, list[tuple[int, str]]]:
    """Seconds for the imports of `lock` (best of ``rounds``), and that run's slowest modules (cumulative us)."""
    runs = []
    for _ in range(rounds):
        run = timed([sys.executable, "-X", "importtime", "-c", "import pinrepro.cli, pinrepro.lock"], env=env)
        modules = [(int(m[2]), m[4]) for m in map(_IMPORT_LINE.match, run.stderr.splitlines()) if m and len(m[3]) <= 2]
        total = sum(us for us, name in modules if name in ("pinrepro.cli", "pinrepro.lock"))
        runs.append((total / 1e6, sorted(modules, reverse=True)))
    return min(runs)


def small_project(root: Path, env: dict[str, str]) -> Path:
    import requests

    with RegistryServer(root / "registry", "anonymous") as server, requests.Session() as session:
        for tag in ("base", "runtime"):
            im.build_two_platform(root / "layout", tag, [{"etc/os-release": b"ID=debian\n", tag: b"x"}])
            pushing.push_http(root / "layout", tag, server.url, "small", tag, session=session)
        project = root / "project"
        project.mkdir()
        (project / "Dockerfile").write_text(f"FROM {server.host}/small:base AS build\nRUN make\n"
                                            f"FROM {server.host}/small:runtime\nCOPY --from=build /out /srv\n")
        (project / "pinrepro.toml").write_text(f'insecure_registries = ["{server.host}"]\n')
        timed([*pinrepro_command(), "-C", str(project), "lock", "-q"], env=env)
    return project


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10, help="runs of each; the fastest counts (default: 10)")
    args = parser.parse_args(argv)
    if find_tool("docker-registry") is None:
        print("bench/startup.py needs Debian's docker-registry (apt install docker-registry)")
        return 2
    with tempfile.TemporaryDirectory(prefix="pinrepro-bench-") as tmp:
        scratch = Path(tmp)
        env = {**os.environ, **isolate(scratch)}
        project = small_project(scratch, env)
        interpreter = best_of([sys.executable, "-c", "pass"], args.rounds, env=env)[:2]
        version = best_of([*pinrepro_command(), "--version"], args.rounds, env=env)[:2]
        verify = best_of([*pinrepro_command(), "-C", str(project), "verify", "-q"], args.rounds, env=env)[:2]
        imports, slowest = import_times(args.rounds, env)

    print()
    print(f"best of {args.rounds} (wall, and the CPU time of that run):")
    table([["", "wall", "CPU"],
           ["python -c pass (the interpreter alone)", f"{interpreter[0] * 1000:.0f} ms",
            f"{interpreter[1] * 1000:.0f} ms"],
           ["pinrepro --version", f"{version[0] * 1000:.0f} ms", f"{version[1] * 1000:.0f} ms"],
           ["pinrepro verify (2 images, locked)", f"{verify[0] * 1000:.0f} ms", f"{verify[1] * 1000:.0f} ms"],
           ["imports of lock (python -X importtime)", f"{imports * 1000:.0f} ms", ""]])
    print()
    print("python -X importtime -c 'import pinrepro.cli, pinrepro.lock' - slowest imports, two levels deep "
          "(cumulative):")
    for us, name in slowest[:12]:
        print(f"  {us / 1000:7.1f} ms  {name}")
    return report([
        Target("pinrepro --version", f"{version[0] * 1000:.0f} ms", "< 150 ms", version[0] < LIMIT),
        Target("pinrepro verify, small project", f"{verify[0] * 1000:.0f} ms", "< 150 ms", verify[0] < LIMIT),
        Target("lock's imports", f"{imports * 1000:.0f} ms", "< 150 ms", imports < LIMIT),
    ])


if __name__ == "__main__":
    sys.exit(main())
