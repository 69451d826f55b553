"""pinrepro.lock: frozen dataclasses <-> TOML.

The lock is TOML written with tomli-w, keys sorted, ``schema = 1``, so that diffs of two locks read well in
a pull request: one image per table, one platform per sub-table, one apt package per line.
Reading validates the shape and reports a corrupted lock with the key that is wrong.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from pinrepro.errors import LockfileError
from pinrepro.schema import check_keys, unknown_key

SCHEMA = 1
# The keys of each table ``dumps`` writes; any other is a corrupted (or hand-edited) lock. A platform's table is
# open: next to ``digest`` it holds the image's contents, whose keys pinrepro.inventory.contents checks.
_TOP_KEYS = ("schema", "images", "layers", "urls", "apt")
_IMAGE_KEYS = ("digest", "media_type", "sites", "platforms", "implicit_tag")
_LAYER_KEYS = ("requirements", "lock", "input_sha256", "output_sha256", "options_sha256", "resolver",
               "resolver_version", "python", "constraints", "platforms")
_URL_KEYS = ("checksum", "sites", "size", "ref")
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
HEADER = (
    "# This file is written by `pinrepro lock`. Do not edit it by hand.\n"
    "# To change a pin, edit the Dockerfile or requirements input and run `pinrepro lock`;\n"
    "# to move every pin forward, run `pinrepro lock --upgrade` (or `pinrepro refresh`).\n"
)


@dataclass(frozen=True)
class PlatformLock:
    """One platform of a pinned image: its manifest digest, or ``absent`` when the image lacks it.

    ``contents`` is the manifest of what is inside (OS, Python, CUDA, apt packages) as plain TOML data;
    the inventory package owns its shape.
    """

    digest: str | None = None
    absent: bool = False
    contents: Mapping[str, Any] | None = field(default=None, compare=True, hash=False)


@dataclass(frozen=True)
class ImageLock:
    """The pin of one image reference (the lock's key is ``ImageRef.tagged``)."""

    digest: str
    media_type: str
    sites: tuple[str, ...] = ()
    platforms: Mapping[str, PlatformLock] = field(default_factory=dict, hash=False)
    implicit_tag: bool = False


@dataclass(frozen=True)
class LayerLock:
    """How one requirements layer was compiled, to tell later whether its inputs changed."""

    requirements: str
    lock: str
    input_sha256: str
    output_sha256: str
    options_sha256: str
    resolver: str
    resolver_version: str
    python: str | None = None
    constraints: Mapping[str, str] = field(default_factory=dict, hash=False)
    # With several target architectures, one lock per platform: platform -> sha256 of that platform's lock
    # (``output_sha256`` then hashes them all). Empty for a layer with one lock file.
    platforms: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class UrlLock:
    """The pin of one ``ADD <url>`` download (the lock's key is the URL): its content's checksum."""

    checksum: str  # sha256:<hex> of the downloaded bytes, what ADD --checksum and BuildKit's http.checksum take
    size: int | None = None
    sites: tuple[str, ...] = ()
    # A Git source (``ADD <repo>.git#<ref>``): ``checksum`` is the commit the ref named, ``ref`` the ref itself.
    ref: str | None = None


@dataclass(frozen=True)
class Lock:
    images: Mapping[str, ImageLock] = field(default_factory=dict)
    layers: Mapping[str, LayerLock] = field(default_factory=dict)
    urls: Mapping[str, UrlLock] = field(default_factory=dict)
    # apt pins per Dockerfile stage and platform, as plain TOML data; pinrepro.apt.pinning owns its shape.
    apt: Mapping[str, Any] = field(default_factory=dict)


def dumps(lock: Lock) -> str:
    """The lock as TOML text; equal locks give equal text."""
    data: dict[str, Any] = {"schema": SCHEMA}
    if lock.images:
        data["images"] = {key: _image_to_toml(image) for key, image in sorted(lock.images.items())}
    if lock.layers:
        data["layers"] = {name: _layer_to_toml(layer) for name, layer in sorted(lock.layers.items())}
    if lock.urls:
        data["urls"] = {url: {"checksum": entry.checksum, "sites": list(entry.sites),
                              **({"size": entry.size} if entry.size is not None else {}),
                              **({"ref": entry.ref} if entry.ref is not None else {})}
                        for url, entry in sorted(lock.urls.items())}
    if lock.apt:
        data["apt"] = dict(lock.apt)
    return HEADER + "\n" + tomli_w.dumps(_sorted(data))


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list | tuple):
        return [_sorted(item) for item in value]
    return value


