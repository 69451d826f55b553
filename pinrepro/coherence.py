"""verify's CUDA coherence checks: do the requirement locks, the Dockerfile stages and the images agree?

A verify check that reads what pinrepro.inventory recorded (that package only knows image contents).

Three warnings, each at the file and line to fix:
- ``cuda-wheel-newer``: a requirement lock pins wheels built for a newer CUDA than an image the Dockerfiles
  use (``torch==2.3.1+cu124``, ``nvidia-*-cu12``, ``onnxruntime-gpu``, ``--extra-index-url .../whl/cu124``:
  the table is pinrepro.cudawheels); a host sized for the image's driver floor may be too old for them. One
  warning per lock, naming the wheels, the driver they need, the images and the index line for the image's CUDA;
- ``cuda-stage-mismatch``: two stages of one Dockerfile use images with different CUDA major.minor (libraries
  built or copied in one stage may not load in the other);
- ``python-mismatch``: the requirement locks target a Python that the image does not have.
Only what the lock recorded is compared: an image without recorded contents is skipped, never guessed.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from pinrepro.config import Config
from pinrepro.cudawheels import cuda_wheels, driver_floors, index_for
from pinrepro.dockerfile import Dockerfile, FromSite
from pinrepro.errors import PinreproError
from pinrepro.findings import Finding
from pinrepro.inventory.contents import PlatformContents
from pinrepro.inventory.cuda import major_minor, parse_version, version_or_zero
from pinrepro.lockfile import ImageLock, Lock
from pinrepro.reference import ImageRef


@dataclass(frozen=True)
class _ImageCuda:
    key: str
    version: str  # the image's CUDA_VERSION
    min_driver: str | None


def _lock_key(image: str) -> str | None:
    try:
        ref = ImageRef.parse(image)
    except PinreproError:
        return None
    return ref.without_digest().tagged if ref.tag else ref.tagged


def _contents(image: ImageLock, platforms: Sequence[str]) -> PlatformContents | None:
    """The recorded contents of the first configured platform that has some (then any platform)."""
    names = [p for p in platforms if p in image.platforms] + sorted(set(image.platforms) - set(platforms))
    for name in names:
        entry = image.platforms[name]
        if not entry.absent and entry.contents:
            try:
                return PlatformContents.from_toml(entry.contents)
            except PinreproError:
                return None  # a corrupt entry is the lock checks' business, not ours
    return None


def check_cuda_coherence(config: Config, lock: Lock, dockerfiles: Sequence[Dockerfile],
                         requirement_lock_texts: Mapping[str, str]) -> list[Finding]:
    """Warnings for CUDA and Python disagreements between the requirement locks, the Dockerfiles and the images.

    ``requirement_lock_texts`` maps each requirement lock's path (as it should be shown) to its text.
    """
    platforms = tuple(config.platforms)
    used: list[str] = []
    findings: list[Finding] = []
    targets = _target_pythons(config, lock)
    for dockerfile in dockerfiles:
        findings.extend(_stage_findings(dockerfile, lock, platforms))
        findings.extend(_python_findings(dockerfile, lock, platforms, targets))
        for site in dockerfile.sites:
            key = _lock_key(site.image) if site.kind == "image" and site.image else None
            if key is not None and key not in used:
                used.append(key)
    images: list[_ImageCuda] = []
    for key in used or sorted(lock.images):
        image = lock.images.get(key)
        contents = _contents(image, platforms) if image else None
        if contents is not None and contents.cuda is not None and contents.cuda.version:
            images.append(_ImageCuda(key, contents.cuda.version, contents.cuda.min_driver))
    for path, text in sorted(requirement_lock_texts.items()):
        findings.extend(_wheel_findings(path, text, images))
    return sorted(findings, key=lambda f: (f.path, f.line or 0, f.code, f.message))


def _recorded_sites(dockerfile: Dockerfile, lock: Lock, platforms: Sequence[str]
                    ) -> Iterator[tuple[FromSite, str, PlatformContents]]:
    """Each FROM that names an image whose contents the lock recorded: (site, its image, the contents)."""
    for site in dockerfile.sites:
        if site.kind != "image" or not site.image:
            continue
        key = _lock_key(site.image)
        image = lock.images.get(key) if key else None
        contents = _contents(image, platforms) if image else None
        if contents is not None:
            yield site, site.image, contents


def _stage_findings(dockerfile: Dockerfile, lock: Lock, platforms: Sequence[str]) -> list[Finding]:
    first: tuple[str, int, str] | None = None  # (major.minor, line, image)
    findings: list[Finding] = []
    for site, image_name, contents in _recorded_sites(dockerfile, lock, platforms):
        version = major_minor(contents.cuda.version) if contents.cuda else None
        if version is None:
            continue
        if first is None:
            first = (version, site.line, image_name)
        elif version != first[0]:
            stage = f"stage '{site.stage_name}'" if site.stage_name else "this stage"
            findings.append(Finding(
                dockerfile.path, site.line, "warning", "cuda-stage-mismatch",
                f"{stage} uses {image_name} with CUDA {version}, but the stage at line {first[1]} uses "
                f"{first[2]} with CUDA {first[0]}: libraries built or copied across them may not load; "
                "use the same CUDA major.minor in every stage",
            ))
    return findings


def _target_pythons(config: Config, lock: Lock) -> set[str]:
    declared = [config.python, *(layer.python for layer in config.layers),
                *(layer.python for layer in lock.layers.values())]
    return {mm for value in declared if value and (mm := major_minor(value)) is not None}


def _python_findings(dockerfile: Dockerfile, lock: Lock, platforms: Sequence[str], targets: set[str]) -> list[Finding]:
    if not targets:
        return []  # the locks were compiled for whatever interpreter ran the resolver: nothing to compare
    findings: list[Finding] = []
    for site, image_name, contents in _recorded_sites(dockerfile, lock, platforms):
        python = contents.python
        version = major_minor(python)
        if version is None or version in targets:
            continue
        wanted = " or ".join(sorted(targets))
        findings.append(Finding(
            dockerfile.path, site.line, "warning", "python-mismatch",
            f"{image_name} has Python {python}, but the requirement locks target Python {wanted}: wheels resolved "
            "for one may not install on the other; set `python` in [tool.pinrepro] to the image's version",
        ))
    return findings


def _wheel_findings(path: str, text: str, images: Sequence[_ImageCuda]) -> list[Finding]:
    """One warning per lock: every wheel built for a newer CUDA than an image the Dockerfiles use, the images,
    the driver the wheels need and the index line that gives wheels for the image's CUDA."""
    wheels = cuda_wheels(text)
    reasons = [(image, newer) for image in images if (newer := [w for w in wheels if _is_newer(w.cuda, image)])]
    if not reasons:
        return []
    # the image most wheels are too new for speaks for all; the others are named after it
    image, _ = max(reasons, key=lambda item: len(item[1]))
    newer = [w for w in wheels if any(w in found for _, found in reasons)]
    items = [f"{w.what} (CUDA {w.cuda}{'.x' if '.' not in w.cuda else ''})" for w in newer]
    shown = ", ".join(items[:6]) + (f" and {len(items) - 6} more" if len(items) > 6 else "")
    needs = sorted({need for w in newer if (need := _driver_needed(w.cuda))}, key=version_or_zero)
    image_floor = f"driver floor {image.min_driver}" if image.min_driver else "driver floor unknown"
    needed = f"; they need driver >= {needs[-1]}" if needs else ""
    others = [f"CUDA {other.version} of {other.key}" for other, _ in reasons if other is not image]
    also = f" (also newer than {', '.join(others)})" if others else ""
    cuda = major_minor(image.version) or image.version
    verb = "is" if len(newer) == 1 else "are"
    return [Finding(
        path, newer[0].line, "warning", "cuda-wheel-newer",
        f"{shown} {verb} built for a newer CUDA than CUDA {image.version} of {image.key} ({image_floor}{needed})"
        f"{also}: hosts sized for the image may be unable to run {'it' if verb == 'is' else 'them'} - use wheels "
        f"for CUDA {cuda} ({index_for(wheels, cuda)}; PyTorch publishes one index per CUDA version) or a newer image",
    )]


def _is_newer(built_for: str, image: _ImageCuda) -> bool:
    """True when wheels for CUDA ``built_for`` (``12.4``, or major-only ``12``) are too new for ``image``."""
    wheel = parse_version(built_for)
    have = parse_version(image.version)
    if wheel is None or have is None:
        return False
    if len(wheel.release) == 1:
        return wheel.major > have.major
    return wheel > version_or_zero(f"{have.major}.{have.minor}")


def _driver_needed(built_for: str) -> str | None:
    """The minimum driver for wheels built for CUDA ``built_for`` (major-only: through forward compatibility)."""
    toolkit, compat = driver_floors(built_for)
    return toolkit or compat
