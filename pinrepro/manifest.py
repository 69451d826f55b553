"""The manifest: what is inside each pinned image, read from pinrepro.lock - rendered, and diffed.

``render_text`` is the table people read, ``render_json`` the ``--format json`` document
(``{"images": [{"ref", "digest", "platforms": {"linux/amd64": {"digest", "os", "python", "cuda", "apt", ...}}}]}``),
and ``diff(old, new)`` a value object of what moved between two locks (also used by the refresh summary).
Pure: no I/O, nothing printed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pinrepro.apt.stageset import added, stage_sets
from pinrepro.escape import terminal
from pinrepro.inventory.contents import UNKNOWN, PlatformContents
from pinrepro.lockfile import ImageLock, Lock, PlatformLock
from pinrepro.reference import short_digest


def contents_of(platform: PlatformLock, *, where: str = "pinrepro.lock") -> PlatformContents | None:
    """The platform's recorded contents; None when the platform is absent or the lock has no contents for it."""
    if platform.absent or not platform.contents:
        return None
    return PlatformContents.from_toml(platform.contents, where=where)


def _short(digest: str | None) -> str:
    return short_digest(digest) if digest else "-"


# -- rendering ----------------------------------------------------------------------------------------------


def render_text(lock: Lock, *, packages: bool = False) -> str:
    """Per image and platform: OS, Python, CUDA stack, minimum driver, apt package count (or the list)."""
    if not lock.images:
        return "no images are pinned in the lock"
    blocks: list[str] = [*_image_blocks(lock, packages), *_stage_blocks(lock, packages)]
    return "\n\n".join(blocks)


def _stage_blocks(lock: Lock, packages: bool) -> list[str]:
    """Per Dockerfile stage that installs apt packages: its final apt set (base image plus its RUN lines)."""
    blocks = []
    for (key, platform), final in stage_sets(lock).items():
        own = added(lock, key, platform)
        lines = [f"stage {key}  {platform}", f"    apt  {len(final)} packages, {len(own)} from RUN lines"]
        if packages:
            width = max((len(n) for n in own), default=0)
            lines.extend(f"      {name.ljust(width)}  {version}" for name, version in sorted(own.items()))
        blocks.append("\n".join(lines))
    return blocks


def _image_blocks(lock: Lock, packages: bool) -> list[str]:
    blocks: list[str] = []
    for ref, image in sorted(lock.images.items()):
        lines = [f"{terminal(ref)}  {terminal(_short(image.digest))}"]
        for name, platform in sorted(image.platforms.items()):
            lines.extend(_platform_lines(ref, name, platform, packages=packages))
        if not image.platforms:
            lines.append("  (no platforms recorded)")
        blocks.append("\n".join(lines))
    return blocks


def _platform_lines(ref: str, name: str, platform: PlatformLock, *, packages: bool) -> list[str]:
    if platform.absent:
        return [f"  {terminal(name)}  absent: the image has no such platform"]
    lines = [f"  {terminal(name)}  {terminal(_short(platform.digest))}"]
    contents = contents_of(platform, where=f"pinrepro.lock [{ref}]")
    if contents is None:
        return [*lines, "    contents not recorded"]
    rows = [("os", contents.os.label() if contents.os else UNKNOWN), ("python", contents.python or UNKNOWN)]
    cuda = contents.cuda
    if cuda is not None:
        stack = ", ".join(f"{label} {value}" for label, value in
                          (("cuDNN", cuda.cudnn), ("NCCL", cuda.nccl), ("cuBLAS", cuda.cublas)) if value)
        rows.append(("cuda", f"{cuda.version or UNKNOWN}" + (f" ({stack})" if stack else "")))
        driver = cuda.min_driver or UNKNOWN
        if cuda.min_driver_compat:
            driver += f" (>= {cuda.min_driver_compat} with minor-version compatibility)"
        rows.append(("min driver", driver))
        if cuda.require_disabled:
            rows.append(("require", "NVIDIA_DISABLE_REQUIRE=true: the runtime does not check the driver"))
    else:
        rows.append(("cuda", "none"))
    rows.append(("apt", f"{len(contents.apt)} packages" if contents.apt else "none"))
    if contents.created:
        rows.append(("created", contents.created))
    width = max(len(label) for label, _ in rows)
    # Every value was read from the image (ENV, labels, os-release, dpkg): one value, one line, nothing run.
    lines.extend(f"    {label.ljust(width)}  {terminal(value)}" for label, value in rows)
    lines.extend(f"    note: {terminal(note)}" for note in contents.notes)
    if packages:
        apt = sorted((terminal(pkg), terminal(version)) for pkg, version in contents.apt.items())
        name_width = max((len(n) for n, _ in apt), default=0)
        lines.extend(f"      {pkg.ljust(name_width)}  {version}" for pkg, version in apt)
    return lines


