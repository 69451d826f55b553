"""Which pinned wheels are built for which CUDA: the table behind verify's and doctor's CUDA wheel checks.

A wheel is tied to a CUDA version by its name (``nvidia-cublas-cu12``, ``cupy-cuda12x``, ``tensorrt-cu12``,
``jax-cuda12-plugin``), by its local version (PyTorch's ``torch==2.5.1+cu124``, old ``jaxlib==0.4.23+cuda12...``,
Paddle's ``paddlepaddle-gpu==2.6.1.post120``), by a version that follows the toolkit's (``nvidia-cuda-runtime``,
``cuda-toolkit``, ``cuda-python``) or, for ``onnxruntime-gpu``, by the release (CUDA 12 from 1.19 on, 11.8 before).
Packages whose version does not follow CUDA (``nvidia-cudnn-cu12==9.1``, ``nvidia-nccl-cu12==2.21``) count by
their ``-cuNN`` suffix only. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pinrepro.inventory.cuda import version_or_zero
from pinrepro.inventory.driver_table import driver_floor
from pinrepro.reqfile import INDEX_OPTIONS, lock_options, parse_lock

_INDEX_CUDA = re.compile(r"/cu(\d{2,3})/?$")
_SUFFIX = re.compile(r"^(?:nvidia-[a-z0-9-]+?|tensorrt(?:-[a-z]+)?)-cu(\d{2})(?:-[a-z]+)?$")
_NAME_MAJOR = re.compile(r"^(?:cupy-cuda(\d{2})x|jax-cuda(\d{2})-(?:plugin|pjrt)|tensorrt-cu(\d{2}).*)$")
_CUPY_OLD = re.compile(r"^cupy-cuda(\d{2,3})$")  # cupy-cuda102, cupy-cuda115: major and minor
_LOCAL_CU = re.compile(r"\+cu(\d{2,3})\b")  # torch, torchvision, torchaudio, xformers, ...
_LOCAL_CUDA = re.compile(r"\+cuda(\d{2})")  # jaxlib 0.4.x+cuda12.cudnn89
_PADDLE_POST = re.compile(r"\.post(\d{2,3})$")  # paddlepaddle-gpu 2.6.1.post120
# Versions that are the CUDA version they were built for: the major (and minor) is CUDA's.
_TRACKS_TOOLKIT = frozenset({
    "nvidia-cuda-runtime", "nvidia-cuda-nvrtc", "nvidia-cuda-cupti", "nvidia-cuda-nvcc", "nvidia-cuda-cccl",
    "nvidia-nvjitlink", "nvidia-cublas", "cuda-toolkit", "cuda-python", "cuda-bindings",
})


@dataclass(frozen=True)
class CudaWheel:
    line: int
    what: str  # "torch==2.5.1+cu124", or "the index .../cu124"
    cuda: str  # "12.4", or "12" when only the major is fixed
    index: str | None = None  # the index URL when ``what`` is an index line


def cuda_of_tag(digits: str) -> str:
    """``121`` -> ``12.1``, ``118`` -> ``11.8``, ``92`` -> ``9.2`` (PyTorch's naming: the last digit is the minor)."""
    return f"{int(digits[:-1])}.{digits[-1]}"


def tag_of(cuda: str) -> str:
    """``12.1.1`` -> ``cu121`` (PyTorch's index naming)."""
    parts = cuda.split(".")
    return f"cu{parts[0]}{parts[1] if len(parts) > 1 else '0'}"


def cuda_of(name: str, version: str) -> str | None:
    """The CUDA a pinned wheel is built for (``12.4`` or major-only ``12``), None when it is not tied to one."""
    name = re.sub(r"[-_.]+", "-", name).lower()
    local = _LOCAL_CU.search(version)
    if local:
        return cuda_of_tag(local[1])
    local = _LOCAL_CUDA.search(version)
    if local:
        return str(int(local[1]))
    suffix = _SUFFIX.match(name)
    if suffix:
        return str(int(suffix[1]))
    by_name = _NAME_MAJOR.match(name)
    if by_name:
        return str(int(next(group for group in by_name.groups() if group)))
    old = _CUPY_OLD.match(name)
    if old:
        return cuda_of_tag(old[1])
    release = re.match(r"^(\d+)(?:\.(\d+))?", version)
    if release is None:
        return None
    if name in _TRACKS_TOOLKIT and int(release[1]) >= 10:
        # cuda-toolkit pulls that very minor's components; the rest run on any minor of their major
        return f"{release[1]}.{release[2]}" if name == "cuda-toolkit" and release[2] else release[1]
    if name == "onnxruntime-gpu":
        minor = int(release[2] or 0)
        return "12" if (int(release[1]), minor) >= (1, 19) else "11.8"
    if name == "paddlepaddle-gpu":
        post = _PADDLE_POST.search(version)
        return cuda_of_tag(post[1]) if post else None
    return None


def cuda_wheels(text: str) -> list[CudaWheel]:
    """Every line of a lock that ties it to a CUDA version: CUDA wheels, and index lines ending in /cuNNN."""
    found: list[CudaWheel] = []
    for option in lock_options(text):
        tag = _INDEX_CUDA.search(option.value) if option.option in INDEX_OPTIONS else None
        if tag:
            found.append(CudaWheel(option.line, f"the index {option.value}", cuda_of_tag(tag[1]), index=option.value))
    for entry in parse_lock(text):
        # only pins: an editable line installs whatever its source holds (pinrepro.reqfile)
        if entry.written_name is None or entry.version is None:
            continue
        cuda = cuda_of(entry.written_name, entry.version)
        if cuda is not None:
            found.append(CudaWheel(entry.line, f"{entry.written_name}=={entry.version}", cuda))
    return sorted(found, key=lambda wheel: wheel.line)


def index_for(wheels: list[CudaWheel], cuda: str) -> str:
    """The extra_index_urls line that gives wheels for ``cuda``: the lock's own /cuNNN index moved to it."""
    tag = tag_of(cuda)
    for wheel in wheels:
        if wheel.index is not None:
            return f'extra_index_urls = ["{_INDEX_CUDA.sub("/" + tag, wheel.index)}"]'
    return f'extra_index_urls = [".../whl/{tag}"]'


def driver_floors(cuda: str) -> tuple[str | None, str | None]:
    """(driver for the toolkit itself, driver for its major through minor-version compatibility) of wheels
    built for ``cuda`` (``12.4``, or major-only ``12``: only the second)."""
    if "." not in cuda:
        floor = driver_floor(f"{cuda}.0.0")
        return None, floor.compat if floor else None
    floor = driver_floor(f"{cuda}.0")
    return (floor.toolkit, floor.compat) if floor else (None, None)


def judge_wheels(text: str, driver: str | None) -> tuple[str, str] | None:
    """("ok" | "no" | "unknown", why) for a lock's CUDA wheels on a host with ``driver``; None without any."""
    wheels = [w for w in cuda_wheels(text) if w.index is None]
    if not wheels:
        return None
    top = max(wheels, key=lambda w: version_or_zero(w.cuda))
    needing = [w.what for w in wheels if w.cuda == top.cuda]
    shown = ", ".join(needing[:3]) + (f" and {len(needing) - 3} more" if len(needing) > 3 else "")
    label = f"CUDA {top.cuda}" + ("" if "." in top.cuda else ".x")
    if driver is None:
        return "no", f"{shown} need {label}, and this host has no NVIDIA driver"
    have = version_or_zero(driver)
    toolkit, compat = driver_floors(top.cuda)
    if toolkit and have >= version_or_zero(toolkit):
        return "ok", f"{shown} need {label}: driver {driver} >= {toolkit}"
    major = top.cuda.split(".")[0]
    if compat and have >= version_or_zero(compat):
        if toolkit is None:
            return "ok", f"{shown} need {label}: driver {driver} >= {compat}"
        return "ok", (f"{shown} need {label}: driver {driver} runs them through minor-version compatibility "
                      f"(>= {compat} for CUDA {major}.x; features needing driver >= {toolkit} may fail)")
    if compat or toolkit:
        return "no", (f"{shown} need {label}, driver >= {compat or toolkit}; driver {driver} is older - "
                      f"install a newer driver, or lock wheels for the CUDA this driver supports")
    return "unknown", f"{shown} need {label}, whose minimum driver is not in NVIDIA's table that pinrepro carries"
