"""Compile the same layered ML-service requirements with pip-compile and uv, and time a no-change lock.

Needs PyPI (the resolvers see pip's defaults, never this machine's pip.conf). Run from the repository root:

    .venv/bin/python bench/compile.py [--warm-rounds 2] [--no-cold]

For each backend it compiles the two layers from scratch: "cold" with empty pip / pip-tools / uv caches
(fresh cache directories), and "warm" with the caches the cold run filled (the lock files are deleted between
runs, so every run is a full resolution, not a kept pin), and then incrementally: one package added to the
app layer, so base is kept and app is recompiled with its existing pins (and, for pip-compile, its hashes).
Every resolver run is timed on its own; what is left of compile_layers' wall time is pinrepro's part (hashing,
staging, probing the interpreter, normalising output).
Then a 5-layer project is locked once and ``pinrepro lock`` is timed with nothing changed: in process
(``run_lock``, every resolver run counted) and as the command a user types (a new process each time).

Then what ``--upgrade`` costs (the weekly refresh re-resolves every layer): each backend, warm caches, on the
example service's layers and on a large ML service (torch, torchvision; transformers, accelerate, datasets), and
``pinrepro refresh`` as a command on examples/ml-service with ``resolver = "uv"`` when nothing moved (its two CUDA
base images served by a loopback registry as a docker.io mirror; Docker Hub is not what is measured).

Targets (exit 1 when one is missed, 2 when pip-tools or uv is missing): a no-change lock of 5 layers runs no
resolver and takes under a second, as a command; the two backends write byte-identical locks; a refresh with
nothing to update, uv, under 5 s as a command.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pinrepro import config as config_module
from pinrepro import reqfile
from pinrepro.errors import ResolverError
from pinrepro.fsutil import write_atomically
from pinrepro.layers.compile import compile_layers
from pinrepro.lock import run_lock
from pinrepro.resolvers import ResolverRunner
from pinrepro.upgrade import Upgrade

SERVICE = {
    "base": ["numpy", "onnxruntime"],
    "app": ["fastapi", "uvicorn", "pydantic", "httpx", "python-multipart", "prometheus-client"],
}
# What ML services pin: the packages whose wheels are hundreds of MB and whose dependency trees are deep.
LARGE_ML = {
    "base": ["torch", "torchvision"],
    "app": ["transformers", "accelerate", "datasets", "fastapi"],
}
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ml-service"
FIVE = {
    "base": ["numpy", "onnxruntime"],
    "science": ["scipy", "scikit-learn"],
    "app": ["fastapi", "uvicorn", "pydantic"],
    "observability": ["prometheus-client", "opentelemetry-api"],
    "tests": ["pytest", "httpx"],
}


class TimedRunner(ResolverRunner):
    """A runner that remembers how long each resolver run took."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.seconds: list[float] = []

    def resolve(self, argv: Sequence[str], *, cwd: Path, **options: Any) -> subprocess.CompletedProcess[str]:
        start = time.perf_counter()
        try:
            return super().resolve(argv, cwd=cwd, **options)
        finally:
            self.seconds.append(time.perf_counter() - start)


def project(root: Path, layers: dict[str, list[str]], resolver: str) -> config_module.Config:
    root.mkdir(parents=True, exist_ok=True)
    toml = [f'resolver = "{resolver}"', 'python = "3.11"']
    below: list[str] = []
    for name, packages in layers.items():
        (root / f"requirements-{name}.in").write_text("".join(f"{p}\n" for p in packages))
        toml += ["[[layers]]", f'name = "{name}"', f'requirements = "requirements-{name}.in"',
                 "constraints = [" + ", ".join(f'"{b}"' for b in below) + "]"]
        below.append(name)
    (root / "pinrepro.toml").write_text("\n".join(toml) + "\n")
    return config_module.load(root)


def clean(config: config_module.Config) -> None:
    for layer in config.layers:
        (config.root / layer.lock).unlink(missing_ok=True)


