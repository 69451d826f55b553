"""Layered Python lock files: compile each layer under the pins of the layers below it (checked offline by pyverify).

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

import hashlib
import json
import posixpath
import re
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from pinrepro import pyindex, pyplatforms
from pinrepro.config import Config, IndexOptions, Layer
from pinrepro.errors import ConfigError
from pinrepro.layers.order import below, ordered
from pinrepro.lockfile import LayerLock
from pinrepro.pyindex import Secrets, check_written_credentials, configured_indexes
from pinrepro.reqfile import (
    INCLUDE_OPTIONS,
    INDEX_OPTIONS,
    lock_options,
    normalize_output,
    parse_lock,
    pins,
    pins_only,
    without_options,
)
from pinrepro.resolvers import CompileRequest, ResolverRunner, check_target, compile_layer
from pinrepro.scrub import redact

__all__ = [
    "LayerOutcome", "LayerProgress", "ResolverRunner", "compile_layers", "input_sha256", "options_sha256",
    "target_python",
]

# (layer, platform, resolver, seconds): seconds is None when the resolver starts, the time it took when done.
LayerProgress = Callable[[str, str, str, float | None], None]
_PYTHON_VERSION = re.compile(r"^3\.\d{1,2}(\.\d{1,3})?$")


@dataclass(frozen=True)
class LayerOutcome:
    name: str
    lock_path: Path  # absolute
    content: bytes  # the new lock file text; the caller writes all files atomically (pinrepro.fsutil)
    record: LayerLock  # to store in pinrepro.lock
    compiled: bool  # False when kept as it was (no resolver run)
    changed: bool  # content differs from the file on disk (any of its files)
    # With one lock per architecture: every file whose content changes, and each platform's lock text.
    files: Mapping[Path, bytes] = field(default_factory=dict)
    by_platform: Mapping[str, bytes] = field(default_factory=dict)


# -- what a layer was compiled from ---------------------------------------------------------------


def target_python(layer: Layer, config: Config, recorded: str | None = None) -> str:
    """The layer's target Python (major.minor[.patch]).

    The configured one; when none is configured, the one the layer was last locked for (``recorded``, from
    pinrepro.lock), and only for a layer never locked the running interpreter's major.minor. Without the
    recorded fallback, ``pinrepro lock`` run from another Python would silently re-target every layer, while
    ``verify`` still called the old locks good.
    """
    if recorded and not _PYTHON_VERSION.match(recorded):
        recorded = None  # a hand-edited pinrepro.lock; the options hash no longer matches either, so it recompiles
    python = layer.python or recorded or f"{sys.version_info.major}.{sys.version_info.minor}"
    if not _PYTHON_VERSION.match(python):
        raise ConfigError(f"python '{python}' of layer '{layer.name}' is not a version like 3.11",
                          where=config.source, fix='write e.g. python = "3.11"')
    return python


def options_sha256(layer: Layer, python: str, platform: str | list[str]) -> str:
    """Hash of every option that changes what the resolver picks or the lock says (a change means: recompile).

    ``platform`` is the one target platform, or the list of them when the layer has a lock per architecture.
    """
    options: dict[str, object] = {
        "resolver": layer.resolver,
        "python": python,
        "platform": platform,
        "hashes": layer.hashes,
        "index_url": layer.index.index_url,
        "extra_index_urls": list(layer.index.extra_index_urls),
        "find_links": list(layer.index.find_links),
    }
    if pyindex.index_lines(layer.index):
        options["emits_index"] = True  # locks written before the index went into them are written again
    return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _input_files(config: Config, layer: Layer) -> list[str]:
    """The layer's ``.in`` and every file it includes with -r / -c, recursively (project-relative POSIX paths)."""
    where = f"{config.source} layer '{layer.name}'"
    if not (config.root / layer.requirements).is_file():
        raise ConfigError(f"requirements file {layer.requirements} does not exist", where=where,
                          fix=f"create {layer.requirements} (one requirement per line) or fix 'requirements'")
    order: list[str] = []
    pending = [posixpath.normpath(layer.requirements)]
    while pending:
        rel = pending.pop(0)
        if rel in order:
            continue
        order.append(rel)
        path = config.root / rel
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {rel}: {exc}", where=where) from None
        for option in lock_options(text):
            number, value = option.line, option.value
            if option.option in INDEX_OPTIONS and "://" in value:
                # An index named inside a requirement file: the resolver would use it, but the lock's index lines
                # and the reachability probe (pyindex) know only the configured ones.
                setting = "index_url" if option.option in ("-i", "--index-url") else (
                    "find_links" if option.option in ("-f", "--find-links") else "extra_index_urls")
                raise ConfigError(
                    f"{option.option} {redact(value)} sets a package index in a requirement "
                    "file, where the lock and its checks cannot see it (pip in the image would not find its "
                    "wheels)", where=f"{rel}:{number}",
                    fix=f"move it to {setting} in the configuration ([tool.pinrepro] or pinrepro.toml)")
            if option.option not in INCLUDE_OPTIONS or not value or "://" in value or "$" in value:
                continue
            target = value
            if not posixpath.isabs(target):
                target = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
            # Only project files are read (and quoted in errors): `-r /etc/passwd` must not print its lines.
            if posixpath.isabs(target) or target.split("/")[0] == ".." or \
                    not (config.root / target).resolve().is_relative_to(config.root.resolve()):
                raise ConfigError(f"{value[:200]} (included by {rel}) is outside the project",
                                  where=f"{rel}:{number}",
                                  fix="requirement files may only include files inside the project root")
            if not (config.root / target).is_file():
                raise ConfigError(f"{value} (included by {rel}) does not exist", where=f"{rel}:{number}",
                                  fix="fix the path; it is relative to the including file")
            pending.append(target)
    return order


