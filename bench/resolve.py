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
      process, ``RegistryClient.describe_many`` alone (no interpreter start, no scan): separate columns;
  (e) bench/bare_client.py: only the requests a first lock cannot do without (tag, amd64 manifest, config, each
      layer once), from a stdlib-only Python client, one connection per tag, all at once - the machine's floor.

A second table gives each tool's CPU seconds and the registry's and the latency proxy's during its run: on a
small machine the loopback servers share the cores with the client, so a tool that asks more (a contents scan
asks three times per image what a digest lookup asks once) also waits for the servers' CPU.

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, Run, Target, isolate, pinrepro_command, report, table, timed
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


@dataclass(frozen=True)
class Measured:
    """One whole-process run: wall seconds, the CPU seconds of the tool, of the registry and of the latency proxy
    (threads of this process, which only waits meanwhile) during it, and the digests the tool reported."""

    seconds: float
    cpu: float
    registry_cpu: float
    proxy_cpu: float
    digests: dict[str, str]


class Servers:
    """CPU clocks of the loopback registry (its process) and of the latency proxy (this process's threads)."""

    def __init__(self, registry_pid: int) -> None:
        self._stat = Path(f"/proc/{registry_pid}/stat")

    def _registry(self) -> float:
        fields = self._stat.read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    def run(self, argv: list[str], digests_of: Callable[[Run], dict[str, str]], **kwargs: Any) -> Measured:
        mine, children, registry = (resource.getrusage(resource.RUSAGE_SELF),
                                    resource.getrusage(resource.RUSAGE_CHILDREN), self._registry())
        run = timed(argv, **kwargs)
        mine_after, children_after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
            resource.RUSAGE_CHILDREN)
        return Measured(run.seconds, _cpu(children_after) - _cpu(children), self._registry() - registry,
                        _cpu(mine_after) - _cpu(mine), digests_of(run))


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def time_lock(servers: Servers, project: Path, env: dict[str, str], cache: Path) -> Measured:
    """``pinrepro lock`` in ``project`` with ``cache`` as its scan cache; the digests it locked."""
    def locked(_: Run) -> dict[str, str]:
        images = tomllib.loads((project / "pinrepro.lock").read_text()).get("images", {})
        return {key.rpartition(":")[2]: value["digest"] for key, value in images.items()}

    return servers.run([*pinrepro_command(), "-C", str(project), "lock", "-q"], locked,
                       env={**env, "XDG_CACHE_HOME": str(cache)})


def time_peer(servers: Servers, peer: str, project: Path, scratch: Path, host: str, env: dict[str, str]) -> Measured:
    conf = scratch / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{host}"\ninsecure = true\n')

    def pinned(run: Run) -> dict[str, str]:
        digests: dict[str, str] = {}
        for rule in json.loads(run.stdout).get("rules", []):
            selector = rule.get("selector", {}).get("identifier", "")
            target = rule.get("updates", {}).get("identifier", "")
            if selector.startswith("docker-image://") and "@" in target:
                digests[selector.rpartition(":")[2]] = target.rpartition("@")[2]
        return digests

    return servers.run([peer, "pin", "--stdout", "Dockerfile"], pinned, cwd=project,
                       env={**env, "CONTAINERS_REGISTRIES_CONF": str(conf)})


def time_bare(servers: Servers, host: str, tags: list[str], env: dict[str, str]) -> Measured:
    return servers.run([sys.executable, str(ROOT / "bench" / "bare_client.py"), host, REPO, *tags],
                       lambda run: dict(json.loads(run.stdout)), env=env)


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
             "describe_many (in process)", "bare client", "floor"]]
    cpu_rows = [["N", "tool", "wall", "tool CPU", "registry CPU", "proxy CPU", "all CPU / cores"]]
    targets: list[Target] = []
    with tempfile.TemporaryDirectory(prefix="pinrepro-bench-") as tmp:
        scratch = Path(tmp)
        env = {**os.environ, **isolate(scratch)}
        with RegistryServer(scratch / "registry", "anonymous") as server:
            print(f"registry {server.host}; pushing {max(sizes)} two-platform images ...", flush=True)
            pushed = publish(scratch / "layout", server, max(sizes))
            assert server.port is not None and server.pid is not None
            servers = Servers(server.pid)
            with LatencyProxy("127.0.0.1", server.port, delay=args.delay_ms / 1000) as proxy:
                print(f"latency proxy {proxy.host}: +{args.delay_ms:g} ms each way (RTT {2 * args.delay_ms:g} ms); "
                      f"interpreter start {start * 1000:.0f} ms", flush=True)
                for n in sizes:
                    comparison = Comparison(n, pushed, proxy.host, scratch, env, servers)
                    row, cpus, measured = comparison.run(peer, None if args.skip_skopeo else skopeo,
                                                         floor=floor_seconds(start, n, 2 * args.delay_ms / 1000),
                                                         rounds=args.rounds)
                    rows.append(row)
                    cpu_rows.extend(cpus)
                    targets.extend(measured)
    print()
    print(f"whole commands, one Dockerfile with N FROM lines, +{args.delay_ms:g} ms each way, "
          f"pinrepro per-registry concurrency {DEFAULT_PER_REGISTRY}:")
    table(rows)
    print()
    print(f"CPU seconds during each tool's best run ({os.cpu_count()} cores; the registry and the proxy run on the "
          "same machine as the tool):")
    table(cpu_rows)
    return report(targets)


