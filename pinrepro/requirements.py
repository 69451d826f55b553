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
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from pinrepro import pyindex, pyplatforms
from pinrepro.config import Config, IndexOptions, Layer
from pinrepro.errors import ConfigError
from pinrepro.lockfile import LayerLock
from pinrepro.pyindex import Secrets, check_written_credentials, configured_indexes
from pinrepro.resolvers import COMPILE_COMMAND, CompileRequest, ResolverRunner, check_target, compile_layer
from pinrepro.scrub import redact

__all__ = [
    "LayerOutcome", "LayerProgress", "LockEntry", "ResolverRunner", "compile_layers", "input_sha256",
    "options_sha256", "parse_lock", "target_python",
]

# (layer, platform, resolver, seconds): seconds is None when the resolver starts, the time it took when done.
LayerProgress = Callable[[str, str, str, float | None], None]
_PYTHON_VERSION = re.compile(r"^3\.\d{1,2}(\.\d{1,3})?$")
_UNSAFE_COMMENT = "# The following packages are considered to be unsafe in a requirements file:"
_INCLUDE = re.compile(r"^(?:-r|-c|--requirement|--constraint)(?:\s*=\s*|\s+|(?<=-r)|(?<=-c))(\S+)")
# An index named inside a requirement file: the resolver would use it, but the lock's index lines and the
# reachability probe (pyindex) know only the configured ones, so the image's pip would not find its wheels.
_INDEX_OPTION = re.compile(r"^(-i|--index-url|--extra-index-url|-f|--find-links)(?:\s*=\s*|\s+|(?<=-i)|(?<=-f))"
                           r"(\S*://\S+)")


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