def _image_to_toml(image: ImageLock) -> dict[str, Any]:
    data: dict[str, Any] = {
        "digest": image.digest,
        "media_type": image.media_type,
        "sites": list(image.sites),
    }
    if image.implicit_tag:
        # The Dockerfile said no tag; Docker takes ``latest``, and so did we.
        data["implicit_tag"] = True
    platforms: dict[str, Any] = {}
    for name, platform in image.platforms.items():
        if platform.absent:
            platforms[name] = {"absent": True}
            continue
        entry: dict[str, Any] = {"digest": platform.digest}
        if platform.contents:
            entry.update(platform.contents)
        platforms[name] = entry
    data["platforms"] = platforms
    return data


def _layer_to_toml(layer: LayerLock) -> dict[str, Any]:
    data: dict[str, Any] = {
        "requirements": layer.requirements,
        "lock": layer.lock,
        "input_sha256": layer.input_sha256,
        "output_sha256": layer.output_sha256,
        "options_sha256": layer.options_sha256,
        "resolver": layer.resolver,
        "resolver_version": layer.resolver_version,
        "constraints": dict(layer.constraints),
    }
    if layer.python:
        data["python"] = layer.python
    if layer.platforms:
        data["platforms"] = dict(layer.platforms)
    return data


def read(path: Path) -> Lock | None:
    """The lock at ``path``, or None when there is none yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise LockfileError(f"cannot read it: {exc}", where=path.name) from None
    return loads(text, where=path.name)


def loads(text: str, *, where: str = "pinrepro.lock") -> Lock:
    fix = "restore it from version control, or delete it and run `pinrepro lock` to pin everything anew"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LockfileError(f"corrupted lock file, not valid TOML ({exc})", where=where, fix=fix) from None
    schema = data.get("schema")
    unknown = unknown_key(data, _TOP_KEYS, "the top-level table") if schema == SCHEMA else None
    if unknown is not None:
        raise LockfileError(f"corrupted lock file ({unknown})", where=where, fix=fix)
    if schema != SCHEMA:
        raise LockfileError(
            f"unsupported lock schema {schema!r} (this pinrepro reads schema {SCHEMA})", where=where,
            fix="upgrade pinrepro, or delete the lock and run `pinrepro lock`",
        )
    try:
        images = {key: _image_from_toml(value, key) for key, value in _table(data, "images").items()}
        layers = {key: _layer_from_toml(value, key) for key, value in _table(data, "layers").items()}
        urls = {key: _url_from_toml(value, key) for key, value in _table(data, "urls").items()}
        apt = _table(data, "apt")
    except (KeyError, TypeError, ValueError) as exc:
        raise LockfileError(f"corrupted lock file ({exc})", where=where, fix=fix) from None
    return Lock(images=images, layers=layers, urls=urls, apt=apt)


def _section(table: str, key: str) -> str:
    """The header of one entry as the lock writes it: ``[layers.base]``, ``[images."docker.io/..."]``."""
    return f"[{table}.{key}]" if re.fullmatch(r"[A-Za-z0-9_-]+", key) else f'[{table}."{key}"]'


def _url_from_toml(data: Any, key: str) -> UrlLock:
    if not isinstance(data, dict):
        raise TypeError("each url must be a table")
    check_keys(data, _URL_KEYS, _section("urls", key), ValueError)
    sites = data.get("sites", [])
    size = data.get("size")
    if not isinstance(sites, list) or not all(isinstance(s, str) for s in sites):
        raise TypeError("'sites' must be a list of strings")
    ref = data.get("ref")
    return UrlLock(checksum=_string(data, "checksum", "url"), size=size if isinstance(size, int) else None,
                   sites=tuple(sites), ref=ref if isinstance(ref, str) else None)


def _table(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise TypeError(f"'{key}' must be a table")
    return value


def _string(data: Mapping[str, Any], key: str, context: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{context}: '{key}' must be a non-empty string")
    return value


def _digest(data: Mapping[str, Any], key: str, context: str) -> str:
    # A hand-edited digest would otherwise be written into the Dockerfile as it is and pass verify.
    value = _string(data, key, context)
    if not _SHA256.fullmatch(value):
        raise ValueError(f"{context}: '{key}' is '{value}', not sha256:<64 lower-case hex digits>")
    return value


def _image_from_toml(data: Any, key: str) -> ImageLock:
    if not isinstance(data, dict):
        raise TypeError("each image must be a table")
    check_keys(data, _IMAGE_KEYS, _section("images", key), ValueError)
    context = f"image '{key}'"
    platforms: dict[str, PlatformLock] = {}
    for name, entry in _table(data, "platforms").items():
        if not isinstance(entry, dict):
            raise TypeError(f"platform '{name}' must be a table")
        if entry.get("absent") is True:
            platforms[name] = PlatformLock(absent=True)
            continue
        contents = {k: v for k, v in entry.items() if k != "digest"}
        platforms[name] = PlatformLock(
            digest=_digest(entry, "digest", f"{context} platform {name}"), contents=contents or None
        )
    sites = data.get("sites", [])
    if not isinstance(sites, list) or not all(isinstance(s, str) for s in sites):
        raise TypeError("'sites' must be a list of strings")
    return ImageLock(
        digest=_digest(data, "digest", context),
        media_type=_string(data, "media_type", "image"),
        sites=tuple(sites),
        platforms=platforms,
        implicit_tag=bool(data.get("implicit_tag", False)),
    )


def _layer_from_toml(data: Any, key: str) -> LayerLock:
    if not isinstance(data, dict):
        raise TypeError("each layer must be a table")
    check_keys(data, _LAYER_KEYS, _section("layers", key), ValueError)
    constraints = _table(data, "constraints")
    platforms = _table(data, "platforms") if "platforms" in data else {}
    python = data.get("python")
    return LayerLock(
        requirements=_string(data, "requirements", "layer"),
        lock=_string(data, "lock", "layer"),
        input_sha256=_string(data, "input_sha256", "layer"),
        output_sha256=_string(data, "output_sha256", "layer"),
        options_sha256=_string(data, "options_sha256", "layer"),
        resolver=_string(data, "resolver", "layer"),
        resolver_version=_string(data, "resolver_version", "layer"),
        python=python if isinstance(python, str) else None,
        constraints={str(k): str(v) for k, v in constraints.items()},
        platforms={str(k): str(v) for k, v in platforms.items()},
    )


_HEADER_PART = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|([A-Za-z0-9_-]+))\s*(?:\.|$)')


def table_lines(text: str, table: str) -> dict[str, int]:
    """The line of each ``[<table>.<key>]`` header (e.g. ``[images."docker.io/library/ubuntu:22.04"]``), so a
    finding about one entry of the lock can point at it."""
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not (stripped.startswith("[") and stripped.endswith("]")) or stripped.startswith("[["):
            continue
        parts = [m[1] if m[1] or not m[2] else m[2] for m in _HEADER_PART.finditer(stripped[1:-1])]
        if len(parts) == 2 and parts[0] == table:
            lines.setdefault(parts[1], number)
    return lines
