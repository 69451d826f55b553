"""Old lock vs new lock -> what a reviewer needs to know, as Markdown (a pull request body) or JSON.

What moved, most dangerous first: a higher minimum NVIDIA driver can stop the images from running on existing
hosts, so it is called out at the top; then base image digests with their creation dates, CUDA / cuDNN / NCCL /
Python / OS changes, apt package counts (the full list folded in ``<details>``), and Python packages per layer.
Pure: the caller hands in both locks and the old and new bytes of the files that changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pinrepro import escape, lockdiff
from pinrepro.deploy.discovery import is_deploy_path
from pinrepro.inventory.cuda import parse_version
from pinrepro.lockdiff import LABELS, Change, ImageDiff, PlatformDiff
from pinrepro.lockfile import LayerLock, Lock
from pinrepro.pyplatforms import targets
from pinrepro.reqfile import parse_lock

# Section headings, in the order they appear; tests check each one is rendered.
HEADING_DRIVER = "Minimum NVIDIA driver"
HEADING_IMAGES = "### Base images"
HEADING_DEPLOY_IMAGES = "### Deployment images"  # used only by compose / Kubernetes / Helm / workflow files
HEADING_SYSTEM = "### CUDA, drivers and Python"
HEADING_APT = "### apt packages"
HEADING_PYTHON = "### Python packages"
HEADING_FILES = "### Files changed"
NOTHING_CHANGED = (
    "Nothing to refresh: every base image tag and requirement still resolves to what the lock records."
)

_SHORT_DIGEST = 12


@dataclass(frozen=True)
class PlatformChange:
    """What changed inside one platform of one moved image, from the lock's manifest contents."""

    image: str
    platform: str
    components: tuple[Change, ...]  # os, python, cuda, cudnn, nccl, cublas, min_driver_compat, platform
    min_driver: Change | None
    apt: tuple[Change, ...]


@dataclass(frozen=True)
class LayerChange:
    """Python packages that moved in one requirements layer's lock file."""

    layer: str
    lock: str
    packages: tuple[Change, ...]


@dataclass(frozen=True)
class Summary:
    images: tuple[ImageDiff, ...] = ()
    platforms: tuple[PlatformChange, ...] = ()
    layers: tuple[LayerChange, ...] = ()
    files: tuple[str, ...] = ()  # every file that changes, relative to the project root
    deployment: frozenset[str] = frozenset()  # image refs that only deployment files use (no Dockerfile)

    @property
    def changed(self) -> bool:
        return bool(self.files or self.images or self.platforms or self.layers)

    @property
    def driver_changes(self) -> tuple[PlatformChange, ...]:
        return tuple(p for p in self.platforms if p.min_driver is not None)

    def to_json(self) -> dict[str, Any]:
        """The summary as plain data with stable keys (``refresh --format json``)."""
        return {
            "changed": self.changed,
            "images": [
                {"ref": i.ref, "kind": i.kind, "old_digest": i.old_digest, "new_digest": i.new_digest,
                 "old_created": i.old_created, "new_created": i.new_created, "deployment": i.ref in self.deployment}
                for i in self.images
            ],
            "platforms": [
                {"image": p.image, "platform": p.platform,
                 "components": [c.to_json() for c in p.components],
                 "min_driver": p.min_driver.to_json() if p.min_driver else None,
                 "apt": [c.to_json() for c in p.apt]}
                for p in self.platforms
            ],
            "layers": [
                {"layer": layer.layer, "lock": layer.lock, "packages": [c.to_json() for c in layer.packages]}
                for layer in self.layers
            ],
            "files": list(self.files),
        }


# -- building the summary -------------------------------------------------------------------------------------