@dataclass(frozen=True)
class LockEntry:
    """One requirement of a lock file (continuation lines joined)."""

    line: int
    text: str  # the requirement as written, without options
    name: str | None  # canonical name, None when it does not parse
    version: str | None  # the exact ``==`` version, None when not pinned that way
    hashes: tuple[str, ...]
    editable: bool = False


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
        for number, raw in enumerate(text.splitlines(), start=1):
            option = _INDEX_OPTION.match(raw.strip())
            if option:
                setting = "index_url" if option.group(1) in ("-i", "--index-url") else (
                    "find_links" if option.group(1) in ("-f", "--find-links") else "extra_index_urls")
                raise ConfigError(
                    f"{option.group(1)} {redact(option.group(2))} sets a package index in a requirement "
                    "file, where the lock and its checks cannot see it (pip in the image would not find its "
                    "wheels)", where=f"{rel}:{number}",
                    fix=f"move it to {setting} in the configuration ([tool.pinrepro] or pinrepro.toml)")
            match = _INCLUDE.match(raw.strip())
            if not match or "://" in match.group(1) or "$" in match.group(1):
                continue
            target = match.group(1)
            if not posixpath.isabs(target):
                target = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
            # Only project files are read (and quoted in errors): `-r /etc/passwd` must not print its lines.
            if posixpath.isabs(target) or target.split("/")[0] == ".." or \
                    not (config.root / target).resolve().is_relative_to(config.root.resolve()):
                raise ConfigError(f"{match.group(1)[:200]} (included by {rel}) is outside the project",
                                  where=f"{rel}:{number}",
                                  fix="requirement files may only include files inside the project root")
            if not (config.root / target).is_file():
                raise ConfigError(f"{match.group(1)} (included by {rel}) does not exist", where=f"{rel}:{number}",
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


def _ordered(layers: tuple[Layer, ...]) -> list[Layer]:
    """Layers with every layer after the ones it is constrained by (config order otherwise; no cycles here)."""
    by_name = {layer.name: layer for layer in layers}
    done: list[Layer] = []

    def visit(layer: Layer) -> None:
        if layer in done:
            return
        for dep in layer.constraints:
            visit(by_name[dep])
        done.append(layer)

    for layer in layers:
        visit(layer)
    return done


def _lower(config: Config, layer: Layer) -> list[Layer]:
    """Every layer below ``layer``, transitively, lowest first."""
    by_name = {item.name: item for item in config.layers}
    seen: list[Layer] = []

    def visit(name: str) -> None:
        for dep in by_name[name].constraints:
            visit(dep)
            if by_name[dep] not in seen:
                seen.append(by_name[dep])

    visit(layer.name)
    return [item for item in _ordered(config.layers) if item in seen]


# -- lock file text -------------------------------------------------------------------------------


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, text) of each logical line: continuations joined, comments removed."""
    start = 0
    parts: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw)
        if not parts:
            start = number
        if line.rstrip().endswith("\\"):
            parts.append(line.rstrip()[:-1])
            continue
        parts.append(line)
        joined = " ".join(part.strip() for part in parts).strip()
        parts = []
        if joined:
            yield start, joined
    if parts:
        joined = " ".join(part.strip() for part in parts).strip()
        if joined:
            yield start, joined


def parse_lock(text: str) -> list[LockEntry]:
    """The requirement lines of a pip-tools style lock (option lines such as --index-url are skipped)."""
    entries: list[LockEntry] = []
    for number, line in _logical_lines(text):
        editable = False
        if line.startswith(("-e ", "--editable ", "--editable=")):
            editable = True
            line = re.sub(r"^(-e|--editable)[ =]\s*", "", line)
        elif line.startswith("-"):
            continue
        hashes = tuple(re.findall(r"--hash[= ](\S+)", line))
        requirement = re.split(r"\s--?[a-z]", " " + line, maxsplit=1)[0].strip()
        name: str | None = None
        version: str | None = None
        try:
            parsed = Requirement(requirement)
        except InvalidRequirement:
            parsed = None
        if parsed is not None:
            name = canonicalize_name(parsed.name)
            specs = list(parsed.specifier)
            if not editable and parsed.url is None and len(specs) == 1 and specs[0].operator in ("==", "===") \
                    and "*" not in specs[0].version:
                version = specs[0].version
        entries.append(LockEntry(number, requirement, name, version, hashes, editable))
    return entries


def _pins(text: str) -> dict[str, tuple[str, int]]:
    return {e.name: (e.version, e.line) for e in parse_lock(text) if e.name and e.version}


def header(python: str, platform: str) -> str:
    return (
        "#\n"
        f"# This file is autogenerated by {COMPILE_COMMAND} for Python {python} on {platform}\n"
        "# by the following command:\n"
        "#\n"
        f"#    {COMPILE_COMMAND}\n"
        "#\n"
    )


def normalize_output(text: str, python: str, platform: str, *, index_lines: list[str] | None = None) -> str:
    """pip-compile's and uv's output in one shape: the same header, entries sorted by name.

    The resolvers differ only in the header and in pip-tools' trailing "unsafe" section (setuptools, pip),
    which uv sorts in with the rest; with both in one shape, switching resolvers changes no byte that a
    changed pin would not. ``index_lines`` (the configured index, pinrepro.pyindex) come right after the header;
    index options the resolver printed itself are dropped.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    body_start = 0
    for index, line in enumerate(lines[:12]):
        if line.strip() == f"#    {COMPILE_COMMAND}":
            body_start = index + 1
            if body_start < len(lines) and lines[body_start].strip() == "#":
                body_start += 1
            break
    else:  # a header we do not know: drop every leading comment line
        while body_start < len(lines) and lines[body_start].startswith("#"):
            body_start += 1
    blocks: list[list[str]] = []
    loose: list[str] = []  # option lines (e.g. --only-binary) stay first, in order
    for line in lines[body_start:]:
        if not line.strip() or line.strip() == _UNSAFE_COMMENT:
            continue
        if line[0].isspace() or line.startswith("#"):
            (blocks[-1] if blocks else loose).append(line)
        elif line.startswith("-") and not line.startswith(("-e ", "--editable")):
            if index_lines is None or not re.match(r"^(--index-url|--extra-index-url|--find-links|-i|-f)\b", line):
                loose.append(line)
        else:
            blocks.append([line])

    def key(block: list[str]) -> tuple[bool, str]:
        first = block[0]
        editable = first.startswith(("-e ", "--editable"))
        name = re.split(r"[\s=<>!~;\[@\\]", re.sub(r"^(-e|--editable)[ =]\s*", "", first), maxsplit=1)[0]
        return (not editable, canonicalize_name(name) if name else first)

    body = (index_lines or []) + loose + [line for block in sorted(blocks, key=key) for line in block]
    return header(python, platform) + "".join(f"{line}\n" for line in body)


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


