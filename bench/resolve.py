"""Bench: resolve 50 tags through a 20 ms (each way) link - pinrepro's RegistryClient vs a skopeo loop.

Starts Debian's docker-registry on loopback, pushes N small two-platform images (distinct tags, shared
layer) straight through the registry API, puts a latency proxy in front, then times in the same run:

  (a) RegistryClient.describe_many over the N refs (through the proxy);
  (b) ``skopeo inspect --raw`` once per tag (through the proxy), as a shell loop would.

Targets: (a) is at least 10x faster than (b), and (a) is within 3x of the bound
3 round trips x ceil(N / concurrency) x RTT. Exits 1 when a target is missed, 2 when a tool is missing.

    .venv/bin/python bench/resolve.py [--images 50] [--delay-ms 20] [--workers 8]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pinrepro.reference import ImageRef
from pinrepro.registry.authn import DefaultKeychain
from pinrepro.registry.client import RegistryClient
from tests.support import images as im
from tests.support.latency_proxy import LatencyProxy
from tests.support.registry import RegistryServer
from tests.support.tools import find_tool

REPO = "bench/resolve"


def isolate(scratch: Path) -> None:
    """Neither pinrepro nor skopeo may read this machine's login files."""
    home = scratch / "home"
    (home / "run").mkdir(parents=True)
    os.environ.update({
        "HOME": str(home), "XDG_RUNTIME_DIR": str(home / "run"), "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"), "DOCKER_CONFIG": str(home / ".docker"),
        "REGISTRY_AUTH_FILE": str(home / "auth.json"),
    })


def publish(layout: Path, server: RegistryServer, count: int) -> dict[str, str]:
    """N distinct two-platform indexes sharing one layer; pushed over HTTP (seconds, not minutes)."""
    shared: im.LayerSpec = {"etc/os-release": b"ID=debian\nVERSION_ID=12\n", "srv/data": b"x" * 4096}
    digests: dict[str, str] = {}
    import requests

    with requests.Session() as session:
        for n in range(count):
            tag = f"t{n:03d}"
            index = im.build_two_platform(layout, tag, [shared], env=[f"BENCH_IMAGE={n}"])
            digests[tag] = im.push_http(layout, tag, server.url, REPO, tag, session=session)
            assert digests[tag] == index.digest
    return digests


def time_pinrepro(proxy_host: str, tags: list[str], workers: int) -> tuple[float, int, dict[str, str]]:
    refs = [ImageRef.parse(f"{proxy_host}/{REPO}:{tag}") for tag in tags]
    client = RegistryClient(DefaultKeychain(env=os.environ), mirrors=None, insecure_registries=(),
                            max_workers=workers)
    try:
        start = time.perf_counter()
        described = client.describe_many(refs)
        elapsed = time.perf_counter() - start
        count = client.transport.request_count
    finally:
        client.close()
    return elapsed, count, {ref.tag or "": d.digest for ref, d in described.items()}


def time_skopeo(skopeo: str, proxy_host: str, tags: list[str], scratch: Path) -> tuple[float, dict[str, str]]:
    authfile = scratch / "skopeo-auth.json"
    authfile.write_text('{"auths": {}}')
    digests: dict[str, str] = {}
    start = time.perf_counter()
    for tag in tags:
        raw = subprocess.run(
            [skopeo, "inspect", "--raw", "--tls-verify=false", "--no-creds", "--authfile", str(authfile),
             f"docker://{proxy_host}/{REPO}:{tag}"],
            check=True, capture_output=True, timeout=120,
        ).stdout
        digests[tag] = im.sha256_digest(raw)
    return time.perf_counter() - start, digests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--delay-ms", type=float, default=20.0, help="added latency each way (ms)")
    parser.add_argument("--workers", type=int, default=8, help="RegistryClient max_workers")
    args = parser.parse_args(argv)

    registry_bin, skopeo = find_tool("docker-registry"), find_tool("skopeo")
    if registry_bin is None or skopeo is None:
        print("bench/resolve.py needs Debian's docker-registry and skopeo (apt install docker-registry skopeo)")
        return 2

    with tempfile.TemporaryDirectory(prefix="pinrepro-bench-") as tmp:
        scratch = Path(tmp)
        isolate(scratch)
        with RegistryServer(scratch / "registry", "anonymous") as server:
            print(f"registry {server.host}; pushing {args.images} two-platform images ...", flush=True)
            pushed = publish(scratch / "layout", server, args.images)
            tags = sorted(pushed)
            assert server.port is not None
            with LatencyProxy("127.0.0.1", server.port, delay=args.delay_ms / 1000) as proxy:
                print(f"latency proxy {proxy.host}: +{args.delay_ms:g} ms each way (RTT {proxy.rtt * 1000:g} ms)")
                ours, requests_sent, our_digests = time_pinrepro(proxy.host, tags, args.workers)
                theirs, skopeo_digests = time_skopeo(skopeo, proxy.host, tags, scratch)

    rtt = 2 * args.delay_ms / 1000
    bound = 3 * math.ceil(args.images / args.workers) * rtt
    ratio = theirs / ours if ours > 0 else math.inf
    correct = our_digests == pushed == skopeo_digests
    ratio_ok = ratio >= 10
    bound_ok = ours <= 3 * bound

    rows = [
        ("images", f"{args.images}", ""),
        ("pinrepro describe_many", f"{ours:8.3f} s", f"{requests_sent} HTTP requests, {args.workers} workers"),
        ("skopeo inspect loop", f"{theirs:8.3f} s", f"{args.images} processes"),
        ("speed-up (skopeo / pinrepro)", f"{ratio:8.1f} x", "target >= 10x: " + ("met" if ratio_ok else "MISSED")),
        ("bound 3 x ceil(N/conc) x RTT", f"{bound:8.3f} s",
         f"3 x {math.ceil(args.images / args.workers)} x {rtt * 1000:g} ms"),
        ("pinrepro / bound", f"{ours / bound:8.2f} x", "target <= 3x: " + ("met" if bound_ok else "MISSED")),
        ("digests agree (built/pinrepro/skopeo)", "yes" if correct else "NO", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print()
    for name, value, note in rows:
        print(f"  {name:<{width}}  {value:>12}  {note}")
    print()
    missed = [name for name, ok in (("speed-up", ratio_ok), ("bound", bound_ok), ("digests", correct)) if not ok]
    if missed:
        print("FAIL: missed " + ", ".join(missed))
        return 1
    print("OK: all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
