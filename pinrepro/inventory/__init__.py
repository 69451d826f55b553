"""What is inside an image: OS, Python, CUDA stack, minimum driver and apt packages, per platform.

Entry point: ``scan_platform(client, ref, platform_manifest, cache=Cache())`` -> ``PlatformContents``, whose
``to_toml()`` is the platform's table in pinrepro.lock. Modules, one job each: ``cuda`` (env facts and
NVIDIA_REQUIRE_CUDA), ``driver_table`` (toolkit -> driver), ``dpkg``, ``osrelease``, ``imageconfig``,
``layers`` (one streamed layer), ``overlay`` (layers stacked, whiteouts), ``cache``, ``scan``, ``contents``,
``coherence`` (verify's CUDA checks).
"""

from __future__ import annotations

from pinrepro.errors import InventoryError
from pinrepro.inventory.cache import Cache, default_cache_dir
from pinrepro.inventory.contents import CudaInfo, PlatformContents
from pinrepro.inventory.scan import scan_platform

__all__ = ["Cache", "CudaInfo", "InventoryError", "PlatformContents", "default_cache_dir", "scan_platform"]
