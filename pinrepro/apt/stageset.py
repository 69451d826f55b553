"""The final apt set of each stage, from the lock alone: the base image's packages plus what the RUN lines of
the stage (and of the stages it builds on) add. What ``pinrepro manifest`` shows and what its diff compares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pinrepro.lockfile import Lock


def stage_sets(lock: Lock) -> dict[tuple[str, str], dict[str, str]]:
    """(stage key, platform) -> package -> version."""
    stages: Mapping[str, Any] = lock.apt.get("stages", {}) if isinstance(lock.apt.get("stages"), dict) else {}
    sets: dict[tuple[str, str], dict[str, str]] = {}
    for key, platforms in sorted(stages.items()):
        if not isinstance(platforms, dict):
            continue
        for platform in sorted(platforms):
            sets[(key, platform)] = _final(lock, stages, key, platform, depth=0)
    return sets


def added(lock: Lock, key: str, platform: str) -> dict[str, str]:
    """What the stage's own RUN lines install or upgrade."""
    record = lock.apt.get("stages", {}).get(key, {}).get(platform, {})
    closure = record.get("closure", {}) if isinstance(record, dict) else {}
    return {name: str(value).split()[0] for name, value in closure.items()}


def _final(lock: Lock, stages: Mapping[str, Any], key: str, platform: str, *, depth: int) -> dict[str, str]:
    record = stages.get(key, {}).get(platform, {})
    if not isinstance(record, dict) or depth > len(stages):
        return {}
    base = str(record.get("base", ""))
    packages: dict[str, str] = {}
    if base.startswith("stage "):
        packages.update(_final(lock, stages, base[len("stage "):], platform, depth=depth + 1))
    else:
        image = lock.images.get(base)
        entry = image.platforms.get(platform) if image else None
        contents = entry.contents if entry and entry.contents else {}
        apt = contents.get("apt", {}) if isinstance(contents, Mapping) else {}
        packages.update({str(k): str(v) for k, v in apt.items()} if isinstance(apt, Mapping) else {})
    packages.update(added(lock, key, platform))
    return dict(sorted(packages.items()))
