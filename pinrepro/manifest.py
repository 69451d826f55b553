"""The manifest: what is inside each pinned image, read from pinrepro.lock - rendered, and its diff rendered.

``render_text`` is the table people read, ``render_json`` the ``--format json`` document
(``{"images": [{"ref", "digest", "platforms": {"linux/amd64": {"digest", "os", "python", "cuda", "apt", ...}}}]}``),
and ``render_diff_text`` shows :class:`pinrepro.lockdiff.LockDiff` (its JSON is ``LockDiff.to_json``).
Pure: no I/O, nothing printed.
"""

from __future__ import annotations

from typing import Any

from pinrepro.apt.stageset import added, stage_sets
from pinrepro.escape import terminal
from pinrepro.inventory.contents import UNKNOWN, contents_of
from pinrepro.lockdiff import LABELS, Change, LockDiff
from pinrepro.lockfile import Lock, PlatformLock
from pinrepro.reference import short_digest


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


def render_diff_text(moved: LockDiff, *, packages: bool = True) -> str:
    """``manifest --diff``: moved images first, then per platform the fields and apt packages that moved."""
    if moved.empty:
        return "the manifest did not change"
    lines: list[str] = []
    for image in moved.images:
        if image.kind == "moved":
            lines.append(f"moved    {terminal(image.ref)}  {terminal(_short(image.old_digest))} -> "
                         f"{terminal(_short(image.new_digest))}")
        else:
            lines.append(f"{image.kind:<8} {terminal(image.ref)}  "
                         f"{terminal(_short(image.new_digest or image.old_digest))}")
    for platform in moved.platforms:
        if lines:
            lines.append("")
        lines.append(f"{terminal(platform.ref)}  {terminal(platform.platform)}")
        rows = [(LABELS[c.name], c) for c in platform.fields]
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


def _shown(field: str, value: str | None) -> str:
    """A diff side for people: a missing OS or Python was not found (unknown); a missing CUDA part is absent."""
    if value is not None:
        return value
    return UNKNOWN if field in ("os", "python") else "none"