def compile_layers(config: Config, previous: Mapping[str, LayerLock], *, upgrade: bool = False,
                   upgrade_packages: Collection[str] = (), runner: ResolverRunner | None = None,
                   platform: str | None = None, progress: LayerProgress | None = None) -> list[LayerOutcome]:
    """Every configured layer's lock(s), compiled where needed, lowest layer first. Writes nothing.

    Each layer is locked for every configured platform (one lock per architecture, pinrepro.pyplatforms);
    ``platform`` restricts that to one platform. ``progress`` hears of each resolver run as it starts and ends.
    """
    runner = runner or ResolverRunner()
    platforms = (platform,) if platform else tuple(config.platforms)
    wanted = {canonicalize_name(name) for name in upgrade_packages}
    for layer in config.layers:  # refuse an impossible target before any resolver runs
        check_written_credentials(layer.index, where=f"{config.source} layer '{layer.name}'")
        for target in pyplatforms.targets(layer.lock, platforms):
            check_target(layer.resolver, target.platform, layer.name, platforms)
    done: dict[str, LayerOutcome] = {}
    for layer in _ordered(config.layers):
        before = previous.get(layer.name)
        python = target_python(layer, config, before.python if before else None)
        files = _input_files(config, layer)
        inputs = input_sha256(config, layer)
        lower = _lower(config, layer)
        constraints = {dep.name: done[dep.name].record.output_sha256 for dep in lower}
        targets = pyplatforms.targets(layer.lock, platforms)
        options = options_sha256(layer, python, _platform_key(targets))
        current = {t.platform: _read(config.root / t.lock) for t in targets}
        shas = {t.platform: _sha256(data) for t in targets if (data := current[t.platform]) is not None}
        keep = (
            before is not None and len(shas) == len(targets) and not upgrade
            and (before.requirements, before.lock) == (layer.requirements, layer.lock)
            and before.input_sha256 == inputs and before.options_sha256 == options
            and dict(before.constraints) == constraints and before.output_sha256 == _combined(targets, shas)
            and not any(wanted & set(_pins(data.decode("utf-8", "replace")))
                        for data in current.values() if data is not None)
        )
        if keep and before is not None:
            outputs = {t.lock: current[t.platform] or b"" for t in targets}
            done[layer.name] = _outcome(config, layer, targets, outputs, before, compiled=False, current=current)
            continue
        trusted = before is not None and before.output_sha256 == _combined(targets, shas)
        outputs = {}
        version = ""
        seed = _previous_pins(config, layer, before, targets)
        for target in targets:
            started = time.monotonic()
            if progress is not None:
                progress(layer.name, target.platform, layer.resolver, None)
            outputs[target.lock], version = _compile(
                config, layer, files, lower, done, current[target.platform] or seed, runner, python=python,
                target=target, platforms=platforms, upgrade=upgrade, upgrade_packages=tuple(sorted(wanted)),
                reuse_hashes=trusted)
            if progress is not None:
                progress(layer.name, target.platform, layer.resolver, time.monotonic() - started)
        new_shas = {t.platform: _sha256(outputs[t.lock]) for t in targets}
        record = LayerLock(
            requirements=layer.requirements, lock=layer.lock, input_sha256=inputs,
            output_sha256=_combined(targets, new_shas), options_sha256=options, resolver=layer.resolver,
            resolver_version=version, python=python, constraints=constraints,
            platforms=new_shas if len(targets) > 1 else {},
        )
        done[layer.name] = _outcome(config, layer, targets, outputs, record, compiled=True, current=current)
    return list(done.values())


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
    return _pins_only(found[0]) if found else None


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


