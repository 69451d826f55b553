"""What is inside an image: OS, Python, CUDA stack, minimum driver and apt packages, per platform.

Entry point: ``scan_platform(client, ref, platform_manifest, cache=Cache())`` -> ``PlatformContents``, whose
``to_toml()`` is the platform's table in pinrepro.lock. Modules, one job each: ``cuda`` (env facts and
NVIDIA_REQUIRE_CUDA), ``driver_table`` (toolkit -> driver), ``dpkg``, ``osrelease``, ``imageconfig``,
``layers`` (one streamed layer), ``overlay`` (layers stacked, whiteouts), ``cache``, ``scan``, ``contents``,
``coherence`` (verify's CUDA checks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pinrepro.errors import InventoryError
from pinrepro.inventory.cache import Cache, default_cache_dir
from pinrepro.inventory.contents import CudaInfo, PlatformContents

if TYPE_CHECKING:
    from pinrepro.inventory.scan import scan_platform


def __getattr__(name: str) -> Any:
    # scan brings the registry client (requests) with it: loaded on first use, so that importing the cache or
    # verify's CUDA checks does not cost start-up time (issue #15).
    if name == "scan_platform":
        from pinrepro.inventory.scan import scan_platform

        return scan_platform
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Cache", "CudaInfo", "InventoryError", "PlatformContents", "default_cache_dir", "scan_platform"]