def render_json(lock: Lock) -> dict[str, Any]:
    """``pinrepro manifest --format json``: images sorted by reference, platforms by name."""
    images = []
    for ref, image in sorted(lock.images.items()):
        platforms: dict[str, Any] = {}
        for name, platform in sorted(image.platforms.items()):
            contents = contents_of(platform, where=f"pinrepro.lock [{ref}]")
            entry: dict[str, Any] = {"digest": platform.digest, "absent": platform.absent}
            entry.update(contents.to_json() if contents is not None else _UNRECORDED)
            entry["recorded"] = contents is not None
            platforms[name] = entry
        images.append({"ref": ref, "digest": image.digest, "platforms": platforms})
    return {"images": images}


_UNRECORDED: dict[str, Any] = {
    "os": None, "python": None, "cuda": None, "apt": {}, "created": None, "labels": {}, "notes": [],
}


# -- diff ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One value that moved; ``old``/``new`` None means added/removed (or unknown on that side)."""

    name: str
    old: str | None
    new: str | None

    @property
    def kind(self) -> Literal["added", "removed", "changed"]:
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        return "changed"


@dataclass(frozen=True)
class ImageDiff:
    """A lock entry whose index digest moved, or that appeared or disappeared."""

    ref: str
    old_digest: str | None
    new_digest: str | None
    # When each side's image was built (from the manifest contents), to tell a rebuild from a stale tag.
    old_created: str | None = None
    new_created: str | None = None

    @property
    def kind(self) -> Literal["added", "removed", "moved"]:
        if self.old_digest is None:
            return "added"
        if self.new_digest is None:
            return "removed"
        return "moved"


@dataclass(frozen=True)
class PlatformDiff:
    """What changed inside one platform of an image present in both locks."""

    ref: str
    platform: str
    digest: Change | None  # the platform manifest's digest (None: unchanged)
    fields: tuple[Change, ...]  # os, python, cuda, cudnn, nccl, cublas, min_driver, min_driver_compat, require
    apt: tuple[Change, ...]  # sorted by package name

    @property
    def min_driver(self) -> Change | None:
        return next((c for c in self.fields if c.name == "min_driver"), None)

    def apt_of(self, kind: Literal["added", "removed", "changed"]) -> tuple[Change, ...]:
        return tuple(c for c in self.apt if c.kind == kind)


