"""Which lock file of a layer serves which image platform.

A lock with ``--hash`` lines and exact pins can only be right for one architecture: ``torch`` on x86_64 pulls
``nvidia-*-cu12`` wheels that do not exist for aarch64, and a single lock with ``platform_machine`` markers does
not help either, because pip evaluates markers on the machine it runs on, not on ``--platform``. So a layer
gets one lock per target architecture when the configured platforms span several, named after Docker's
``TARGETARCH`` so that the Dockerfile picks its own::

    ARG TARGETARCH
    COPY requirements-base.*.lock /tmp/
    RUN pip install --no-deps --require-hashes -r /tmp/requirements-base.${TARGETARCH}.lock

With one architecture (the default ``linux/amd64``) the layer keeps its single lock file, as configured.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    platform: str  # the Docker platform the lock is resolved for
    lock: str  # project-relative POSIX path of its lock file


def arch(platform: str) -> str:
    """Docker's TARGETARCH of ``platform``: linux/arm64/v8 -> arm64."""
    parts = platform.split("/")
    return parts[1] if len(parts) > 1 else platform


def targets(lock: str, platforms: Sequence[str]) -> list[Target]:
    """One target per architecture (the first platform of each), with the lock file it is written to."""
    first: dict[str, str] = {}
    for platform in platforms:
        first.setdefault(arch(platform), platform)
    lock = posixpath.normpath(lock)
    if len(first) <= 1:
        return [Target(platform, lock) for platform in first.values()]
    stem, dot, ext = lock.rpartition(".")
    if not dot or "/" in ext:
        stem, ext = lock, "lock"
    return [Target(platform, f"{stem}.{name}.{ext}") for name, platform in first.items()]


def targetarch_pattern(lock: str, platforms: Sequence[str]) -> str | None:
    """The ``${TARGETARCH}`` form of the lock path for a Dockerfile, or None when there is one lock file."""
    found = targets(lock, platforms)
    if len(found) <= 1:
        return None
    name = arch(found[0].platform)
    return found[0].lock.replace(f".{name}.", ".${TARGETARCH}.")
