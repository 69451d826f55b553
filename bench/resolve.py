"""Bench: `pinrepro lock` as a command against the fastest peer, on one Dockerfile with N FROM lines over a slow link.

Starts Debian's docker-registry on loopback, pushes N small two-platform images (distinct tags and configs,
shared layers) through the registry API, puts a latency proxy in front (+20 ms each way, a new connection pays a
handshake round trip), writes one Dockerfile with N ``FROM`` lines, and times in the same run, for each N:

  (a) ``pinrepro lock`` - a new process, a cold cache (first run): resolve every tag, scan each image's
      linux/amd64 contents, write the lock and the pinned Dockerfile;
  (b) container-source-policy ``pin`` (Go, containers/image; installed from PyPI into .bench/peers) on the same
      Dockerfile, with a registries.conf marking the loopback registry insecure (CONTAINERS_REGISTRIES_CONF);
  (c) ``skopeo inspect --raw`` once per tag, as a shell loop would;
  (d) ``pinrepro lock`` of a second checkout with the scan cache (a) filled - CI with actions/cache - and, in
      process, ``RegistryClient.describe_many`` alone (no interpreter start, no scan): separate columns.

Targets (exit 1 when one is missed, 2 when a tool is missing):
  - (a) no slower than (b) at every N;
  - (a) within 1.5x of the floor: interpreter start + connect + ping + ceil(N / C) tag round trips + the
    scan's round trips (platform manifest and config per image, ceil(N / C) waves of each, plus one round
    trip per distinct layer), C being pinrepro's per-registry concurrency;
  - every tool reports the digests that were pushed.

Each of (a), (b) and (d) is the best of ``--rounds`` runs (3), alternating between the tools; (a) prints its CPU
time (user + system) beside its wall time: on a busy machine, the part that is pinrepro's own work.

    .venv/bin/python bench/resolve.py [--sizes 50,200] [--delay-ms 20] [--skip-skopeo] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, Target, isolate, pinrepro_command, report, table, timed
from pinrepro.reference import ImageRef
from pinrepro.registry.authn import DefaultKeychain
from pinrepro.registry.client import RegistryClient
from pinrepro.registry.concurrency import DEFAULT_PER_REGISTRY
from tests.support import images as im
from tests.support import pushing
from tests.support.latency_proxy import LatencyProxy
from tests.support.registry import RegistryServer
from tests.support.tools import find_tool

REPO = "bench/resolve"
PEER = "container-source-policy"
PEER_VERSION = "0.6.0"
PEERS_ENV = ROOT / ".bench" / "peers"


def peer_tool() -> str | None:
    """container-source-policy from PyPI (its wheel ships the Go binary), in a bench-only environment."""
    binary = PEERS_ENV / "bin" / PEER
    if not binary.exists():
        print(f"installing {PEER}=={PEER_VERSION} into {PEERS_ENV.relative_to(ROOT)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_ENV)], check=True)
        done = subprocess.run([str(PEERS_ENV / "bin" / "python"), "-m", "pip", "install", "-q",
                               f"{PEER}=={PEER_VERSION}"], check=False)
        if done.returncode != 0:
            return None
    return str(binary) if binary.exists() else None


def publish(layout: Path, server: RegistryServer, count: int) -> dict[str, str]:
    """N distinct two-platform indexes sharing their layers; pushed over HTTP (seconds, not minutes)."""
    import requests

    shared: im.LayerSpec = {"etc/os-release": b"ID=debian\nVERSION_ID=12\n", "srv/data": b"x" * 4096}
    digests: dict[str, str] = {}
    with requests.Session() as session:
        for n in range(count):
            tag = f"t{n:03d}"
            index = im.build_two_platform(layout, tag, [shared], env=[f"BENCH_IMAGE={n}"])
            digests[tag] = pushing.push_http(layout, tag, server.url, REPO, tag, session=session)
            assert digests[tag] == index.digest
    return digests


def write_project(directory: Path, host: str, tags: list[str]) -> Path:
    directory.mkdir(parents=True)
    lines = [f"FROM {host}/{REPO}:{tag} AS s{tag}\nRUN true\n" for tag in tags]
    (directory / "Dockerfile").write_text("".join(lines))
    (directory / "pinrepro.toml").write_text(f'insecure_registries = ["{host}"]\n')
    return directory


def time_lock(project: Path, env: dict[str, str], cache: Path) -> tuple[float, float, dict[str, str]]:
    """Wall seconds, CPU seconds (user + system: on a shared machine the part that is pinrepro's own work) and
    the digests locked."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = timed([*pinrepro_command(), "-C", str(project), "lock", "-q"], env={**env, "XDG_CACHE_HOME": str(cache)})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    lock = tomllib.loads((project / "pinrepro.lock").read_text())
    images = lock.get("images", {})
    return run.seconds, cpu, {key.rpartition(":")[2]: value["digest"] for key, value in images.items()}


def time_peer(peer: str, project: Path, scratch: Path, host: str, env: dict[str, str]) -> tuple[float, dict[str, str]]:
    conf = scratch / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{host}"\ninsecure = true\n')
    run = timed([peer, "pin", "--stdout", "Dockerfile"], cwd=project, env={**env, "CONTAINERS_REGISTRIES_CONF":
                                                                          str(conf)})
    digests: dict[str, str] = {}
    for rule in json.loads(run.stdout).get("rules", []):
        selector = rule.get("selector", {}).get("identifier", "")
        target = rule.get("updates", {}).get("identifier", "")
        if selector.startswith("docker-image://") and "@" in target:
            digests[selector.rpartition(":")[2]] = target.rpartition("@")[2]
    return run.seconds, digests


def time_skopeo(skopeo: str, host: str, tags: list[str], scratch: Path) -> tuple[float, dict[str, str]]:
    authfile = scratch / "skopeo-auth.json"
    authfile.write_text('{"auths": {}}')
    digests: dict[str, str] = {}
    start = time.perf_counter()
    for tag in tags:
        raw = subprocess.run(
            [skopeo, "inspect", "--raw", "--tls-verify=false", "--no-creds", "--authfile", str(authfile),
             f"docker://{host}/{REPO}:{tag}"],
            check=True, capture_output=True, timeout=120,
        ).stdout
        digests[tag] = im.sha256_digest(raw)
    return time.perf_counter() - start, digests


def time_in_process(host: str, tags: list[str]) -> tuple[float, int]:
    refs = [ImageRef.parse(f"{host}/{REPO}:{tag}") for tag in tags]
    client = RegistryClient(DefaultKeychain(env=os.environ), insecure_registries=(host,))
    try:
        start = time.perf_counter()
        client.describe_many(refs)
        return time.perf_counter() - start, client.transport.request_count
    finally:
        client.close()


def interpreter_start(rounds: int = 5) -> float:
    return min(timed([sys.executable, "-c", "pass"]).seconds for _ in range(rounds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="50,200", help="numbers of FROM lines (default: 50,200)")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="added latency each way (ms)")
    parser.add_argument("--skip-skopeo", action="store_true", help="leave out the skopeo loop (slow)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of lock and pin per N; the best counts")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]

    registry_bin, skopeo, peer = find_tool("docker-registry"), find_tool("skopeo"), peer_tool()
    if registry_bin is None or skopeo is None or peer is None:
        print(f"bench/resolve.py needs Debian's docker-registry and skopeo, and {PEER} from PyPI")
        return 2

    start = interpreter_start()
    rows = [["N", "pinrepro lock (CPU)", f"{PEER} pin", "skopeo loop", "lock, scan cache warm",
             "describe_many (in process)", "floor"]]
    targets: list[Target] = []
    with tempfile.TemporaryDirectory(prefix="pinrepro-bench-") as tmp:
        scratch = Path(tmp)
        env = {**os.environ, **isolate(scratch)}
        with RegistryServer(scratch / "registry", "anonymous") as server:
            print(f"registry {server.host}; pushing {max(sizes)} two-platform images ...", flush=True)
            pushed = publish(scratch / "layout", server, max(sizes))
            assert server.port is not None
            with LatencyProxy("127.0.0.1", server.port, delay=args.delay_ms / 1000) as proxy:
                print(f"latency proxy {proxy.host}: +{args.delay_ms:g} ms each way (RTT {2 * args.delay_ms:g} ms); "
                      f"interpreter start {start * 1000:.0f} ms", flush=True)
                for n in sizes:
                    row, measured = compare(n, pushed, proxy.host, scratch, env, peer, None if args.skip_skopeo
                                            else skopeo, floor=floor_seconds(start, n, 2 * args.delay_ms / 1000),
                                            rounds=args.rounds)
                    rows.append(row)
                    targets.extend(measured)
    print()
    print(f"whole commands, one Dockerfile with N FROM lines, +{args.delay_ms:g} ms each way, "
          f"pinrepro per-registry concurrency {DEFAULT_PER_REGISTRY}:")
    table(rows)
    return report(targets)


