"""``[tool.pinrepro.apt]``: whether apt installs are pinned, and which archive snapshot the build uses.

```toml
[tool.pinrepro.apt]
enabled = true            # default: on when a stage installs apt packages and this host has apt-get
snapshot = "auto"         # "auto": lock an archive snapshot where the distribution has a snapshot service; "off"
[tool.pinrepro.apt.snapshot_url]   # per os-release ID or per source URI; {archive} is the source's archive
debian = "https://snapshot.debian.org/archive/{archive}/{timestamp}/"   # name (debian, debian-security)
"http://mirror.internal/debian" = "http://mirror.internal/snapshots/{timestamp}/"
"http://deb.example.com/repo" = "off"            # this source keeps no snapshots: do not try
```
A source URI key wins over the distribution's; ``"off"`` means the source is resolved and built live.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pinrepro.errors import ConfigError
from pinrepro.schema import UNKNOWN_KEY_FIX, check_keys, locate

# The public snapshot services (snapshot.debian.org and snapshot.ubuntu.com keep every archive state).
DEFAULT_SNAPSHOT_URLS: Mapping[str, str] = {
    "debian": "https://snapshot.debian.org/archive/{archive}/{timestamp}/",
    "ubuntu": "https://snapshot.ubuntu.com/{archive}/{timestamp}/",
}
_KEYS = {"enabled", "snapshot", "snapshot_url"}


@dataclass(frozen=True)
class AptSettings:
    enabled: bool | None = None  # None: decide by what the Dockerfiles install
    snapshot: Literal["auto", "off"] = "auto"
    snapshot_url: Mapping[str, str] = field(default_factory=dict)  # configured by the user only

    def template_for(self, distribution: str | None, uri: str = "") -> tuple[str | None, bool]:
        """The snapshot URL template for a source (by its URI, else the image's os-release ID), and whether
        the user configured it (then it is trusted to serve every source it applies to, e.g. a mirror)."""
        if self.snapshot == "off":
            return None, False
        configured = self.snapshot_url.get(uri.rstrip("/")) or self.snapshot_url.get(uri)
        if configured is None and distribution is not None:
            configured = self.snapshot_url.get(distribution)
        if configured is not None:
            return (None, True) if configured == "off" else (configured, True)
        return DEFAULT_SNAPSHOT_URLS.get(distribution or ""), False


def parse_settings(raw: Any, *, where: str) -> AptSettings:
    if raw is None:
        return AptSettings()
    if not isinstance(raw, dict):
        raise ConfigError("'apt' must be a table", where=where, fix="write it as [tool.pinrepro.apt]")
    file, section = locate(where, "apt")
    check_keys(raw, _KEYS, section, lambda message: ConfigError(message, where=file, fix=UNKNOWN_KEY_FIX))
    enabled = raw.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise ConfigError("'apt.enabled' must be true or false", where=where)
    snapshot = raw.get("snapshot", "auto")
    if snapshot not in ("auto", "off"):
        raise ConfigError(f"'apt.snapshot' is '{snapshot}'", where=where, fix='write snapshot = "auto" or "off"')
    urls = raw.get("snapshot_url", {})
    if not isinstance(urls, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in urls.items()):
        raise ConfigError("'apt.snapshot_url' must map distributions to URL templates", where=where,
                          fix='write e.g. snapshot_url = { debian = "https://mirror.internal/{archive}/{timestamp}/" }')
    for name, url in urls.items():
        if url == "off":
            continue
        if "{timestamp}" not in url or not url.startswith(("http://", "https://")):
            raise ConfigError(f"apt.snapshot_url.{name} must be an http(s) URL with {{timestamp}} in it",
                              where=where, fix="e.g. https://snapshot.debian.org/archive/{archive}/{timestamp}/")
        try:
            url.format(archive="a", timestamp="t")
        except (KeyError, IndexError, ValueError):
            raise ConfigError(f"apt.snapshot_url.{name} may only use {{archive}} and {{timestamp}}",
                              where=where) from None
    return AptSettings(enabled=enabled, snapshot=snapshot, snapshot_url=dict(urls))