def run_once(config: config_module.Config, environ: dict[str, str]) -> tuple[float, list[float], list[bytes]]:
    runner = TimedRunner(environ=environ)
    clean(config)
    start = time.perf_counter()
    outcomes = compile_layers(config, {}, runner=runner)
    total = time.perf_counter() - start
    write_atomically({o.lock_path: o.content for o in outcomes})
    return total, runner.seconds, [o.content for o in outcomes]


def incremental(config: config_module.Config, environ: dict[str, str]) -> tuple[float, list[float]]:
    """Lock, add one package to the app layer, lock again: base is kept, app recompiled with its old pins."""
    app = config.root / "requirements-app.in"
    app.write_text("".join(f"{p}\n" for p in SERVICE["app"]))
    clean(config)
    outcomes = compile_layers(config, {}, runner=TimedRunner(environ=environ))
    write_atomically({o.lock_path: o.content for o in outcomes})
    records = {o.name: o.record for o in outcomes}
    app.write_text(app.read_text() + "orjson\n")
    runner = TimedRunner(environ=environ)
    start = time.perf_counter()
    compile_layers(config, records, runner=runner)
    total = time.perf_counter() - start
    app.write_text("".join(f"{p}\n" for p in SERVICE["app"]))
    return total, [0.0, *runner.seconds]


def startup(python: str, environ: dict[str, str]) -> float:
    """Seconds to start pip-compile and import pip + pip-tools (no resolution)."""
    env = {**environ, "PIP_CONFIG_FILE": os.devnull}
    start = time.perf_counter()
    subprocess.run([python, "-c", "import piptools.scripts.compile, pip._internal.resolution.resolvelib.resolver"],
                   env=env, check=True)
    return time.perf_counter() - start


class _Counted:
    """Counts every resolver run, including those of runners that ``run_lock`` makes for itself."""

    def __init__(self) -> None:
        self.runs = 0
        self._original = ResolverRunner.resolve

    def __enter__(self) -> _Counted:
        original = self._original

        def resolve(runner: ResolverRunner, argv: Sequence[str], *, cwd: Path,
                    **options: Any) -> subprocess.CompletedProcess[str]:
            self.runs += 1
            return original(runner, argv, cwd=cwd, **options)

        ResolverRunner.resolve = resolve  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        ResolverRunner.resolve = self._original  # type: ignore[method-assign]


