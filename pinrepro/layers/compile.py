"""Layered Python lock files: compile each layer under the pins of the layers below it (checked by layers.check).

A layer is a ``.in`` file compiled into a lock (pip-tools' layered workflow, ``-c lower.lock``). The layers form
the Dockerfile's install order (system / framework / app), so an upper layer is compiled under the pins of every
layer below it, transitively: the image installs all of them, and a package may not have two versions in it.

``compile_layers`` never writes into the project: each compile runs in a scratch directory holding copies of the
files it needs at the same relative paths (so ``# via -r requirements-app.in`` reads as in the project, and no
path of this machine leaks in), and returns every lock's new text for the caller to write atomically.
A layer is recompiled only when something recorded in ``pinrepro.lock`` no longer matches: its input, the locks
it was compiled under, the options that affect resolution, or its own lock file (deleted or edited by hand).
Existing pins are kept, as pip-compile keeps them: the current lock goes in as the output file.
A layer has one lock per target architecture when the platforms span several (pinrepro.pyplatforms), each
compiled under the same architecture's locks of the layers below; the configured index is written into every
lock and checked to answer first, with ``${VAR}`` credentials kept as written (pinrepro.pyindex).
"""

from __future__ import annotations

import posixpath
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from pinrepro import pyindex, pyplatforms
from pinrepro.config import Config, IndexOptions, Layer
from pinrepro.layers.inputs import (
    combined_sha256,
    input_files,
    input_sha256,
    options_sha256,
    platform_key,
    read_or_none,
    sha256,
    target_python,
)
from pinrepro.layers.order import below, ordered
from pinrepro.lockfile import LayerLock
from pinrepro.pyindex import Secrets, check_written_credentials, configured_indexes
from pinrepro.reqfile import normalize_output, parse_lock, pins, pins_only, without_options
from pinrepro.resolvers import CompileRequest, ResolverRunner, check_target, compile_layer
from pinrepro.upgrade import NO_UPGRADE, Upgrade

__all__ = ["LayerOutcome", "LayerProgress", "compile_layers"]

# (layer, platform, resolver, seconds): seconds is None when the resolver starts, the time it took when done.
LayerProgress = Callable[[str, str, str, float | None], None]


@dataclass(frozen=True)
class LayerOutcome:
    name: str
    lock_path: Path  # absolute
    content: bytes  # the new lock file text; the caller writes all files atomically (pinrepro.fsutil)
    record: LayerLock  # to store in pinrepro.lock
    compiled: bool  # False when kept as it was (no resolver run)
    # Every lock file whose content differs from the file on disk, and each platform's lock text.
    files: Mapping[Path, bytes] = field(default_factory=dict)
    by_platform: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Any of the layer's lock files differs from the one on disk."""
        return bool(self.files)


def _index_for(config: Config, index: IndexOptions, secrets: Secrets, where: str) -> IndexOptions:
    """The index options as the resolver gets them: ${VAR} expanded, find_links made absolute."""
    links = tuple(
        link if "://" in link or Path(link).is_absolute() else str((config.root / link).resolve())
        for link in index.find_links
    )
    return IndexOptions(
        secrets.expand(index.index_url, where=where) if index.index_url else None,
        tuple(secrets.expand(url, where=where) for url in index.extra_index_urls),
        tuple(secrets.expand(link, where=where) for link in links), index.timeout,
    )


@dataclass(frozen=True)
class _Run:
    """What every layer of one ``compile_layers`` call shares."""

    config: Config
    runner: ResolverRunner
    platforms: tuple[str, ...]
    upgrade: bool
    wanted: frozenset[str]  # --upgrade-package names, canonical
    progress: LayerProgress | None


def compile_layers(config: Config, previous: Mapping[str, LayerLock], *, upgrade: Upgrade = NO_UPGRADE,
                   runner: ResolverRunner | None = None,
                   platform: str | None = None, progress: LayerProgress | None = None) -> list[LayerOutcome]:
    """Every configured layer's lock(s), compiled where needed, lowest layer first. Writes nothing.

    Each layer is locked for every configured platform (one lock per architecture, pinrepro.pyplatforms);
    ``platform`` restricts that to one platform. ``progress`` hears of each resolver run as it starts and ends.
    """
    run = _Run(config, runner or ResolverRunner(), (platform,) if platform else tuple(config.platforms),
               upgrade.everything, frozenset(canonicalize_name(name) for name in upgrade.packages), progress)
    for layer in config.layers:  # refuse an impossible target before any resolver runs
        check_written_credentials(layer.index, where=f"{config.source} layer '{layer.name}'")
        for target in pyplatforms.targets(layer.lock, run.platforms):
            check_target(layer.resolver, target.platform, layer.name, run.platforms)
    done: dict[str, LayerOutcome] = {}
    for layer in ordered(config.layers):
        done[layer.name] = _lock_layer(run, layer, previous.get(layer.name), done)
    return list(done.values())


