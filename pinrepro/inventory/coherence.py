"""verify's CUDA coherence checks: do the requirement locks, the Dockerfile stages and the images agree?

Three warnings, each at the file and line to fix:
- ``cuda-wheel-newer``: a requirement lock pins wheels built for a newer CUDA than an image the Dockerfiles
  use (``torch==2.3.1+cu124``, ``nvidia-*-cu12`` / ``cupy-cuda12x`` packages, ``--extra-index-url
  .../whl/cu124``); a host sized for the image's driver floor may be too old for them;
- ``cuda-stage-mismatch``: two stages of one Dockerfile use images with different CUDA major.minor (libraries
  built or copied in one stage may not load in the other);
- ``python-mismatch``: the requirement locks target a Python that the image does not have.
Only what the lock recorded is compared: an image without recorded contents is skipped, never guessed.
Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from pinrepro.config import Config
from pinrepro.dockerfile import Dockerfile, FromSite
from pinrepro.errors import PinreproError
from pinrepro.findings import Finding
from pinrepro.inventory.contents import PlatformContents
from pinrepro.inventory.cuda import compare_versions, major_minor, parse_version
from pinrepro.inventory.driver_table import driver_floor
from pinrepro.lockfile import ImageLock, Lock
from pinrepro.reference import ImageRef

# name==version where the version has a local "+cuNNN" part (PyTorch's wheels: torch==2.3.1+cu121).
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*===?\s*([^\s;\\#]+)")
_LOCAL_CUDA = re.compile(r"\+cu(\d{2,3})\b")
# nvidia-cublas-cu12, nvidia-nccl-cu13, cupy-cuda12x, jax-cuda12-plugin: built for one CUDA major.
_MAJOR_PACKAGE = re.compile(r"^(?:nvidia-[a-z0-9-]+-cu(\d{2})|cupy-cuda(\d{2})x|jax-cuda(\d{2})-(?:plugin|pjrt))$")
# --index-url / --extra-index-url / --find-links https://download.pytorch.org/whl/cu121
_INDEX = re.compile(r"^\s*(?:--extra-index-url|--index-url|-i|--find-links|-f)[\s=]+(\S+)")
_INDEX_CUDA = re.compile(r"/cu(\d{2,3})/?$")


@dataclass(frozen=True)
class _ImageCuda:
    key: str
    version: str  # the image's CUDA_VERSION
    min_driver: str | None


def _cuda_of_tag(digits: str) -> str:
    """``121`` -> ``12.1``, ``118`` -> ``11.8``, ``92`` -> ``9.2`` (PyTorch's naming: the last digit is the minor)."""
    return f"{int(digits[:-1])}.{digits[-1]}"


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
    """One finding per CUDA version a lock is built for (the cause), at its first line, naming every package."""
    groups: dict[str, tuple[int, list[str]]] = {}
    for number, built_for, what in _cuda_lines(text):
        groups.setdefault(built_for, (number, []))[1].append(what)
    findings: list[Finding] = []
    for built_for, (number, whats) in groups.items():
        reasons = [(image, message) for image in images if (message := _newer(built_for, image))]
        if not reasons:
            continue
        shown = ", ".join(whats[:4]) + (f" and {len(whats) - 4} more" if len(whats) > 4 else "")
        message = reasons[0][1] if len(whats) == 1 else "are" + reasons[0][1][len("is"):]
        others = [f"CUDA {image.version} of {image.key}" for image, _ in reasons[1:]]
        also = f" (also newer than {', '.join(others)})" if others else ""
        findings.append(Finding(path, number, "warning", "cuda-wheel-newer", f"{shown} {message}{also}"))
    return findings


def _cuda_lines(text: str) -> Iterator[tuple[int, str, str]]:
    """(line, CUDA version "12.4" or major "12", what: the pin or the index) of each line built for a CUDA."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.split(" #", 1)[0].strip()
        if not stripped or stripped.startswith("#"):
            continue
        built_for: str | None = None  # "12.4", or "12" for a major-only package
        what = ""
        index = _INDEX.match(stripped)
        if index:
            match = _INDEX_CUDA.search(index[1])
            if match:
                built_for, what = _cuda_of_tag(match[1]), f"the index {index[1]}"
        else:
            pin = _PIN.match(stripped)
            if pin:
                local = _LOCAL_CUDA.search(pin[2])
                package = _MAJOR_PACKAGE.match(pin[1].lower())
                if local:
                    built_for = _cuda_of_tag(local[1])
                elif package:
                    built_for = str(int(next(group for group in package.groups() if group)))
                what = f"{pin[1]}=={pin[2]}"
        if built_for is not None:
            yield number, built_for, what


def _newer(built_for: str, image: _ImageCuda) -> str | None:
    """Why wheels for CUDA ``built_for`` are too new for ``image``, or None when they fit."""
    wheel = parse_version(built_for)
    have = parse_version(image.version)
    if wheel is None or have is None:
        return None
    if len(wheel) == 1:
        if wheel[0] <= have[0]:
            return None
        floor = driver_floor(f"{wheel[0]}.0.0")
        needs = floor.compat if floor and floor.compat else None
    else:
        if compare_versions(wheel, have[:2]) <= 0:
            return None
        floor = driver_floor(f"{built_for}.0")
        needs = (floor.toolkit or floor.compat) if floor else None
    image_floor = f"driver floor {image.min_driver}" if image.min_driver else "driver floor unknown"
    label = f"CUDA {built_for}" + (".x" if len(wheel) == 1 else "")
    needed = f"; {label} needs driver >= {needs}" if needs else ""
    return (f"is built for {label}, newer than CUDA {image.version} of {image.key} ({image_floor}{needed}): "
            "hosts sized for the image may be unable to run it; use wheels for the image's CUDA or a newer image")