def no_change(root: Path, rounds: int) -> tuple[list[float], int, int, list[float]]:
    """Lock 5 layers, then time a lock with nothing changed: (in-process s, resolver runs, files written, command s)."""
    config = project(root, FIVE, "uv")
    run_lock(config)
    times: list[float] = []
    with _Counted() as counted:
        written = 0
        for _ in range(rounds):
            start = time.perf_counter()
            outcome = run_lock(config)
            times.append(time.perf_counter() - start)
            written += len(outcome.files)
    command: list[float] = []
    for _ in range(max(3, rounds // 4)):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pinrepro", "lock", "-q", "-C", str(root)], check=True)
        command.append(time.perf_counter() - start)
    return times, counted.runs, written, command


def upgrade_time(root: Path, layers: dict[str, list[str]], resolver: str, environ: dict[str, str]) -> float:
    """Compile once (caches filled, locks written), then time ``--upgrade``: every layer resolved again."""
    config = project(root, layers, resolver)
    first = compile_layers(config, {}, runner=TimedRunner(environ=environ))
    write_atomically({o.lock_path: o.content for o in first})
    records = {o.name: o.record for o in first}
    start = time.perf_counter()
    compile_layers(config, records, upgrade=Upgrade(everything=True), runner=TimedRunner(environ=environ))
    return time.perf_counter() - start


def refresh_no_change(scratch: Path, rounds: int) -> tuple[float, str]:
    """``pinrepro refresh`` on examples/ml-service with uv, nothing to update: (best seconds, its summary)."""
    import shutil

    from bench.common import isolate, pinrepro_command, timed
    from tests.support import images as im
    from tests.support import pushing
    from tests.support.registry import RegistryServer

    env = {**os.environ, **isolate(scratch)}
    root = scratch / "ml-service"
    shutil.copytree(EXAMPLE, root)
    with RegistryServer(scratch / "registry", "anonymous") as server:
        import requests

        with requests.Session() as session:
            for flavour in ("devel", "runtime"):
                tag = f"12.4.1-{flavour}-ubuntu22.04"
                im.build_two_platform(scratch / "layout", tag, [{"etc/os-release": b"ID=ubuntu\nVERSION_ID=22.04\n"}],
                                      env=["CUDA_VERSION=12.4.1", f"FLAVOUR={flavour}"])
                pushing.push_http(scratch / "layout", tag, server.url, "nvidia/cuda", tag, session=session)
        pyproject = root / "pyproject.toml"
        # apt pins are left out: the stand-in CUDA images have no apt sources, and this measures the resolver.
        text = pyproject.read_text()
        if 'resolver = "uv"' not in text:
            text = text.replace("[tool.pinrepro]\n", '[tool.pinrepro]\nresolver = "uv"\n', 1)
        text += (f'\n[tool.pinrepro.mirrors]\n"docker.io" = "http://{server.host}"\n'
                 '\n[tool.pinrepro.apt]\nenabled = false\n')
        pyproject.write_text(text)
        command = [*pinrepro_command(), "-C", str(root)]
        timed([*command, "lock", "-q"], env=env, timeout=900)
        runs = [timed([*command, "refresh"], env=env, timeout=900) for _ in range(rounds)]
    fastest = min(runs, key=lambda run: run.seconds)
    return fastest.seconds, fastest.stdout


def tools_missing() -> str | None:
    runner = ResolverRunner()
    try:
        runner.find_python(f"{sys.version_info.major}.{sys.version_info.minor}")
        runner.find_uv()
    except ResolverError as exc:
        return exc.line()
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-rounds", type=int, default=2)
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-cache runs")
    parser.add_argument("--no-change-rounds", type=int, default=20)
    parser.add_argument("--no-large", action="store_true", help="skip --upgrade on the large ML service (minutes)")
    parser.add_argument("--refresh-rounds", type=int, default=3)
    args = parser.parse_args()
    missing = tools_missing()
    if missing:
        print(missing, file=sys.stderr)
        return 2

    rows: list[tuple[str, str, float, list[float]]] = []
    contents: dict[str, list[bytes]] = {}
    with tempfile.TemporaryDirectory(prefix="pinrepro-bench-") as tmp:
        scratch = Path(tmp)
        for resolver in ("pip-compile", "uv"):
            config = project(scratch / resolver, SERVICE, resolver)
            caches = scratch / f"cache-{resolver}"
            environ = {**os.environ, "PIP_CACHE_DIR": str(caches / "pip"),
                       "PIP_TOOLS_CACHE_DIR": str(caches / "pip-tools"), "UV_CACHE_DIR": str(caches / "uv")}
            if not args.no_cold:
                total, runs, contents[resolver] = run_once(config, environ)
                rows.append((resolver, "cold", total, runs))
            warm = [run_once(config, environ) for _ in range(args.warm_rounds)]
            best = min(warm, key=lambda item: item[0])
            contents[resolver] = best[2]
            rows.append((resolver, f"warm (best of {args.warm_rounds})", best[0], best[1]))
            total, runs = incremental(config, environ)
            rows.append((resolver, "incremental: +orjson", total, runs))

        print("\nLayered compile of an ML service (base: numpy, onnxruntime; app: fastapi, uvicorn, pydantic, httpx,")
        print("python-multipart, prometheus-client), Python 3.11, linux/amd64, hashes on, PyPI")
        head = f"{'backend':<12} {'caches':<20} {'total s':>8} {'base s':>8} {'app s':>8} {'pinrepro s':>11}"
        print(head)
        print("-" * len(head))
        for resolver, cache, total, runs in rows:
            print(f"{resolver:<12} {cache:<20} {total:>8.2f} {runs[0]:>8.2f} {runs[1]:>8.2f} "
                  f"{total - sum(runs):>11.3f}")
        for cache in ("cold", "warm", "incremental:"):
            pick = {r: t for r, c, t, _ in rows if c.split(" ")[0] == cache}
            if len(pick) == 2:
                print(f"ratio pip-compile / uv, {cache.rstrip(':')}: {pick['pip-compile'] / pick['uv']:.1f}x")
        print(f"pip-compile process start + import of pip and pip-tools: "
              f"{startup(sys.executable, dict(os.environ)):.2f} s per layer")
        same = contents.get("pip-compile") == contents.get("uv")
        print(f"both backends wrote byte-identical locks: {same}")
        if not same:
            for resolver in ("pip-compile", "uv"):
                pins = sorted(f"{name}=={version}" for text in contents[resolver]
                              for name, (version, _) in reqfile.pins(text.decode()).items())
                print(f"  {resolver}: {' '.join(pins)}")

        times, resolver_runs, written, command = no_change(scratch / "five", args.no_change_rounds)

        upgrades: list[tuple[str, str, float]] = []
        services = [("example service", SERVICE)] + ([] if args.no_large else [("large ML service", LARGE_ML)])
        for label, layers in services:
            for resolver in ("pip-compile", "uv"):
                caches = scratch / f"cache-{resolver}"
                environ = {**os.environ, "PIP_CACHE_DIR": str(caches / "pip"),
                           "PIP_TOOLS_CACHE_DIR": str(caches / "pip-tools"), "UV_CACHE_DIR": str(caches / "uv")}
                where = scratch / f"upgrade-{label.replace(' ', '-')}-{resolver}"
                upgrades.append((label, resolver, upgrade_time(where, layers, resolver, environ)))
        print("\n--upgrade (what the weekly refresh runs), warm caches, both layers re-resolved:")
        for label, resolver, seconds in upgrades:
            print(f"  {label:<18} {resolver:<12} {seconds:8.1f} s")
        for label, _ in services:
            pick = {r: t for lab, r, t in upgrades if lab == label}
            print(f"  {label}: pip-compile / uv = {pick['pip-compile'] / pick['uv']:.1f}x", flush=True)
        refresh_s, refresh_summary = refresh_no_change(scratch / "refresh", args.refresh_rounds)
    nothing = "nothing" in refresh_summary.lower() or "no change" in refresh_summary.lower()
    refresh_ok = refresh_s < 5.0
    print(f"\n`pinrepro refresh` on examples/ml-service, resolver uv, nothing to update (best of "
          f"{args.refresh_rounds}): {refresh_s:.2f} s - target < 5 s: {'met' if refresh_ok else 'MISSED'}")
    print("  summary: " + (refresh_summary.strip().splitlines() or ["(empty)"])[0][:100]
          + ("" if nothing else "  (check: the summary does not say nothing changed)"))
    fast = max(command) < 1.0 and resolver_runs == 0 and written == 0
    print(f"\nno-change `pinrepro lock` of 5 layers, {args.no_change_rounds} rounds in process: "
          f"median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms, "
          f"resolver invocations {resolver_runs}, files written {written}")
    print(f"the same as a command ({len(command)} runs, process start included): "
          f"median {statistics.median(command):.2f} s, max {max(command):.2f} s - "
          f"target < 1 s and 0 resolver runs: {'met' if fast else 'MISSED'}")
    print(f"target: backends write byte-identical locks: {'met' if same else 'MISSED'}")
    return 0 if fast and same and refresh_ok else 1


if __name__ == "__main__":
    sys.exit(main())