def _lock_layer(run: _Run, layer: Layer, before: LayerLock | None, done: Mapping[str, LayerOutcome]) -> LayerOutcome:
    """One layer's outcome: kept as it is when nothing it was compiled from changed, compiled otherwise."""
    config = run.config
    python = target_python(layer, config, before.python if before else None)
    files = input_files(config, layer)
    inputs = input_sha256(config, layer, files)
    lower = below(config.layers, layer)
    constraints = {dep.name: done[dep.name].record.output_sha256 for dep in lower}
    targets = pyplatforms.targets(layer.lock, run.platforms)
    options = options_sha256(layer, python, platform_key(targets))
    current = {t.platform: read_or_none(config.root / t.lock) for t in targets}
    shas = {t.platform: sha256(data) for t in targets if (data := current[t.platform]) is not None}
    # The locks on disk are the ones pinrepro wrote (their hashes can be reused) when the record's hash matches.
    trusted = before is not None and before.output_sha256 == combined_sha256(targets, shas)
    if trusted and before is not None and len(shas) == len(targets) and not run.upgrade and \
            (before.requirements, before.lock) == (layer.requirements, layer.lock) and \
            (before.input_sha256, before.options_sha256) == (inputs, options) and \
            dict(before.constraints) == constraints and not _upgrades_a_pin(run.wanted, current.values()):
        kept = {t.lock: current[t.platform] or b"" for t in targets}
        return _outcome(config, layer, targets, kept, before, compiled=False, current=current)
    outputs: dict[str, bytes] = {}
    version = ""
    seed = _previous_pins(config, layer, before, targets)
    for target in targets:
        started = time.monotonic()
        if run.progress is not None:
            run.progress(layer.name, target.platform, layer.resolver, None)
        outputs[target.lock], version = _compile(
            run, layer, files, lower, done, current[target.platform] or seed, python=python, target=target,
            reuse_hashes=trusted)
        if run.progress is not None:
            run.progress(layer.name, target.platform, layer.resolver, time.monotonic() - started)
    new_shas = {t.platform: sha256(outputs[t.lock]) for t in targets}
    record = LayerLock(
        requirements=layer.requirements, lock=layer.lock, input_sha256=inputs,
        output_sha256=combined_sha256(targets, new_shas), options_sha256=options, resolver=layer.resolver,
        resolver_version=version, python=python, constraints=constraints,
        platforms=new_shas if len(targets) > 1 else {},
    )
    return _outcome(config, layer, targets, outputs, record, compiled=True, current=current)


def _upgrades_a_pin(wanted: frozenset[str], locks: Iterable[bytes | None]) -> bool:
    """True when --upgrade-package names a package one of the layer's locks pins."""
    return bool(wanted) and any(wanted & set(pins(data.decode("utf-8", "replace")))
                                for data in locks if data is not None)


def _previous_pins(config: Config, layer: Layer, before: LayerLock | None,
                   targets: list[pyplatforms.Target]) -> bytes | None:
    """When the layer's lock files change shape (a platform of another architecture added or removed), the
    pins of the files it had, so that adding linux/arm64 does not move a single linux/amd64 pin."""
    if before is None:
        return None
    had = pyplatforms.targets(before.lock, list(before.platforms)) if before.platforms else \
        [pyplatforms.Target("", posixpath.normpath(before.lock))]
    if {t.lock for t in had} == {t.lock for t in targets}:
        return None
    found = [data for t in had if (data := read_or_none(config.root / t.lock)) is not None]
    return pins_only(found[0]) if found else None


def _outcome(config: Config, layer: Layer, targets: list[pyplatforms.Target], outputs: Mapping[str, bytes],
             record: LayerLock, *, compiled: bool, current: Mapping[str, bytes | None]) -> LayerOutcome:
    first = targets[0]
    return LayerOutcome(
        layer.name, config.root / first.lock, outputs[first.lock], record, compiled=compiled,
        files={config.root / t.lock: outputs[t.lock] for t in targets if outputs[t.lock] != current[t.platform]},
        by_platform={t.platform: outputs[t.lock] for t in targets},
    )


