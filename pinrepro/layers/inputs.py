"""What a requirement layer is compiled from, as pinrepro.lock records it: its input files (the ``.in`` and every
file it includes with ``-r`` / ``-c``), their hash, the options that change what the resolver picks, the target
Python. pinrepro.layers.compile records these; pinrepro.layers.check compares them with the project.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from pinrepro import pyindex, pyplatforms
from pinrepro.config import Config, Layer
from pinrepro.errors import ConfigError
from pinrepro.reqfile import INCLUDE_OPTIONS, INDEX_OPTIONS, lock_options
from pinrepro.scrub import redact

__all__ = [
    "combined_sha256", "input_files", "input_sha256", "options_sha256", "platform_key", "read_or_none", "sha256",
    "target_python",
]

_PYTHON_VERSION = re.compile(r"^3\.\d{1,2}(\.\d{1,3})?$")


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


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def input_files(config: Config, layer: Layer) -> list[str]:
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


def input_sha256(config: Config, layer: Layer, files: list[str] | None = None) -> str:
    """sha256 of the layer's ``.in``; when it includes other files, a hash over every file and its path.

    ``files`` is ``input_files``' answer where the caller has it already: the walk reads every file.
    """
    files = input_files(config, layer) if files is None else files
    if len(files) == 1:
        return sha256((config.root / files[0]).read_bytes())
    listing = "".join(f"{rel}\0{sha256((config.root / rel).read_bytes())}\n" for rel in files)
    return sha256(listing.encode())


def read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def platform_key(targets: list[pyplatforms.Target]) -> str | list[str]:
    # One target keeps the key it always had (a plain platform), so existing records stay valid.
    return targets[0].platform if len(targets) == 1 else [t.platform for t in targets]


def combined_sha256(targets: list[pyplatforms.Target], shas: Mapping[str, str]) -> str:
    """The record's output_sha256: the lock's own sha256, or with several locks a hash over all of them."""
    if len(targets) == 1:
        return shas.get(targets[0].platform, "")
    return sha256("".join(f"{t.lock}\0{shas.get(t.platform, '')}\n" for t in targets).encode())