def _compile(config: Config, layer: Layer, files: list[str], lower: list[Layer], done: Mapping[str, LayerOutcome],
             current: bytes | None, runner: ResolverRunner, *, python: str, target: pyplatforms.Target,
             platforms: tuple[str, ...], upgrade: bool, upgrade_packages: tuple[str, ...],
             reuse_hashes: bool) -> tuple[bytes, str]:
    platform = target.platform
    secrets = Secrets(runner.variables())
    # Files the compile reads, at their project-relative paths, with ${VAR} in their URLs expanded for the
    # resolver (the lock gets the ${VAR} form back); a lower layer's lock is its NEW text for this platform.
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
        dep_targets = pyplatforms.targets(dep.lock, platforms)
        dep_target = next((t for t in dep_targets if pyplatforms.arch(t.platform) == pyplatforms.arch(platform)),
                          dep_targets[0])
        lower_locks.append(dep_target.lock)
        staged[dep_target.lock] = _without_options(done[dep.name].by_platform.get(platform, done[dep.name].content))
    output = target.lock
    if current is not None and not upgrade:
        # The existing lock seeds the resolver so its pins are kept. A lock pinrepro did not write (edited by
        # hand) passes on its pins only: newer pips enforce the hashes they find there, and an edited hash must
        # be fetched anew rather than fail the compile. Its index lines stay out: they are ours to write.
        staged[output] = _without_options(current) if reuse_hashes else _pins_only(current)
    where = f"{config.source} layer '{layer.name}'"
    index = _index_for(config, layer.index, secrets, where)
    if runner.probed is not None:
        pairs = [(secrets.expand(url, where=where), url) for url in configured_indexes(layer.index)]
        pyindex.probe([pair for pair in pairs if pair[0] not in runner.probed], timeout=layer.index.timeout,
                      layer=layer.name)
        runner.probed.update(expanded for expanded, _ in pairs)
    # Includes such as ../shared/base.in need room above the project's copy (normpath puts ".." first).
    depth = max((rel.split("/").count("..") for rel in staged), default=0)
    with tempfile.TemporaryDirectory(prefix="pinrepro-compile-") as scratch:
        workdir = Path(scratch).joinpath(*(["up"] * depth), "project")
        workdir.mkdir(parents=True)
        for rel, data in staged.items():
            path = workdir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        request = CompileRequest(
            layer=layer.name, requirements=posixpath.normpath(layer.requirements), output=output,
            constraints=tuple(lower_locks), python=python, platform=platform,
            hashes=layer.hashes, index=index, upgrade=upgrade, upgrade_packages=upgrade_packages,
            reuse_hashes=reuse_hashes and current is not None and not upgrade, secrets=secrets,
        )
        version = compile_layer(runner, layer.resolver, request, workdir)
        text = secrets.restore((workdir / output).read_text(encoding="utf-8"))
    if layer.resolver == "pip-compile" and runner.probed is not None:
        # uv fails on an index page it cannot read; pip skips it silently, so its pages are checked here
        pyindex.probe_pages([(secrets.expand(url, where=where), url) for url in configured_indexes(layer.index)],
                            [e.name for e in parse_lock(text) if e.name], timeout=layer.index.timeout,
                            layer=layer.name)
    secrets.check_lock(text, where=f"layer '{layer.name}' ({layer.requirements})")
    lines = pyindex.index_lines(layer.index)
    return normalize_output(text, python, platform, index_lines=lines).encode("utf-8"), version


def _without_options(lock: bytes) -> bytes:
    """A lock without its option lines (--index-url ...): as a constraint or seed, only its pins matter."""
    text = lock.decode("utf-8", "replace")
    return "".join(line for line in text.splitlines(keepends=True)
                   if not re.match(r"^-(-index-url|-extra-index-url|-find-links|i|f)\b", line)).encode("utf-8")


def _pins_only(lock: bytes) -> bytes:
    """``name==version`` lines of a lock, without hashes or annotations."""
    entries = parse_lock(lock.decode("utf-8", "replace"))
    return "".join(f"{e.name}=={e.version}\n" for e in entries if e.name and e.version).encode("utf-8")