def input_sha256(config: Config, layer: Layer) -> str:
    """sha256 of the layer's ``.in``; when it includes other files, a hash over every file and its path."""
    files = _input_files(config, layer)
    if len(files) == 1:
        return _sha256((config.root / files[0]).read_bytes())
    listing = "".join(f"{rel}\0{_sha256((config.root / rel).read_bytes())}\n" for rel in files)
    return _sha256(listing.encode())


# -- compiling ------------------------------------------------------------------------------------


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


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


def compile_layers(config: Config, previous: Mapping[str, LayerLock], *, upgrade: bool = False,
                   upgrade_packages: Collection[str] = (), runner: ResolverRunner | None = None,
                   platform: str | None = None, progress: LayerProgress | None = None) -> list[LayerOutcome]:
    """Every configured layer's lock(s), compiled where needed, lowest layer first. Writes nothing.

    Each layer is locked for every configured platform (one lock per architecture, pinrepro.pyplatforms);
    ``platform`` restricts that to one platform. ``progress`` hears of each resolver run as it starts and ends.
    """
    run = _Run(config, runner or ResolverRunner(), (platform,) if platform else tuple(config.platforms), upgrade,
               frozenset(canonicalize_name(name) for name in upgrade_packages), progress)
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
    files = _input_files(config, layer)
    inputs = input_sha256(config, layer)
    lower = below(config.layers, layer)
    constraints = {dep.name: done[dep.name].record.output_sha256 for dep in lower}
    targets = pyplatforms.targets(layer.lock, run.platforms)
    options = options_sha256(layer, python, _platform_key(targets))
    current = {t.platform: _read(config.root / t.lock) for t in targets}
    shas = {t.platform: _sha256(data) for t in targets if (data := current[t.platform]) is not None}
    # The locks on disk are the ones pinrepro wrote (their hashes can be reused) when the record's hash matches.
    trusted = before is not None and before.output_sha256 == _combined(targets, shas)
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
    new_shas = {t.platform: _sha256(outputs[t.lock]) for t in targets}
    record = LayerLock(
        requirements=layer.requirements, lock=layer.lock, input_sha256=inputs,
        output_sha256=_combined(targets, new_shas), options_sha256=options, resolver=layer.resolver,
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
    found = [data for t in had if (data := _read(config.root / t.lock)) is not None]
    return pins_only(found[0]) if found else None


def _platform_key(targets: list[pyplatforms.Target]) -> str | list[str]:
    # One target keeps the key it always had (a plain platform), so existing records stay valid.
    return targets[0].platform if len(targets) == 1 else [t.platform for t in targets]


def _combined(targets: list[pyplatforms.Target], shas: Mapping[str, str]) -> str:
    """The record's output_sha256: the lock's own sha256, or with several locks a hash over all of them."""
    if len(targets) == 1:
        return shas.get(targets[0].platform, "")
    return _sha256("".join(f"{t.lock}\0{shas.get(t.platform, '')}\n" for t in targets).encode())


def _outcome(config: Config, layer: Layer, targets: list[pyplatforms.Target], outputs: Mapping[str, bytes],
             record: LayerLock, *, compiled: bool, current: Mapping[str, bytes | None]) -> LayerOutcome:
    first = targets[0]
    return LayerOutcome(
        layer.name, config.root / first.lock, outputs[first.lock], record, compiled=compiled,
        changed=any(outputs[t.lock] != current[t.platform] for t in targets),
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
