"""Bench: `verify` and a no-change `lock` on a monorepo of 1,000 Dockerfiles and a 1,000-image lock, as commands.

Starts Debian's docker-registry on loopback with a counting proxy in front (no added delay: this bench is about
pinrepro's own work), pushes one two-platform image and 1,000 distinct indexes over it (each its own digest, by
an annotation), writes services/svc-NNNN/Dockerfile for each, locks once (setup, timed for information), then
times, best of ``--rounds`` (a shared machine disturbs single runs):

  - ``pinrepro verify`` - offline, every Dockerfile against the lock;
  - ``pinrepro lock`` with nothing changed - and counts the connections it opened to the registry.

Targets (exit 1 when one is missed, 2 when a tool is missing): verify under 2 s; the no-change lock under 2 s and
zero connections (a lock where nothing changed must not ask any registry anything).

    .venv/bin/python bench/monorepo.py [--count 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Target, best_of, isolate, pinrepro_command, report, table, timed
from tests.support import images as im
from tests.support import pushing
from tests.support.latency_proxy import LatencyProxy
from tests.support.registry import RegistryServer
from tests.support.tools import find_tool

REPO = "bench/mono"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def publish(scratch: Path, server: RegistryServer, count: int) -> None:
    """One image; ``count`` indexes over its platforms that differ by an annotation, so each tag has its own digest."""
    import requests

    layer: im.LayerSpec = {"etc/os-release": b"ID=debian\nVERSION_ID=12\n"}
    im.build_two_platform(scratch / "layout", "base", [layer])
    with requests.Session() as session:
        pushing.push_http(scratch / "layout", "base", server.url, REPO, "base", session=session)
        index = json.loads(im.read_blob(scratch / "layout", im.layout_descriptor(scratch / "layout", "base")["digest"]))
        for n in range(count):
            index["annotations"] = {"org.opencontainers.image.version": str(n)}
            pushing.put_manifest(session, server.url, REPO, f"t{n:04d}", json.dumps(index).encode(), OCI_INDEX)


def write_project(root: Path, host: str, count: int) -> None:
    for n in range(count):
        service = root / "services" / f"svc-{n:04d}"
        service.mkdir(parents=True)
        (service / "Dockerfile").write_text(f"FROM {host}/{REPO}:t{n:04d} AS base\nRUN true\nCOPY . /srv\n")
    (root / "pinrepro.toml").write_text(f'insecure_registries = ["{host}"]\n')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000, help="Dockerfiles, one image each (default: 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per command; the fastest counts (default: 3)")
    args = parser.parse_args(argv)
    if find_tool("docker-registry") is None:
        print("bench/monorepo.py needs Debian's docker-registry (apt install docker-registry)")
        return 2

    with tempfile.TemporaryDirectory(prefix="pinrepro-bench-") as tmp:
        scratch = Path(tmp)
        env = {**os.environ, **isolate(scratch)}
        with RegistryServer(scratch / "registry", "anonymous") as server:
            assert server.port is not None
            print(f"registry {server.host}; pushing {args.count} indexes ...", flush=True)
            publish(scratch, server, args.count)
            with LatencyProxy("127.0.0.1", server.port, delay=0.0, handshake=False) as proxy:
                root = scratch / "monorepo"
                write_project(root, proxy.host, args.count)
                command = [*pinrepro_command(), "-C", str(root)]
                first = timed([*command, "lock", "-q"], env=env)
                print(f"first lock (setup): {first.seconds:.1f} s, {proxy.connections} connections", flush=True)
                verify, verify_cpu, _ = best_of([*command, "verify", "-q"], args.rounds, env=env)
                before = proxy.connections
                again, again_cpu, lock_runs = best_of([*command, "lock"], args.rounds, env=env)
                connections = proxy.connections - before
                unchanged = all("nothing changed" in run.stderr for run in lock_runs)

    print()
    print(f"{args.count} Dockerfiles, a {args.count}-image lock, best of {args.rounds}:")
    table([["command", "wall", "CPU", "registry connections"],
           ["pinrepro verify", f"{verify:.2f} s", f"{verify_cpu:.2f} s", "-"],
           ["pinrepro lock (nothing changed)", f"{again:.2f} s", f"{again_cpu:.2f} s", str(connections)]])
    return report([
        Target("verify, 1,000 Dockerfiles", f"{verify:.2f} s", "< 2 s", verify < 2.0),
        Target("lock with nothing changed", f"{again:.2f} s", "< 2 s", again < 2.0),
        Target("lock with nothing changed: connections", str(connections), "0", connections == 0 and unchanged),
    ])


if __name__ == "__main__":
    sys.exit(main())