@dataclass(frozen=True)
class ManifestDiff:
    images: tuple[ImageDiff, ...] = ()
    platforms: tuple[PlatformDiff, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.images and not self.platforms

    def render_text(self, *, packages: bool = True) -> str:
        if self.empty:
            return "the manifest did not change"
        lines: list[str] = []
        for image in self.images:
            if image.kind == "moved":
                lines.append(f"moved    {terminal(image.ref)}  {terminal(_short(image.old_digest))} -> "
                             f"{terminal(_short(image.new_digest))}")
            else:
                lines.append(f"{image.kind:<8} {terminal(image.ref)}  "
                             f"{terminal(_short(image.new_digest or image.old_digest))}")
        for platform in self.platforms:
            if lines:
                lines.append("")
            lines.append(f"{terminal(platform.ref)}  {terminal(platform.platform)}")
            rows = [(_LABELS[c.name], c) for c in platform.fields]
            if platform.digest is not None:
                rows.insert(0, ("digest", Change("digest", _short(platform.digest.old), _short(platform.digest.new))))
            width = max((len(label) for label, _ in rows), default=0)
            lines.extend(f"  {label.ljust(width)}  {terminal(_shown(c.name, c.old))} -> "
                         f"{terminal(_shown(c.name, c.new))}" for label, c in rows)
            if platform.apt:
                counts = {kind: len(platform.apt_of(kind)) for kind in ("added", "removed", "changed")}
                lines.append(f"  apt: {counts['added']} added, {counts['removed']} removed, "
                             f"{counts['changed']} changed")
                if packages:
                    for change in platform.apt:
                        name, old, new = (terminal(v or "") for v in (change.name, change.old, change.new))
                        if change.kind == "added":
                            lines.append(f"    + {name} {new}")
                        elif change.kind == "removed":
                            lines.append(f"    - {name} {old}")
                        else:
                            lines.append(f"    ~ {name} {old} -> {new}")
        return "\n".join(lines)


    def to_json(self) -> dict[str, Any]:
        """``pinrepro manifest --diff OLD_LOCK --format json``: what changed, keyed for lookups, not positional.

        ``{"changed", "images": [{"ref", "change", "old_digest", "new_digest", "old_created", "new_created"}],
        "platforms": [{"ref", "platform", "digest": {"old", "new"} | null, "fields": {name: {"old", "new"}},
        "apt": {"added": {pkg: version}, "removed": {pkg: version}, "changed": {pkg: {"old", "new"}}}}]}``;
        null in ``fields`` means the value was not known (os, python) or not there (the CUDA fields).
        """
        return {
            "changed": not self.empty,
            "images": [{"ref": image.ref, "change": image.kind, "old_digest": image.old_digest,
                        "new_digest": image.new_digest, "old_created": image.old_created,
                        "new_created": image.new_created} for image in self.images],
            "platforms": [{
                "ref": platform.ref,
                "platform": platform.platform,
                "digest": _old_new(platform.digest) if platform.digest is not None else None,
                "fields": {change.name: _old_new(change) for change in platform.fields},
                "apt": {
                    "added": {c.name: c.new for c in platform.apt_of("added")},
                    "removed": {c.name: c.old for c in platform.apt_of("removed")},
                    "changed": {c.name: _old_new(c) for c in platform.apt_of("changed")},
                },
            } for platform in self.platforms],
        }


def _old_new(change: Change) -> dict[str, str | None]:
    return {"old": change.old, "new": change.new}


def _shown(field: str, value: str | None) -> str:
    """A diff side for people: a missing OS or Python was not found (unknown); a missing CUDA part is absent."""
    if value is not None:
        return value
    return UNKNOWN if field in ("os", "python") else "none"


_LABELS = {
    "platform": "platform", "os": "OS", "python": "Python", "cuda": "CUDA", "cudnn": "cuDNN", "nccl": "NCCL",
    "cublas": "cuBLAS", "min_driver": "min driver", "min_driver_compat": "min driver (compat)",
    "require": "NVIDIA_REQUIRE_CUDA",
}


def diff(old: Lock, new: Lock) -> ManifestDiff:
    """What moved from ``old`` to ``new``: images added/removed/moved, and per platform field and apt changes."""
    images: list[ImageDiff] = []
    platforms: list[PlatformDiff] = []
    for ref in sorted(set(old.images) | set(new.images)):
        before, after = old.images.get(ref), new.images.get(ref)
        if before is None or after is None or before.digest != after.digest:
            images.append(ImageDiff(ref, before.digest if before else None, after.digest if after else None,
                                    _created(before, f"old pinrepro.lock [{ref}]"),
                                    _created(after, f"pinrepro.lock [{ref}]")))
        if before is not None and after is not None:
            platforms.extend(_platform_diffs(ref, before, after))
    # apt installed by RUN lines: per stage, the final set compared (base image moves show here too).
    old_sets, new_sets = stage_sets(old), stage_sets(new)
    for key, platform in sorted(set(old_sets) | set(new_sets)):
        changes = _apt_changes(old_sets.get((key, platform), {}), new_sets.get((key, platform), {}))
        if changes:
            platforms.append(PlatformDiff(f"stage {key}", platform, None, (), tuple(changes)))
    return ManifestDiff(images=tuple(images), platforms=tuple(platforms))


def _created(image: ImageLock | None, where: str) -> str | None:
    """The creation time of the image's first platform that records one."""
    if image is None:
        return None
    for name in sorted(image.platforms):
        contents = contents_of(image.platforms[name], where=where)
        if contents is not None and contents.created:
            return contents.created
    return None


def _platform_diffs(ref: str, before: ImageLock, after: ImageLock) -> Iterable[PlatformDiff]:
    for name in sorted(set(before.platforms) | set(after.platforms)):
        old_platform, new_platform = before.platforms.get(name), after.platforms.get(name)
        old_present = old_platform is not None and not old_platform.absent
        new_present = new_platform is not None and not new_platform.absent
        fields: list[Change] = []
        if old_present != new_present:
            fields.append(Change("platform", "present" if old_present else "absent",
                                 "present" if new_present else "absent"))
        old_digest = old_platform.digest if old_platform else None
        new_digest = new_platform.digest if new_platform else None
        digest = Change("digest", old_digest, new_digest) if old_present and new_present and \
            old_digest != new_digest else None
        old_contents = contents_of(old_platform, where=f"old pinrepro.lock [{ref}]") if old_platform else None
        new_contents = contents_of(new_platform, where=f"pinrepro.lock [{ref}]") if new_platform else None
        apt: list[Change] = []
        # Contents one side did not record are unknown, not empty: comparing them would call every package
        # added or removed.
        if old_contents is not None and new_contents is not None:
            old_fields, new_fields = _fields(old_contents), _fields(new_contents)
            fields.extend(Change(key, old_fields[key], new_fields[key]) for key in old_fields
                          if old_fields[key] != new_fields[key])
            apt = _apt_changes(old_contents.apt, new_contents.apt)
        if fields or digest or apt:
            yield PlatformDiff(ref, name, digest, tuple(fields), tuple(apt))


def _fields(contents: PlatformContents) -> dict[str, str | None]:
    cuda = contents.cuda
    return {
        "os": contents.os.label() if contents.os else None,
        "python": contents.python,
        "cuda": cuda.version if cuda else None,
        "cudnn": cuda.cudnn if cuda else None,
        "nccl": cuda.nccl if cuda else None,
        "cublas": cuda.cublas if cuda else None,
        "min_driver": (cuda.min_driver or UNKNOWN) if cuda and cuda.version else None,
        "min_driver_compat": cuda.min_driver_compat if cuda else None,
        "require": ("disabled" if cuda.require_disabled else " ".join(cuda.require) or None) if cuda else None,
    }


def _apt_changes(old: Mapping[str, str], new: Mapping[str, str]) -> list[Change]:
    changes = []
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            changes.append(Change(name, old.get(name), new.get(name)))
    return changes