def _compile(run: _Run, layer: Layer, files: list[str], lower: list[Layer], done: Mapping[str, LayerOutcome],
             current: bytes | None, *, python: str, target: pyplatforms.Target,
             reuse_hashes: bool) -> tuple[bytes, str]:
    """One lock of ``layer`` (for ``target``'s platform) from the resolver, in pinrepro's shape; its version."""
    config, runner, platform = run.config, run.runner, target.platform
    secrets = Secrets(runner.variables())
    staged, lower_locks = _staged(run, files, lower, done, platform, secrets)
    if current is not None and not run.upgrade:
        # The existing lock seeds the resolver so its pins are kept. A lock pinrepro did not write (edited by
        # hand) passes on its pins only: newer pips enforce the hashes they find there, and an edited hash must
        # be fetched anew rather than fail the compile. Its index lines stay out: they are ours to write.
        staged[target.lock] = without_options(current) if reuse_hashes else pins_only(current)
    where = f"{config.source} layer '{layer.name}'"
    index = _index_for(config, layer.index, secrets, where)
    if runner.probed is not None:
        pairs = [(secrets.expand(url, where=where), url) for url in configured_indexes(layer.index)]
        pyindex.probe([pair for pair in pairs if pair[0] not in runner.probed], timeout=layer.index.timeout,
                      layer=layer.name)
        runner.probed.update(expanded for expanded, _ in pairs)
    request = CompileRequest(
        layer=layer.name, requirements=posixpath.normpath(layer.requirements), output=target.lock,
        constraints=tuple(lower_locks), python=python, platform=platform,
        hashes=layer.hashes, index=index, upgrade=run.upgrade, upgrade_packages=tuple(sorted(run.wanted)),
        reuse_hashes=reuse_hashes and current is not None and not run.upgrade, secrets=secrets,
    )
    with tempfile.TemporaryDirectory(prefix="pinrepro-compile-") as scratch:
        workdir = _scratch_project(Path(scratch), staged)
        version = compile_layer(runner, layer.resolver, request, workdir)
        text = secrets.restore((workdir / target.lock).read_text(encoding="utf-8"))
    if layer.resolver == "pip-compile" and runner.probed is not None:
        # uv fails on an index page it cannot read; pip skips it silently, so its pages are checked here
        pyindex.probe_pages([(secrets.expand(url, where=where), url) for url in configured_indexes(layer.index)],
                            [e.name for e in parse_lock(text) if e.name], timeout=layer.index.timeout,
                            layer=layer.name)
    secrets.check_lock(text, where=f"layer '{layer.name}' ({layer.requirements})")
    lines = pyindex.index_lines(layer.index)
    return normalize_output(text, python, platform, index_lines=lines).encode("utf-8"), version


def _staged(run: _Run, files: list[str], lower: list[Layer], done: Mapping[str, LayerOutcome], platform: str,
            secrets: Secrets) -> tuple[dict[str, bytes], list[str]]:
    """The files one compile reads, by project-relative path, and the lower layers' locks among them (``-c``).

    Inputs have ``${VAR}`` in their URLs expanded for the resolver (the lock gets the ``${VAR}`` form back); a
    lower layer's lock is its NEW text for this platform's architecture.
    """
    config = run.config
    staged: dict[str, bytes] = {
        rel: secrets.expand_requirements((config.root / rel).read_text(encoding="utf-8"), where=rel).encode()
        for rel in files if not posixpath.isabs(rel)
    }
    lock_of = {item.name: posixpath.normpath(item.lock) for item in config.layers}
    for name, outcome in done.items():
        if lock_of[name] in staged:
            staged[lock_of[name]] = outcome.by_platform.get(platform, outcome.content)
    lower_locks = []
    for dep in lower:
        # the lower layer's lock for the same architecture (its only lock when it has one)
        dep_targets = pyplatforms.targets(dep.lock, run.platforms)
        dep_target = next((t for t in dep_targets if pyplatforms.arch(t.platform) == pyplatforms.arch(platform)),
                          dep_targets[0])
        lower_locks.append(dep_target.lock)
        staged[dep_target.lock] = without_options(done[dep.name].by_platform.get(platform, done[dep.name].content))
    return staged, lower_locks


def _scratch_project(scratch: Path, staged: Mapping[str, bytes]) -> Path:
    """``staged`` written under ``scratch`` at their relative paths; the project folder they are relative to."""
    # Includes such as ../shared/base.in need room above the project's copy (normpath puts ".." first).
    depth = max((rel.split("/").count("..") for rel in staged), default=0)
    workdir = scratch.joinpath(*(["up"] * depth), "project")
    workdir.mkdir(parents=True)
    for rel, data in staged.items():
        path = workdir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return workdir
