"""Checklist items 2-4: base images pinned by digest and Python packages pinned with hashes - both exactly
what `pinrepro verify` finds, called here rather than copied - and GPU driver compatibility known.

Item 4 reads only what `pinrepro lock` recorded (each platform's CUDA version and minimum driver); the
host-side question "does this machine's driver meet it" stays with `pinrepro doctor`.
"""

from __future__ import annotations

from collections.abc import Iterator

from pinrepro.check.model import CheckContext, finding
from pinrepro.cudawheels import cuda_wheels
from pinrepro.dockerfile import Dockerfile, strip_digest
from pinrepro.errors import PinreproError
from pinrepro.findings import Finding
from pinrepro.inventory.contents import PlatformContents
from pinrepro.inventory.cuda import parse_version
from pinrepro.inventory.driver_table import driver_floor
from pinrepro.pyplatforms import targets
from pinrepro.reference import ImageRef
from pinrepro.verify import run_verify


def verify_findings(ctx: CheckContext, dockerfiles: list[Dockerfile]) -> list[Finding]:
    """Items 2 and 3: every finding of offline `pinrepro verify`, under verify's own ids.

    ``dockerfiles`` are all of the project's (verify judges the lock against all of them), already read.
    """
    return list(run_verify(ctx.config, dockerfiles=dockerfiles).findings)


def _lock_key(image: str) -> str:
    ref = ImageRef.parse(image)
    return ref.without_digest().tagged if ref.tag else ref.tagged


def _looks_cuda(image: str) -> bool:
    ref = ImageRef.parse(image)
    return "cuda" in ref.repository or "cuda" in (ref.tag or "") or ref.registry == "nvcr.io"


def check(ctx: CheckContext) -> Iterator[Finding]:
    fleet = ctx.settings.min_driver
    lock = ctx.lock
    if lock is None:
        return  # verify's no-lock finding says what to do
    for view in ctx.dockerfiles:
        for stage in view.final:
            site = stage.site
            if site.kind != "image" or site.image is None:
                continue
            entry = lock.images.get(_lock_key(site.image))
            if entry is None:
                continue  # not-locked: verify's finding
            shown = strip_digest(site.image)[0]
            unknown: list[str] = []
            too_new: list[str] = []
            for platform in ctx.config.platforms:
                recorded = entry.platforms.get(platform)
                if recorded is None or recorded.absent:
                    continue
                contents = _contents(recorded.contents)
                if contents is None:
                    if _looks_cuda(site.image):
                        unknown.append(f"{platform} (no contents recorded)")
                    continue
                cuda = contents.cuda
                if cuda is None or not cuda.version:
                    continue
                if cuda.min_driver is None:
                    unknown.append(f"{platform} (CUDA {cuda.version} is not in NVIDIA's table)")
                elif fleet and _newer(cuda.min_driver, fleet):
                    too_new.append(f"{platform}: CUDA {cuda.version} needs driver >= {cuda.min_driver}")
            if unknown:
                yield finding("driver-unknown", view.path, site.line,
                              f"{shown} has no known minimum NVIDIA driver in {ctx.config.lockfile}: "
                              f"{', '.join(unknown)}", stage=stage)
            if too_new:
                yield finding("driver-too-new", view.path, site.line,
                              f"{shown} needs a newer driver than the fleet's {fleet} ({'; '.join(too_new)})",
                              stage=stage)
    if fleet:
        yield from _wheels(ctx, fleet)


def _wheels(ctx: CheckContext, fleet: str) -> Iterator[Finding]:
    # Every platform's lock of every layer (one per architecture when several are configured).
    locks = [target.lock for layer in ctx.config.layers for target in targets(layer.lock, ctx.config.platforms)]
    for lock in locks:
        try:
            text = (ctx.root / lock).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # a missing lock is verify's finding
        for wheel in cuda_wheels(text):
            if wheel.index is not None:
                continue  # an index line: the wheels it gave are judged on their own lines
            line, built_for, what = wheel.line, wheel.cuda, wheel.what
            floor = driver_floor(f"{built_for}.0" if "." in built_for else f"{built_for}.0.0")
            if floor is None:
                continue
            # A major-only package (nvidia-cublas-cu12) runs on the major's compatibility floor.
            needs = floor.toolkit if "." in built_for else floor.compat
            if needs and _newer(needs, fleet):
                yield finding("driver-too-new", lock, line,
                              f"{what} is built for CUDA {built_for}, which needs driver >= {needs}; "
                              f"the fleet runs {fleet}")


def _newer(needed: str, fleet: str) -> bool:
    need, have = parse_version(needed), parse_version(fleet)
    return need is not None and have is not None and need > have


def _contents(data: object) -> PlatformContents | None:
    if not data or not isinstance(data, dict):
        return None
    try:
        return PlatformContents.from_toml(data)
    except PinreproError:
        return None  # a corrupt entry is the lock checks' business
