"""Image inventory: peak memory while streaming big layers, and bytes downloaded per image (first run vs cached).

Run from the repository root:

    .venv/bin/python bench/scan.py [--sizes 100,1000] [--skip-registry]

Part 1 - memory. Each case runs in a fresh child process (so ``ru_maxrss`` is that case's own peak): a layer
is generated on the fly (tar -> gzip/zstd, never in memory or on disk as a whole) and fed to
``pinrepro.inventory.layers.read_layer``. Cases: one big file above or below the dpkg status, 100 MB and 1 GB,
gzip and zstd; and a layer of 200 000 small files, read by read_layer and by a naive ``tarfile`` stream loop
(which keeps every TarInfo). The "idle" row is a child that only imports the modules. Flat memory means the
read_layer rows stay near "idle" whatever the layer size. The big file is incompressible (like model weights),
so the compressed stream is as big as the layer. The layer is generated and compressed twice (first to learn its
digest, which read_layer verifies), so the times include generation and compression.

Part 2 - bytes. A loopback ``docker-registry`` (Debian's), images pushed over HTTP: per image, the compressed
size of its config and layers, and what ``scan_platform`` downloaded (``RegistryClient.blob_bytes``) on a first
run with an empty cache and on a second run with the cache the first filled.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import os
import random
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MB = 1000 * 1000
_CHUNK = 1 << 20
_RANDOM = random.Random(0).randbytes(8 << 20)
STATUS = b"".join(
    f"Package: pkg{i}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.{i}-1\n"
    f"Description: package {i}\n some text\n\n".encode()
    for i in range(3000)
)


# -- part 1: layers generated on the fly --------------------------------------------------------------------


def _member(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 1_700_000_000
    return info.tobuf(format=tarfile.PAX_FORMAT)


@functools.cache
def _pieces(fill: bytes) -> tuple[bytes, ...]:
    return tuple(fill[i:i + _CHUNK] for i in range(0, len(fill), _CHUNK))


def _file(name: str, size: int, fill: bytes) -> Iterator[bytes]:
    yield _member(name, size)
    pieces = _pieces(fill)
    left = size
    index = 0
    while left > 0:
        piece = pieces[index % len(pieces)][:left]
        index += 1
        left -= len(piece)
        yield piece
    if size % 512:
        yield b"\0" * (512 - size % 512)


def tar_stream(case: str, size: int) -> Iterator[bytes]:
    """The tar of one bench layer, chunk by chunk."""
    # Incompressible like model weights: 8 MiB of seeded random bytes, cycled - longer than the gzip and
    # zstd windows, so the compressed layer is as big as the tar and the download side is big too.
    fill = _RANDOM
    if case == "big-above":
        yield from _file("opt/model/weights.bin", size, fill)
        yield from _file("etc/os-release", 30, b"ID=debian\nVERSION_ID=12\n......"[:30])
        yield from _file("var/lib/dpkg/status", len(STATUS), STATUS)
    elif case == "big-below":
        yield from _file("etc/os-release", 30, b"ID=debian\nVERSION_ID=12\n......"[:30])
        yield from _file("var/lib/dpkg/status", len(STATUS), STATUS)
        yield from _file("opt/model/weights.bin", size, fill)
    elif case == "many-files":
        count = int(os.environ.get("PINREPRO_BENCH_FILES", "200000"))
        for i in range(count):
            yield from _file(f"usr/share/many/{i // 1000}/file{i}.txt", 64, b"x" * 64)
        yield from _file("var/lib/dpkg/status", len(STATUS), STATUS)
    else:
        raise ValueError(case)
    yield b"\0" * 1024


def compressed_stream(case: str, size: int, compression: str) -> Iterator[bytes]:
    if compression == "gzip":
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
        for chunk in tar_stream(case, size):
            out = compressor.compress(chunk)
            if out:
                yield out
        yield compressor.flush()
    else:
        import zstandard

        zstd = zstandard.ZstdCompressor(level=1).compressobj()
        for chunk in tar_stream(case, size):
            out = zstd.compress(chunk)
            if out:
                yield out
        yield zstd.flush()


class IterReader(io.RawIOBase):
    """A file object over an iterator of byte chunks (what a streamed HTTP body looks like)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        # A view: handing out part of a chunk copies nothing (a bytes slice would copy the rest of the chunk
        # on every read, and the bench would measure its own copies).
        self._buffer = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            try:
                self._buffer = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._buffer))
        buffer[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def child(case: str, size: int, compression: str, reader: str) -> None:
    from pinrepro.inventory.layers import read_layer

    started = time.perf_counter()
    packages = 0
    compressed = 0
    if reader != "idle":
        digest = hashlib.sha256()
        for chunk in compressed_stream(case, size, compression):
            digest.update(chunk)
            compressed += len(chunk)
        stream = io.BufferedReader(IterReader(compressed_stream(case, size, compression)), _CHUNK)
        if reader == "read_layer":
            facts = read_layer(stream, digest="sha256:" + digest.hexdigest(), media_type="bench", where="bench")
            status = facts.files["var/lib/dpkg/status"].status
            packages = len(status.packages) if status else 0
        else:  # naive: tarfile's own stream loop, which keeps every member it has seen
            import gzip

            with tarfile.open(fileobj=gzip.GzipFile(fileobj=stream), mode="r|") as tar:  # type: ignore[call-overload]
                for info in tar:
                    if info.name == "var/lib/dpkg/status":
                        handle = tar.extractfile(info)
                        packages = handle.read().count(b"Package: ") if handle else 0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mb": peak_kb / 1024, "seconds": time.perf_counter() - started, "packages": packages,
                      "compressed": compressed}))


