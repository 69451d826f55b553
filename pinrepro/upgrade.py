"""What the user asked to move although its input did not change: every pin (``--upgrade``), or the named
packages of the requirement layers (``--upgrade-package``, pip-compile's option of the same name).

One value from the command line down to the registry planner and the layer compiler, instead of a bool and a
list threaded side by side through every call."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class Upgrade:
    everything: bool = False
    packages: tuple[str, ...] = ()

    @classmethod
    def of(cls, everything: bool = False, packages: Collection[str] = ()) -> Upgrade:
        return cls(everything, tuple(packages))


NO_UPGRADE = Upgrade()