def floor_seconds(start: float, n: int, rtt: float) -> float:
    """Interpreter start, connect + ping, the tag wave, then per image its platform manifest and config, and the
    two distinct layers once."""
    waves = math.ceil(n / DEFAULT_PER_REGISTRY)
    return start + (2 + waves + 2 * waves + 2) * rtt


class Comparison:
    """Every tool on the same N-line Dockerfile, one after the other: a table row, CPU rows and the targets."""

    def __init__(self, n: int, pushed: dict[str, str], host: str, scratch: Path, env: dict[str, str],
                 servers: Servers) -> None:
        self.n, self.host, self.scratch, self.env, self.servers = n, host, scratch, env, servers
        self.tags = sorted(pushed)[:n]
        self.expected = {tag: pushed[tag] for tag in self.tags}

    def run(self, peer: str, skopeo: str | None, *, floor: float,
            rounds: int) -> tuple[list[str], list[list[str]], list[Target]]:
        n, scratch, env, servers = self.n, self.scratch, self.env, self.servers
        # Best of ``rounds``, each tool a new project each time (and lock an empty cache: a first run); the rounds
        # alternate between the tools, so a busy moment of a shared machine hits them alike.
        runs, peer_runs, warm_runs, bare_runs = [], [], [], []
        for r in range(rounds):
            cache = scratch / f"cache-{n}-{r}"
            runs.append(time_lock(servers, self.project(f"lock-{n}-{r}"), env, cache))
            # The same first lock of another checkout with the scan cache the first one filled (what CI gets from
            # actions/cache): only the tags are asked, like the peer does.
            warm_runs.append(time_lock(servers, self.project(f"warm-{n}-{r}"), env, cache))
            peer_runs.append(time_peer(servers, peer, self.project(f"peer-{n}-{r}"), scratch, self.host, env))
            bare_runs.append(time_bare(servers, self.host, self.tags, env))
        ours, warm, theirs, bare = (min(measured, key=lambda m: m.seconds)
                                    for measured in (runs, warm_runs, peer_runs, bare_runs))
        loop, loop_digests = time_skopeo(skopeo, self.host, self.tags, scratch) if skopeo else (math.nan,
                                                                                                 self.expected)
        inside, requests_sent = time_in_process(self.host, self.tags)
        row = [str(n), f"{ours.seconds:.2f} s ({ours.cpu:.2f} s)", f"{theirs.seconds:.2f} s",
               f"{loop:.2f} s" if skopeo else "skipped", f"{warm.seconds:.2f} s",
               f"{inside:.2f} s ({requests_sent} requests)", f"{bare.seconds:.2f} s", f"{floor:.2f} s"]
        cpus = [_cpu_row(n, name, measured) for name, measured in
                (("pinrepro lock", ours), (f"{PEER} pin", theirs), ("lock, cache warm", warm), ("bare client", bare))]
        agree = all(m.digests == self.expected for m in (ours, warm, theirs, bare)) and loop_digests == self.expected
        return row, cpus, [
            Target(f"N={n}: lock / {PEER} pin", f"{ours.seconds / theirs.seconds:.2f}x", "<= 1.00x",
                   ours.seconds <= theirs.seconds),
            Target(f"N={n}: lock / floor", f"{ours.seconds / floor:.2f}x", "<= 1.50x", ours.seconds <= 1.5 * floor),
            Target(f"N={n}: digests agree (pushed/lock/warm lock/pin/skopeo/bare)", "yes" if agree else "NO",
                   "all equal", agree),
        ]

    def project(self, name: str) -> Path:
        return write_project(self.scratch / name, self.host, self.tags)


def _cpu_row(n: int, name: str, measured: Measured) -> list[str]:
    total = measured.cpu + measured.registry_cpu + measured.proxy_cpu
    return [str(n), name, f"{measured.seconds:.2f} s", f"{measured.cpu:.2f} s", f"{measured.registry_cpu:.2f} s",
            f"{measured.proxy_cpu:.2f} s", f"{total / (os.cpu_count() or 1):.2f} s"]


if __name__ == "__main__":
    sys.exit(main())