def summarize(old: Lock | None, new: Lock, *, root: Path, files: Mapping[Path, bytes] | None = None,
              old_files: Mapping[Path, bytes | None] | None = None) -> Summary:
    """Compare two locks; requirement-lock texts come from ``old_files`` (before) and ``files`` (after).

    Image and platform changes come from the one diff of two locks (pinrepro.lockdiff.diff), so ``refresh`` and
    ``manifest --diff`` never disagree about what moved.
    """
    files = files or {}
    old_files = old_files or {}
    previous = old or Lock()
    moved = lockdiff.diff(previous, new)
    images = moved.images
    platforms = tuple(filter(None, (_platform_change(p) for p in moved.platforms)))
    return Summary(
        images=images,
        platforms=platforms,
        layers=tuple(_layer_changes(previous, new, root, files, old_files)),
        files=tuple(sorted(_display_path(path, root) for path in files)),
        deployment=frozenset(
            ref for lock in (previous, new) for ref, image in lock.images.items()
            if image.sites and all(is_deploy_path(site.rpartition(":")[0]) for site in image.sites)
        ),
    )


def _display_path(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _platform_change(diff: PlatformDiff) -> PlatformChange | None:
    # NVIDIA_REQUIRE_CUDA lists every driver branch clause; its changes show up as min-driver changes already.
    components = tuple(c for c in diff.fields if c.name not in {"min_driver", "require"})
    if not components and diff.min_driver is None and not diff.apt:
        return None
    return PlatformChange(diff.ref, diff.platform, components, diff.min_driver, diff.apt)


def parse_requirements(text: str) -> dict[str, tuple[str, str]]:
    """Pinned packages of a pip-compile / uv lock: canonical name -> (name as written, version or ``@ url``)."""
    pins: dict[str, tuple[str, str]] = {}
    for entry in parse_lock(text):
        # an editable line installs whatever its source holds: not a pin (pinrepro.reqfile)
        if entry.editable or entry.name is None or entry.written_name is None:
            continue
        if entry.version is not None:
            pins[entry.name] = (entry.written_name, entry.version)
        elif entry.url is not None:
            pins[entry.name] = (entry.written_name, f"@ {entry.url}")
    return pins


def _layer_changes(old: Lock, new: Lock, root: Path, files: Mapping[Path, bytes],
                   old_files: Mapping[Path, bytes | None]) -> Iterable[LayerChange]:
    by_path = {root / lock: (name, lock) for name, layer in old.layers.items() for lock in _lock_files(layer)}
    by_path.update({root / lock: (name, lock) for name, layer in new.layers.items() for lock in _lock_files(layer)})
    for path, (name, lock) in sorted(by_path.items(), key=lambda item: item[1]):
        if path not in files:
            continue
        before = parse_requirements(_decode(old_files.get(path)))
        after = parse_requirements(_decode(files[path]))
        names = {key: value[0] for key, value in {**before, **after}.items()}
        packages = lockdiff.changes({k: v[1] for k, v in before.items()}, {k: v[1] for k, v in after.items()}, names)
        if packages:
            yield LayerChange(name, lock, tuple(packages))


def _lock_files(layer: LayerLock) -> list[str]:
    """The layer's lock file, or with one lock per architecture each of them (pinrepro.pyplatforms)."""
    return [target.lock for target in targets(layer.lock, list(layer.platforms))] if layer.platforms else [layer.lock]


def _decode(data: bytes | None) -> str:
    return data.decode("utf-8", errors="replace") if data else ""


# -- Markdown -------------------------------------------------------------------------------------------------

# GitHub refuses pull request bodies over 65536 characters (422 "body is too long"); keep a margin.
PR_BODY_LIMIT = 60_000
APT_LIST_OMITTED = (
    "The full apt list is too long for a pull request body; see the `[images.…platforms.…apt]` tables in the "
    "diff of `pinrepro.lock`, or run `pinrepro refresh --dry-run --format json`."
)
BODY_CUT = "*The summary is cut here to fit a pull request body; the diff of the changed files has the rest.*"


def render_markdown(summary: Summary, *, max_chars: int | None = None) -> str:
    """The summary as GitHub-flavoured Markdown (the pull request body and `refresh`'s default output).

    With ``max_chars`` (a pull request body), a summary that would be longer drops the folded apt list first
    (the counts stay, the list is in the lock's diff anyway), and is cut short only if that is not enough.
    """
    text = _render_markdown(summary, apt_list=True)
    if max_chars is not None and len(text) > max_chars:
        text = _render_markdown(summary, apt_list=False)
    if max_chars is not None and len(text) > max_chars:
        # Still too long (hundreds of moved Python packages): GitHub would refuse the whole pull request, so cut at
        # a line boundary; the headline and the driver warning come first and survive.
        tail = "\n" + BODY_CUT + "\n"
        text = text[:text.rfind("\n", 0, max_chars - len(tail)) + 1] + tail
    return text


def _render_markdown(summary: Summary, *, apt_list: bool) -> str:
    if not summary.changed:
        return NOTHING_CHANGED + "\n"
    out: list[str] = []
    if summary.driver_changes:
        out += _driver_callout(summary.driver_changes)
    out += [_headline(summary), ""]
    base = tuple(i for i in summary.images if i.ref not in summary.deployment)
    if base:
        out += _images_section(base)
    deployed = tuple(i for i in summary.images if i.ref in summary.deployment)
    if deployed:
        out += _images_section(deployed, HEADING_DEPLOY_IMAGES)
    system = [(p, c) for p in summary.platforms for c in (*p.components, *([p.min_driver] if p.min_driver else []))]
    if system:
        out += [HEADING_SYSTEM, "", "| image | platform | component | old | new |", "| --- | --- | --- | --- | --- |"]
        for platform, change in system:
            new = f"**{_cell(change.new)}**" if change.name == "min_driver" else _cell(change.new)
            label = LABELS.get(change.name, change.name)
            out.append(f"| {_code(platform.image)} | {_cell(platform.platform)} | {label} | {_cell(change.old)} "
                       f"| {new} |")
        out.append("")
    apt = [p for p in summary.platforms if p.apt]
    if apt:
        out += _apt_section(apt, full_list=apt_list)
    if summary.layers:
        out += _python_section(summary.layers)
    if summary.files:
        out += [HEADING_FILES, ""] + [f"- {_code(path)}" for path in summary.files] + [""]
    out += ["---", "<sub>Written by <code>pinrepro refresh</code>. The next scheduled run updates this pull request "
                   "instead of opening another; merge it to move the pins.</sub>"]
    return "\n".join(out) + "\n"


def _driver_callout(platforms: tuple[PlatformChange, ...]) -> list[str]:
    raised = any(p.min_driver and _direction(p.min_driver) in {"raised", "new requirement"} for p in platforms)
    lines = [
        "> [!CAUTION]",
        f"> **{HEADING_DRIVER} changes.** "
        + ("Hosts whose NVIDIA driver is older than the new minimum cannot run these images; "
           "check them with `pinrepro doctor` before merging." if raised
           else "Check that your hosts' drivers still match with `pinrepro doctor`."),
        ">",
    ]
    for platform in platforms:
        change = platform.min_driver
        assert change is not None
        lines.append(f"> - {_code(platform.image)} ({_cell(platform.platform)}): {_cell(change.old)} → "
                     f"**{_cell(change.new)}** ({_direction(change)})")
    return [*lines, ""]


def _direction(change: Change) -> str:
    if change.old is None:
        return "new requirement"
    if change.new is None:
        return "requirement dropped"
    old, new = parse_version(change.old), parse_version(change.new)
    if old is None or new is None or old == new:
        return "changed"
    return "raised" if new > old else "lowered"


def _headline(summary: Summary) -> str:
    parts: list[str] = []
    moved = [i for i in summary.images if i.kind == "moved"]
    if moved:
        parts.append(_count(len(moved), "base image moved", "base images moved"))
    for kind, words in (("added", ("image newly pinned", "images newly pinned")),
                        ("removed", ("image no longer used", "images no longer used"))):
        count = sum(1 for i in summary.images if i.kind == kind)
        if count:
            parts.append(_count(count, *words))
    cuda = {p.image for p in summary.platforms if any(c.name in {"cuda", "cudnn", "nccl"} for c in p.components)}
    if cuda:
        parts.append(f"CUDA stack changed in {_count(len(cuda), 'image', 'images')}")
    apt = sum(len(p.apt) for p in summary.platforms)
    if apt:
        parts.append(_count(apt, "apt package changed", "apt packages changed"))
    packages = sum(len(layer.packages) for layer in summary.layers)
    if packages:
        parts.append(f"{_count(packages, 'Python package', 'Python packages')} changed in "
                     f"{_count(len(summary.layers), 'layer', 'layers')}")
    if not parts:
        return ("**Pins were rewritten** but no image digest or package version moved "
                "(the lock's bookkeeping changed).")
    return "**" + parts[0][0].upper() + parts[0][1:] + "**" + "".join(f", {part}" for part in parts[1:]) + "."


def _images_section(images: tuple[ImageDiff, ...], heading: str = HEADING_IMAGES) -> list[str]:
    lines = [heading, "", "| image | old | new | created |", "| --- | --- | --- | --- |"]
    for image in images:
        lines.append(f"| {_code(image.ref)} | {_digest(image.old_digest)} | {_digest(image.new_digest)} | "
                     f"{_date(image.old_created)} → {_date(image.new_created)} |")
    return [*lines, ""]


def _apt_section(platforms: list[PlatformChange], *, full_list: bool) -> list[str]:
    lines = [HEADING_APT, ""]
    for platform in platforms:
        lines.append(f"- {_code(platform.image)} ({_cell(platform.platform)}): {_kind_counts(platform.apt)}")
    if not full_list:
        return [*lines, "", APT_LIST_OMITTED, ""]
    total = sum(len(p.apt) for p in platforms)
    lines += ["", "<details>", f"<summary>All apt package changes ({total})</summary>", ""]
    for platform in platforms:
        lines += [f"{_code(platform.image)} ({_cell(platform.platform)})", "", "| package | old | new |",
                  "| --- | --- | --- |"]
        lines += [_change_row(change) for change in platform.apt]
        lines.append("")
    return [*lines, "</details>", ""]


def _python_section(layers: tuple[LayerChange, ...]) -> list[str]:
    lines = [HEADING_PYTHON, ""]
    for layer in layers:
        lines += [f"**{_code(layer.layer)}** ({_code(layer.lock)}): {_kind_counts(layer.packages)}", "",
                  "| package | old | new |", "| --- | --- | --- |"]
        lines += [_change_row(change) for change in layer.packages]
        lines.append("")
    return lines


def _change_row(change: Change) -> str:
    old = _cell(change.old) if change.old is not None else "*(added)*"
    new = _cell(change.new) if change.new is not None else "*(removed)*"
    return f"| {_cell(change.name)} | {old} | {new} |"


def _kind_counts(changes: Iterable[Change]) -> str:
    counts = {"added": 0, "removed": 0, "changed": 0}
    for change in changes:
        counts[change.kind] += 1
    return ", ".join(f"{count} {kind}" for kind, count in counts.items() if count)


def _count(n: int, singular: str, plural: str) -> str:
    return f"{n} {singular if n == 1 else plural}"


def _digest(digest: str | None) -> str:
    if digest is None:
        return "-"
    algorithm, _, hex_part = digest.partition(":")
    return _code(f"{algorithm}:{hex_part[:_SHORT_DIGEST]}")


def _date(created: str | None) -> str:
    # Image configs carry RFC 3339 timestamps; the day is what a reviewer compares.
    return _cell(created[:10]) if created else "?"


# Every value in the body came from outside (image labels and ENV, dpkg, the package index, file names): each is
# written through pinrepro.escape, as plain text or as a code span, so it renders as what it is (issue #16).
def _cell(text: str | None) -> str:
    return "-" if text is None else escape.markdown_text(text)


def _code(text: str) -> str:
    return escape.markdown_code(text)


# -- JSON -----------------------------------------------------------------------------------------------------


def render_json(summary: Summary) -> str:
    return json.dumps(summary.to_json(), indent=2, sort_keys=True) + "\n"
