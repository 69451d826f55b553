"""What `pinrepro lock` is handed: the registry it asks, how it scans and compiles, where it reports progress; and
what the user asked to move is ``pinrepro.upgrade.Upgrade``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pinrepro.errors import PinreproError
from pinrepro.reference import ImageRef

if TYPE_CHECKING:
    # Types only: the registry client (requests) and the resolvers (packaging) load when they are needed, so a
    # lock with nothing to do starts fast (issue #15).
    from pinrepro.layers.compile import LayerProgress
    from pinrepro.registry.client import Descriptor, ImageDescription
    from pinrepro.resolvers import ResolverRunner

Progress = Callable[[int, int], None]
# (image to fetch from, platform manifest digest) -> the platform's contents as lock data.
Scanner = Callable[[ImageRef, str], Mapping[str, Any]]


class Registry(Protocol):
    """What lock asks of a registry (``pinrepro.registry.client.RegistryClient``; tests hand in their own).

    Lock makes one through ``LockServices.registry`` only when something must be asked, and closes it when done.
    """

    def describe_many(self, refs: Sequence[ImageRef], *,
                      then: Callable[[ImageRef, ImageDescription], None] | None = None
                      ) -> dict[ImageRef, ImageDescription]:
        """What each reference points to; ``then`` runs as each answer arrives (lock starts the scan there)."""
        ...

    def head_many(self, refs: Sequence[ImageRef]) -> dict[ImageRef, Descriptor | PinreproError]:
        """The digest each tag serves now (HEAD: Docker Hub does not count it as a pull)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class LockServices:
    """The outside world of one lock run; each ``None`` is pinrepro's own (tests and the CLI pass theirs)."""

    registry: Callable[[], Registry] | None = None  # None: a RegistryClient for the configuration
    scanner: Scanner | None = None  # None: read the contents through the registry (pinrepro.inventory.scan)
    runner: ResolverRunner | None = None  # the requirement layers' resolver (pip-compile or uv)
    resolve_progress: Progress | None = None
    scan_progress: Progress | None = None
    layer_progress: LayerProgress | None = None
