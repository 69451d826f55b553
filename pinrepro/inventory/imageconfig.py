"""Facts from an image's config blob (one small JSON document per platform): env, labels, creation time.

The config is image-spec ``config.md`` (Docker's is the same shape): ``os``, ``architecture``, ``variant``,
``created``, and ``config.Env`` / ``config.Labels``. Each platform has its own, and their values differ (an
arm64 CUDA image can carry a different NVIDIA_REQUIRE_CUDA than its amd64 sibling: NVIDIA sets it per
architecture in the base Dockerfiles of https://gitlab.com/nvidia/container-images/cuda), so every platform's
config is read. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pinrepro.errors import InventoryError
from pinrepro.inventory.cuda import CudaEnv, cuda_from_env, env_list_to_mapping

# Labels worth keeping in the lock: provenance (OCI annotations) and NVIDIA's own.
LABEL_PREFIXES = ("org.opencontainers.image.", "com.nvidia.")
_PYTHON = re.compile(r"3\.\d+(?:\.\d+)?(?:(?:a|b|rc)\d+)?")


@dataclass(frozen=True)
class ImageConfig:
    os: str | None
    architecture: str | None
    variant: str | None
    created: str | None
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes, *, where: str, digest: str) -> ImageConfig:
        """Parse a config blob; anything but a JSON object is an InventoryError. Missing parts are None/empty."""
        try:
            document: Any = json.loads(data)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise InventoryError(
                f"config blob {digest} is not a JSON object", where=where,
                fix="the image is not a container image, or the registry is damaged; check the reference",
            )
        inner = document.get("config")
        if not isinstance(inner, dict):
            inner = {}  # "config": null is legal (an image built FROM scratch with no settings)
        labels = inner.get("Labels")
        return cls(
            os=_str(document.get("os")),
            architecture=_str(document.get("architecture")),
            variant=_str(document.get("variant")),
            created=_str(document.get("created")),
            env=env_list_to_mapping(inner.get("Env")),
            labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
        )

    @property
    def python(self) -> str | None:
        """PYTHON_VERSION, as the official python images set it; None when absent or not a version."""
        value = self.env.get("PYTHON_VERSION", "").strip()
        return value if _PYTHON.fullmatch(value) else None

    @property
    def cuda(self) -> CudaEnv:
        return cuda_from_env(self.env)

    @property
    def labels_of_interest(self) -> dict[str, str]:
        return {k: v for k, v in sorted(self.labels.items()) if k.startswith(LABEL_PREFIXES)}


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
