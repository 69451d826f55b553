"""``os-release`` (os-release(5)): shell-style ``KEY=value`` lines, values optionally quoted. Pure: no I/O.

Images keep it at ``etc/os-release``, often a symlink to ``../usr/lib/os-release``; a reader falls back to
``usr/lib/os-release`` when ``etc/os-release`` does not exist (the layer code resolves both).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)")


def parse_os_release(data: bytes | str) -> dict[str, str]:
    """All assignments of the file; a line that does not parse (bad quoting, garbage) is skipped."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if not match:
            continue
        try:
            words = shlex.split(match[2], comments=False, posix=True)
        except ValueError:
            continue
        values[match[1]] = " ".join(words)
    return values


@dataclass(frozen=True)
class OsInfo:
    id: str | None
    version_id: str | None
    codename: str | None
    pretty_name: str | None = None

    @classmethod
    def from_values(cls, values: dict[str, str]) -> OsInfo:
        return cls(
            id=values.get("ID") or None,
            version_id=values.get("VERSION_ID") or None,
            # Older Ubuntu releases set only UBUNTU_CODENAME.
            codename=values.get("VERSION_CODENAME") or values.get("UBUNTU_CODENAME") or None,
            pretty_name=values.get("PRETTY_NAME") or None,
        )

    def label(self) -> str:
        """``ubuntu 22.04 (jammy)``; ``unknown`` when nothing is known."""
        text = " ".join(part for part in (self.id, self.version_id) if part)
        if self.codename:
            text = f"{text} ({self.codename})" if text else self.codename
        return text or "unknown"