def floor_seconds(start: float, n: int, rtt: float) -> float:
    """Interpreter start, connect + ping, the tag wave, then per image its platform manifest and config, and the
    two distinct layers once."""
    waves = math.ceil(n / DEFAULT_PER_REGISTRY)
    return start + (2 + waves + 2 * waves + 2) * rtt


def compare(n: int, pushed: dict[str, str], host: str, scratch: Path, env: dict[str, str], peer: str,
            skopeo: str | None, *, floor: float, rounds: int) -> tuple[list[str], list[Target]]:
    """Every tool on the same N-line Dockerfile, one after the other: a table row and the targets."""
    tags = sorted(pushed)[:n]
    expected = {tag: pushed[tag] for tag in tags}
    # Best of ``rounds``, each tool a new project each time (and lock an empty cache: a first run); the rounds
    # alternate between the tools, so a busy moment of a shared machine hits both alike.
    runs, peer_runs, warm_runs = [], [], []
    for r in range(rounds):
        cache = scratch / f"cache-{n}-{r}"
        runs.append(time_lock(write_project(scratch / f"lock-{n}-{r}", host, tags), env, cache))
        # The same first lock of another checkout with the scan cache the first one filled (what CI gets from
        # actions/cache): only the tags are asked, like the peer does.
        warm_runs.append(time_lock(write_project(scratch / f"warm-{n}-{r}", host, tags), env, cache))
        peer_runs.append(time_peer(peer, write_project(scratch / f"peer-{n}-{r}", host, tags), scratch, host, env))
    ours, cpu, our_digests = min(runs, key=lambda run: run[0])
    warm = min(run[0] for run in warm_runs)
    theirs, their_digests = min(peer_runs, key=lambda run: run[0])
    loop, loop_digests = time_skopeo(skopeo, host, tags, scratch) if skopeo else (math.nan, expected)
    inside, requests_sent = time_in_process(host, tags)
    row = [str(n), f"{ours:.2f} s ({cpu:.2f} s)", f"{theirs:.2f} s", f"{loop:.2f} s" if skopeo else "skipped",
           f"{warm:.2f} s", f"{inside:.2f} s ({requests_sent} requests)", f"{floor:.2f} s"]
    agree = our_digests == their_digests == loop_digests == expected
    return row, [
        Target(f"N={n}: lock / {PEER} pin", f"{ours / theirs:.2f}x", "<= 1.00x", ours <= theirs),
        Target(f"N={n}: lock / floor", f"{ours / floor:.2f}x", "<= 1.50x", ours <= 1.5 * floor),
        Target(f"N={n}: digests agree (pushed/lock/pin/skopeo)", "yes" if agree else "NO", "all equal", agree),
    ]

if __name__ == "__main__":
    sys.exit(main())
