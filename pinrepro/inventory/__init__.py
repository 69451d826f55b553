"""What is inside an image: OS, Python, CUDA stack, minimum driver and apt packages, per platform.

Entry point: ``scan_platform(client, ref, platform_manifest, cache=Cache())`` -> ``PlatformContents``, whose
``to_toml()`` is the platform's table in pinrepro.lock. Modules, one job each: ``cuda`` (env facts and
NVIDIA_REQUIRE_CUDA), ``driver_table`` (toolkit -> driver), ``dpkg``, ``osrelease``, ``imageconfig``,
``layers`` (one streamed layer), ``overlay`` (layers stacked, whiteouts), ``cache``, ``scan``, ``contents``.
What the contents mean for a project (verify's CUDA checks) is pinrepro.coherence's business, not this package's.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pinrepro.errors import InventoryError
    from pinrepro.inventory.cache import Cache, default_cache_dir
    from pinrepro.inventory.contents import CudaInfo, PlatformContents
    from pinrepro.inventory.scan import scan_platform

# Loaded on first use: verify's CUDA checks (pinrepro.coherence) need neither the layer reader nor the registry client
# (requests) that cache and scan bring with them - start-up time, issue #15.
_WHERE = {
    "InventoryError": "pinrepro.errors", "Cache": "pinrepro.inventory.cache",
    "default_cache_dir": "pinrepro.inventory.cache", "CudaInfo": "pinrepro.inventory.contents",
    "PlatformContents": "pinrepro.inventory.contents", "scan_platform": "pinrepro.inventory.scan",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["Cache", "CudaInfo", "InventoryError", "PlatformContents", "default_cache_dir", "scan_platform"]
