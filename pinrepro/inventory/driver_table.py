"""The minimum NVIDIA driver a CUDA toolkit needs, from NVIDIA's toolkit-to-driver table (package data).

Two numbers per CUDA version (CUDA 13.1.0 release notes, section 2.2, Table 3 and the paragraph on
minor-version compatibility; see pinrepro/data/README.md):
- ``toolkit``: the driver the toolkit release ships with and fully supports (e.g. 12.4.0 -> 550.54.14);
- ``compat``: the floor of minor-version compatibility for the major family (11.x >= 450, 12.x >= 525,
  13.x >= 580): a 12.4 application can run on a 525 driver, except for features that need the newer driver
  (PTX JIT of newer code).
A version the table does not list (newer than the table, or a release it omits) gives None - "unknown" -
because pinrepro never guesses a driver.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

from pinrepro.inventory.cuda import parse_version

TABLE_RESOURCE = "data/cuda-toolkit-driver-table.tsv"
TABLE_SOURCE = "NVIDIA CUDA 13.1.0 toolkit release notes, section 2.2 'CUDA Driver', Table 3"

# Minor-version-compatibility floors by CUDA major (same release notes page).
COMPAT_FLOORS: dict[int, str] = {11: "450", 12: "525", 13: "580"}

# "CUDA 12.4 GA", "CUDA 13.0 Update 2", "CUDA 11.0.3 Update 1", "CUDA 11.0.1 RC", "CUDA 13.1".
_RELEASE = re.compile(r"CUDA (?P<version>\d+\.\d+(?:\.\d+)?)(?: (?P<kind>GA|RC|Update (?P<update>\d+)))?")


@dataclass(frozen=True)
class DriverFloor:
    """What a CUDA version needs from the host driver. None means unknown (not in the table)."""

    cuda: str
    toolkit: str | None
    compat: str | None
    release: str | None  # the table row's name, e.g. "CUDA 12.4 GA"


def _release_version(name: str) -> tuple[int, int, int] | None:
    match = _RELEASE.fullmatch(name.strip())
    if not match:
        return None
    parts = [int(p) for p in match["version"].split(".")]
    if len(parts) == 3:
        # The 11.0-11.3 rows spell the full version ("CUDA 11.0.3 Update 1"): that is the CUDA_VERSION.
        return parts[0], parts[1], parts[2]
    patch = int(match["update"]) if match["update"] else 0
    return parts[0], parts[1], patch


@functools.cache
def load_table() -> dict[tuple[int, int, int], tuple[str, str]]:
    """(major, minor, patch) -> (Linux x86_64 minimum driver, row name)."""
    text = resources.files("pinrepro").joinpath(TABLE_RESOURCE).read_text(encoding="utf-8")
    table: dict[tuple[int, int, int], tuple[str, str]] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("toolkit\t"):
            continue
        columns = line.split("\t")
        if len(columns) < 2:
            continue
        version = _release_version(columns[0])
        if version is None or parse_version(columns[1].strip()) is None:
            continue
        table[version] = (columns[1].strip(), columns[0].strip())
    return table


def driver_floor(cuda_version: str | None) -> DriverFloor | None:
    """The driver needs of ``cuda_version`` (``12.4.0``; a two-part ``12.4`` means ``12.4.0``).

    None when there is no CUDA version at all; a DriverFloor with ``toolkit=None`` when the version is not in
    the table (and ``compat=None`` when its major family is unknown too).
    """
    parsed = parse_version(cuda_version)
    if cuda_version is None:
        return None
    if parsed is None or len(parsed.release) < 2 or len(parsed.release) > 3:
        return DriverFloor(cuda=cuda_version, toolkit=None, compat=None, release=None)
    key = (parsed.major, parsed.minor, parsed.micro)
    row = load_table().get(key)
    return DriverFloor(
        cuda=cuda_version,
        toolkit=row[0] if row else None,
        compat=COMPAT_FLOORS.get(parsed.major),
        release=row[1] if row else None,
    )


def newest_cuda_for_driver(driver: str) -> str | None:
    """The newest CUDA ``major.minor`` whose toolkit minimum ``driver`` meets (None: older than any row).

    Used when ``nvidia-smi`` does not print a "CUDA Version". A driver newer than the table's last row can
    support a newer CUDA than the table knows; callers treat the answer as a lower bound.
    """
    have = parse_version(driver)
    if have is None:
        return None
    best: tuple[int, int, int] | None = None
    for version, (minimum, _) in load_table().items():
        need = parse_version(minimum)
        if need is not None and have >= need and (best is None or version > best):
            best = version
    return f"{best[0]}.{best[1]}" if best else None
