"""What moved between two locks: the one diff model that ``manifest --diff`` and the refresh summary render.

``diff(old, new)`` compares the images' index digests, each platform's recorded contents (OS, Python, CUDA
stack, minimum driver, apt packages) and each Dockerfile stage's final apt set. Pure: no I/O, nothing printed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pinrepro.apt.stageset import stage_sets
from pinrepro.inventory.contents import UNKNOWN, PlatformContents, contents_of
from pinrepro.lockfile import ImageLock, Lock

# What people read for each field a PlatformDiff can carry (manifest --diff, the refresh summary).
LABELS = {
    "platform": "platform", "os": "OS", "python": "Python", "cuda": "CUDA", "cudnn": "cuDNN", "nccl": "NCCL",
    "cublas": "cuBLAS", "min_driver": "min driver", "min_driver_compat": "min driver (compat)",
    "require": "NVIDIA_REQUIRE_CUDA",
}


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

    def to_json(self) -> dict[str, Any]:
        """One moved value as the refresh summary's JSON writes it."""
        return {"name": self.name, "kind": self.kind, "old": self.old, "new": self.new}


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
class LockDiff:
    """What moved between two locks: images, then per platform (and per Dockerfile stage's apt set)."""

    images: tuple[ImageDiff, ...] = ()
    platforms: tuple[PlatformDiff, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.images and not self.platforms

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


def diff(old: Lock, new: Lock) -> LockDiff:
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
        apt = changes(old_sets.get((key, platform), {}), new_sets.get((key, platform), {}))
        if apt:
            platforms.append(PlatformDiff(f"stage {key}", platform, None, (), tuple(apt)))
    return LockDiff(images=tuple(images), platforms=tuple(platforms))


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
            apt = changes(old_contents.apt, new_contents.apt)
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


def changes(old: Mapping[str, str], new: Mapping[str, str], names: Mapping[str, str] | None = None) -> list[Change]:
    """Name -> version before and after, as the values that moved, sorted by key; ``names`` maps a key (a
    canonical package name) to the name shown (as the lock writes it)."""
    return [Change((names or {}).get(key, key), old.get(key), new.get(key))
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
