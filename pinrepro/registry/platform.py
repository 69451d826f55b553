"""Platform and architecture names: ``os/arch[/variant]``, this host's, dpkg's and uname's names for them.

The one home of these words; also which manifest of an index serves a wanted platform. Normalisation follows
containerd's ``platforms`` package (https://github.com/containerd/platforms): ``aarch64`` is ``arm64``,
``x86_64`` is ``amd64``; arm64's default variant is ``v8`` (indexes usually write ``linux/arm64/v8`` while
people write ``linux/arm64``), 32-bit arm's is ``v7``, amd64's is ``v1``. A wanted variant must match exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "i386": "386",
    "i686": "386",
    "armhf": "arm",
    "armel": "arm",
}
# Variants implied by an architecture alias (Debian's armhf is ARMv7, armel ARMv6).
_ALIAS_VARIANT = {"armhf": "v7", "armel": "v6"}
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7", "amd64": "v1"}
# Docker architecture -> what ``uname -m`` says on such a host (NVIDIA's driver tables are keyed by it).
_UNAME_MACHINE = {"amd64": "x86_64", "arm64": "aarch64"}
# Docker/OCI platform architecture -> dpkg's name for it (Debian's ArchitectureSpecificsMemo).
_DPKG_ARCH = {
    "amd64": "amd64", "arm64": "arm64", "386": "i386", "ppc64le": "ppc64el", "s390x": "s390x",
    "riscv64": "riscv64", "mips64le": "mips64el", "loong64": "loong64",
}


def normalise_arch(name: str) -> str:
    """Docker's name for an architecture: ``x86_64`` -> ``amd64``, ``aarch64`` -> ``arm64``; others as written."""
    lowered = name.strip().lower()
    return _ARCH_ALIASES.get(lowered, lowered)


def host_platform() -> str:
    """This machine as a Docker platform (``linux/amd64``, ``linux/arm64``, ...)."""
    import platform as host  # the standard library's, when the platform is asked for

    return f"linux/{normalise_arch(host.machine())}"


def without_variant(platform: str) -> str:
    """``linux/arm64/v8`` -> ``linux/arm64``."""
    return "/".join(platform.split("/")[:2])


def uname_machine(platform: str) -> str | None:
    """What ``uname -m`` says on a host of ``platform`` (``linux/amd64`` -> ``x86_64``), when known."""
    os_name, arch, _ = _normalise(platform)
    return _UNAME_MACHINE.get(arch) if os_name == "linux" else None


def same_platform(a: str, b: str) -> bool:
    """Whether two platform strings name the same platform (aliases and default variants count as written)."""
    a_os, a_arch, a_variant = _normalise(a)
    b_os, b_arch, b_variant = _normalise(b)
    default = _DEFAULT_VARIANT.get(a_arch)
    return (a_os, a_arch) == (b_os, b_arch) and (a_variant or default) == (b_variant or default)


def dpkg_architecture(arch: str | None, variant: str | None = None) -> str | None:
    """The dpkg architecture of a platform: ``arm/v7`` is ``armhf``, ``arm/v5`` is ``armel``."""
    if arch == "arm":
        return "armel" if variant in ("v5", "v6") else "armhf"
    return _DPKG_ARCH.get(arch or "")


def platform_key(os: str, architecture: str, variant: str | None) -> str:
    """``linux/arm64/v8``; no trailing slash when there is no variant."""
    parts = [os.strip().lower(), architecture.strip().lower()]
    if variant and variant.strip():
        parts.append(variant.strip().lower())
    return "/".join(parts)


def _normalise(text: str) -> tuple[str, str, str | None]:
    parts = [part.strip().lower() for part in text.split("/")]
    os_name = parts[0] if parts else ""
    raw_arch = parts[1] if len(parts) > 1 else ""
    variant = parts[2] if len(parts) > 2 and parts[2] else None
    arch = _ARCH_ALIASES.get(raw_arch, raw_arch)
    if variant is None:
        variant = _ALIAS_VARIANT.get(raw_arch)
    if arch == "arm64" and variant == "8":
        variant = "v8"
    return os_name, arch, variant


def match_platform(wanted: str, available: Iterable[str]) -> str | None:
    """The entry of ``available`` (returned as written there) that serves ``wanted``, or None.

    Exact matches win; then a missing variant stands for the architecture's default variant; then a
    wanted platform without a variant takes the only entry of its os/arch.
    """
    entries = list(available)
    w_os, w_arch, w_variant = _normalise(wanted)
    normalised = [(entry, _normalise(entry)) for entry in entries]
    for entry, (os_name, arch, variant) in normalised:
        if (os_name, arch, variant) == (w_os, w_arch, w_variant):
            return entry
    default = _DEFAULT_VARIANT.get(w_arch)
    for entry, (os_name, arch, variant) in normalised:
        if (os_name, arch) != (w_os, w_arch):
            continue
        if (variant or default) == (w_variant or default):
            return entry
    if w_variant is None:
        same = [entry for entry, (os_name, arch, _) in normalised if (os_name, arch) == (w_os, w_arch)]
        if len(same) == 1:
            return same[0]
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def config_platform(image_config: Mapping[str, Any]) -> str:
    """The platform key of a single-platform image, from its config blob (``unknown`` for what is missing)."""
    return platform_key(str(image_config.get("os") or "unknown"), str(image_config.get("architecture") or "unknown"),
                        _text(image_config.get("variant")))


def index_platforms(entries: list[Any]) -> dict[str, tuple[str, str]]:
    """platform key -> (digest, media type) of an index's ``manifests``; attestations and broken entries skipped."""
    platforms: dict[str, tuple[str, str]] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        platform = entry.get("platform")
        digest = entry.get("digest")
        if not isinstance(platform, dict) or not isinstance(digest, str):
            continue
        os_name = str(platform.get("os") or "")
        architecture = str(platform.get("architecture") or "")
        # BuildKit's attestation manifests sit in the index as "unknown/unknown".
        if not os_name or not architecture or os_name == "unknown" or architecture == "unknown":
            continue
        key = platform_key(os_name, architecture, _text(platform.get("variant")))
        # The first entry for a platform wins, as in docker pull (containerd's platform matcher order).
        platforms.setdefault(key, (digest, str(entry.get("mediaType") or "")))
    return platforms
