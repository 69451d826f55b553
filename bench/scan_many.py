"""Bench: content scans run concurrently with a bound on memory, and a cold scan's bytes and time vs `skopeo copy`.

Part 1 - memory while K layers stream at once (K = 1, 2, 4, 8 by default). Each K runs in a fresh child process
(``ru_maxrss`` is then that K's own peak): K threads, each reading its own generated layer of ``--size`` MB
(distinct digests, tar generated on the fly, never whole in memory) through ``LayerFlights`` - what ``lock``'s
scans go through - into ``read_layer``. Flat means the peak at K = 8 stays within ``--flat-mb`` of the peak at
K = 1. Layers are uncompressed tar here, so the CPU goes to reading rather than to generating gzip (the gzip and
zstd readers' memory is measured per layer by bench/scan.py).

Part 2 - a cold scan of a CUDA-like image (a base with os-release and a dpkg database, a CUDA layer with its apt
packages, and a large top layer of model weights, ``--top-mb`` MB, incompressible) from a loopback
docker-registry: ``pinrepro lock`` as a command with an empty cache - bytes downloaded (counted by a proxy in
front of the registry) and time - against ``skopeo copy`` of the same image to a directory (which reads every
layer once), in the same run.

Targets (exit 1 when one is missed, 2 when a tool is missing): peak RSS flat from 1 to 8 concurrent layers; the
cold scan downloads no more than ``skopeo copy`` and takes no longer than it.

    .venv/bin/python bench/scan_many.py [--size 1000] [--streams 1,2,4,8] [--top-mb 300]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Target, isolate, pinrepro_command, report, table, timed
from bench.scan import _RANDOM, MB, STATUS, IterReader, _file

_STREAM_BUFFER = 1 << 16  # pinrepro.registry.client's buffer over a blob's body


def layer_stream(k: int, size: int) -> Iterator[bytes]:
    """Layer ``k``: a big file (incompressible, like weights), then os-release and a dpkg database; tar, no gzip."""
    yield from _file(f"opt/model/weights-{k}.bin", size, _RANDOM)
    yield from _file("etc/os-release", 24, b"ID=debian\nVERSION_ID=12\n")
    yield from _file("var/lib/dpkg/status", len(STATUS), STATUS)
    yield b"\0" * 1024


def child(streams: int, size: int) -> None:
    from pinrepro.inventory.flights import LayerFlights
    from pinrepro.inventory.layers import read_layer

    digests = []
    for k in range(streams):  # learn each digest first: read_layer verifies what it reads against it
        digest = hashlib.sha256()
        for chunk in layer_stream(k, size):
            digest.update(chunk)
        digests.append("sha256:" + digest.hexdigest())
    flights = LayerFlights(streams=streams)
    errors: list[BaseException] = []
    started = time.perf_counter()

    def scan(k: int) -> None:
        def read() -> object:
            # The buffer RegistryClient.open_blob puts over a layer's HTTP body: what each of lock's streams holds.
            stream = io.BufferedReader(IterReader(layer_stream(k, size)), _STREAM_BUFFER)
            return read_layer(stream, digest=digests[k], media_type="bench", where="bench")

        try:
            flights.facts(digests[k], read)  # type: ignore[arg-type]
        except BaseException as exc:  # reported by the parent
            errors.append(exc)

    threads = [threading.Thread(target=scan, args=(k,)) for k in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mb": peak_kb / 1024, "seconds": time.perf_counter() - started, "reads": flights.reads}))


def memory_rows(streams: list[int], size_mb: int) -> list[tuple[int, float, float]]:
    rows = []
    for k in streams:
        proc = subprocess.run([sys.executable, __file__, "--child", str(k), str(size_mb * MB)], capture_output=True,
                              text=True, check=False, timeout=3600)
        if proc.returncode != 0:
            raise SystemExit(f"child with {k} streams failed:\n{proc.stderr}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result["reads"] == k
        rows.append((k, result["peak_mb"], result["seconds"]))
        print(f"  {k} concurrent {size_mb} MB layers: peak RSS {result['peak_mb']:.1f} MiB, "
              f"{result['seconds']:.1f} s", flush=True)
    return rows


def cuda_like(scratch: Path, top_mb: int) -> tuple[list[dict[str, object]], list[str]]:
    from tests.support import images as im

    rnd = os.urandom
    os_release = b"ID=ubuntu\nVERSION_ID=22.04\nVERSION_CODENAME=jammy\n"
    base = {"usr/lib/os-release": os_release, "etc/os-release": im.Symlink("../usr/lib/os-release"),
            "var/lib/dpkg/status": STATUS, "usr/lib/x86_64-linux-gnu/libc.so.6": rnd(8 * MB)}
    cuda = {"var/lib/dpkg/status": STATUS + STATUS.replace(b"pkg", b"cuda-libraries"),
            "usr/local/cuda/lib64/libcublas.so.12": rnd(40 * MB)}
    weights = {"opt/model/weights.safetensors": rnd(top_mb * MB)}
    return [base, cuda, weights], ["CUDA_VERSION=12.4.1", "NVIDIA_REQUIRE_CUDA=cuda>=12.4"]


def cold_scan(scratch: Path, top_mb: int, env: dict[str, str]) -> dict[str, float]:
    import requests

    from tests.support import images as im
    from tests.support import pushing
    from tests.support.latency_proxy import LatencyProxy
    from tests.support.registry import RegistryServer
    from tests.support.tools import find_tool

    skopeo = find_tool("skopeo")
    assert skopeo is not None
    layers, image_env = cuda_like(scratch, top_mb)
    print(f"building a CUDA-like image with a {top_mb} MB top layer ...", flush=True)
    built = im.build_image(scratch / "layout", "cuda", layers, env=image_env)  # type: ignore[arg-type]
    compressed = sum(len(im.read_blob(scratch / "layout", d)) for d in (built.config_digest, *built.layer_digests))
    with RegistryServer(scratch / "registry", "anonymous") as server, requests.Session() as session:
        pushing.push_http(scratch / "layout", "cuda", server.url, "nvidia/cuda-like", "12.4.1", session=session)
        assert server.port is not None
        with LatencyProxy("127.0.0.1", server.port, delay=0.0, handshake=False) as proxy:
            project = scratch / "project"
            project.mkdir()
            (project / "Dockerfile").write_text(f"FROM {proxy.host}/nvidia/cuda-like:12.4.1\n")
            (project / "pinrepro.toml").write_text(f'insecure_registries = ["{proxy.host}"]\n')
            before = proxy.bytes_down
            ours = timed([*pinrepro_command(), "-C", str(project), "lock", "-q"],
                         env={**env, "XDG_CACHE_HOME": str(scratch / "cold-cache")}, timeout=1800)
            our_bytes = proxy.bytes_down - before
            authfile = scratch / "auth.json"
            authfile.write_text('{"auths": {}}')
            before = proxy.bytes_down
            theirs = timed([skopeo, "copy", "--src-tls-verify=false", "--src-no-creds", "--authfile", str(authfile),
                            f"docker://{proxy.host}/nvidia/cuda-like:12.4.1", f"dir:{scratch / 'copy'}"],
                           env=env, timeout=1800)
            their_bytes = proxy.bytes_down - before
    shutil.rmtree(scratch / "copy", ignore_errors=True)
    return {"compressed": compressed, "ours_s": ours.seconds, "ours_bytes": our_bytes, "theirs_s": theirs.seconds,
            "theirs_bytes": their_bytes}


def main(argv: list[str] | None = None) -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), int(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1000, help="MB per layer in part 1 (default: 1000)")
    parser.add_argument("--streams", default="1,2,4,8", help="concurrent layers in part 1 (default: 1,2,4,8)")
    parser.add_argument("--flat-mb", type=float, default=32.0, help="'flat': peak grows by less (default: 32)")
    parser.add_argument("--top-mb", type=int, default=300, help="the CUDA-like image's top layer (default: 300)")
    args = parser.parse_args(argv)
    from tests.support.tools import find_tool

    if find_tool("docker-registry") is None or find_tool("skopeo") is None:
        print("bench/scan_many.py needs Debian's docker-registry and skopeo")
        return 2

    print(f"part 1 - concurrent {args.size} MB layers through LayerFlights (one child process per row):")
    rows = memory_rows([int(s) for s in args.streams.split(",")], args.size)
    with tempfile.TemporaryDirectory(prefix="pinrepro-bench-") as tmp:
        scratch = Path(tmp)
        env = {**os.environ, **isolate(scratch)}
        cold = cold_scan(scratch, args.top_mb, env)

    print()
    table([["concurrent layers", "peak RSS", "time"]] +
          [[str(k), f"{peak:.1f} MiB", f"{seconds:.1f} s"] for k, peak, seconds in rows])
    print()
    print(f"cold scan of a CUDA-like image ({cold['compressed'] / MB:.0f} MB compressed, {args.top_mb} MB top layer):")
    table([["", "bytes downloaded", "time"],
           ["pinrepro lock (empty cache)", f"{cold['ours_bytes'] / MB:.1f} MB", f"{cold['ours_s']:.2f} s"],
           ["skopeo copy (every layer once)", f"{cold['theirs_bytes'] / MB:.1f} MB", f"{cold['theirs_s']:.2f} s"]])
    growth = rows[-1][1] - rows[0][1]
    return report([
        Target(f"peak RSS, {rows[-1][0]} vs {rows[0][0]} concurrent layers", f"+{growth:.1f} MiB",
               f"< +{args.flat_mb:g} MiB", growth < args.flat_mb),
        Target("cold scan bytes / skopeo copy", f"{cold['ours_bytes'] / cold['theirs_bytes']:.2f}x", "<= 1.00x",
               cold["ours_bytes"] <= cold["theirs_bytes"]),
        Target("cold scan time / skopeo copy", f"{cold['ours_s'] / cold['theirs_s']:.2f}x", "<= 1.00x",
               cold["ours_s"] <= cold["theirs_s"]),
    ])


if __name__ == "__main__":
    sys.exit(main())