def run_child(case: str, size: int, compression: str, reader: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, __file__, "--child", case, str(size), compression, reader],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"child {case} {size} {compression} {reader} failed:\n{proc.stderr}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def memory_table(sizes: list[int]) -> None:
    print("Part 1 - peak RSS of one child process per case (MiB)")
    header = f"{'case':<12} {'layer (tar)':>12} {'compressed':>12} {'comp':<5} {'reader':<11} {'peak RSS':>9} " \
             f"{'time':>7} {'packages':>8}"
    print(header)
    print("-" * len(header))
    rows = [("idle", 0, "gzip", "idle")]
    for size_mb in sizes:
        for case in ("big-above", "big-below"):
            for compression in ("gzip", "zstd"):
                rows.append((case, size_mb * MB, compression, "read_layer"))
    rows += [("many-files", 0, "gzip", "read_layer"), ("many-files", 0, "gzip", "naive")]
    for case, size, compression, reader in rows:
        result = run_child(case, size, compression, reader)
        tar_size = "200k files" if case == "many-files" else (f"{size // MB} MB" if size else "-")
        comp_size = f"{result['compressed'] / MB:.1f} MB" if result["compressed"] else "-"
        print(f"{case:<12} {tar_size:>12} {comp_size:>12} {compression if reader != 'idle' else '-':<5} "
              f"{reader:<11} {result['peak_mb']:>7.1f}Mi {result['seconds']:>6.1f}s {int(result['packages']):>8}")


# -- part 2: bytes downloaded ----------------------------------------------------------------------------


def bytes_table() -> None:
    from pinrepro.inventory.cache import Cache
    from pinrepro.inventory.scan import scan_platform
    from pinrepro.reference import ImageRef
    from pinrepro.registry.authn import AnonymousKeychain
    from pinrepro.registry.client import PlatformManifest, RegistryClient
    from tests.support import images as im
    from tests.support import pushing
    from tests.support.registry import RegistryServer
    from tests.support.tools import find_tool

    if find_tool("docker-registry") is None:
        print("Part 2 skipped: docker-registry is not installed")
        return
    rnd = os.urandom
    os_release = b"ID=ubuntu\nVERSION_ID=22.04\nVERSION_CODENAME=jammy\n"
    base = {"usr/lib/os-release": os_release, "etc/os-release": im.Symlink("../usr/lib/os-release"),
            "var/lib/dpkg/status": STATUS, "usr/lib/libbig.so": rnd(8 * MB)}
    apt = {"var/lib/dpkg/status": STATUS + STATUS.replace(b"pkg", b"cuda"), "usr/local/cuda/lib.so": rnd(12 * MB)}
    images = {
        "cuda-app": ([base, apt, {"app/model.bin": rnd(6 * MB)}], ["CUDA_VERSION=12.4.0"]),
        "cuda-app2 (same base)": ([base, apt, {"app/other.bin": rnd(3 * MB)}], ["CUDA_VERSION=12.4.0"]),
        "squashed top": ([{"big": rnd(20 * MB)}, {"big2": rnd(10 * MB)},
                          {"etc/os-release": os_release, "var/lib/dpkg/status": STATUS}], ["PYTHON_VERSION=3.11.9"]),
    }
    with tempfile.TemporaryDirectory(prefix="pinrepro-bench-") as tmp:
        root = Path(tmp)
        server = RegistryServer(root / "registry").start()
        try:
            cache = Cache(root / "cache")
            print()
            print("Part 2 - bytes downloaded by scan_platform (config + layers), one shared cache")
            header = f"{'image':<24} {'layers':>6} {'compressed':>11} {'1st run':>11} {'2nd run':>9} {'1st/total':>9}"
            print(header)
            print("-" * len(header))
            for name, (layers, env) in images.items():
                tag = name.split()[0]
                layout = root / "layout"
                built = im.build_image(layout, tag, layers, env=env)  # type: ignore[arg-type]
                pushing.push_http(layout, tag, server.url, "bench/app", tag)
                total = sum(len(im.read_blob(layout, d)) for d in (built.config_digest, *built.layer_digests))
                ref = ImageRef.parse(f"{server.host}/bench/app:{tag}")
                platform = PlatformManifest(built.digest, built.media_type, built.config_digest)
                runs = []
                for _ in range(2):
                    with RegistryClient(AnonymousKeychain()) as client:
                        scan_platform(client, ref, platform, cache=cache)
                        runs.append(client.blob_bytes)
                print(f"{name:<24} {len(layers):>6} {total / MB:>9.2f}MB {runs[0] / MB:>9.2f}MB {runs[1]:>8}B "
                      f"{runs[0] / total:>8.1%}")
        finally:
            server.stop()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        case, size, compression, reader = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
        child(case, size, compression, reader)
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000", help="layer sizes in MB (default: 100,1000)")
    parser.add_argument("--skip-registry", action="store_true", help="only part 1")
    args = parser.parse_args()
    memory_table([int(s) for s in args.sizes.split(",") if s])
    if not args.skip_registry:
        bytes_table()


if __name__ == "__main__":
    main()
