"""What is inside one platform of an image: the value the lock stores and the manifest shows.

``to_toml()`` is the platform's table in pinrepro.lock (next to ``digest``): TOML has no null, so unknown
values are left out, except ``cuda.min_driver = "unknown"`` when the CUDA version is known but NVIDIA's table
does not list it (a reader must see that pinrepro does not know, not that nothing is needed). One apt
package per line (``[...apt]`` maps name -> version; ``name:arch`` only for a foreign architecture) and one
NVIDIA_REQUIRE_CUDA clause per line keep lock diffs readable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pinrepro.errors import LockfileError
from pinrepro.inventory.cuda import CudaRequirement, parse_require
from pinrepro.inventory.osrelease import OsInfo
from pinrepro.schema import check_keys

if TYPE_CHECKING:
    from pinrepro.lockfile import PlatformLock

UNKNOWN = "unknown"
# The keys ``to_toml`` writes (``digest`` is the lock's, next to them); any other is a corrupted lock.
_KEYS = ("digest", "os", "python", "cuda", "apt", "created", "labels", "notes")
_OS_KEYS = ("id", "version_id", "codename", "pretty_name")
_CUDA_KEYS = ("version", "cudnn", "nccl", "cublas", "min_driver", "min_driver_compat", "require", "require_implied",
              "require_disabled")


@dataclass(frozen=True)
class CudaInfo:
    version: str | None
    cudnn: str | None = None
    nccl: str | None = None
    cublas: str | None = None
    # The toolkit's own minimum Linux driver; None = not in NVIDIA's table ("unknown").
    min_driver: str | None = None
    # The minor-version-compatibility floor of the CUDA major (12.x: 525); None = unknown major.
    min_driver_compat: str | None = None
    # NVIDIA_REQUIRE_CUDA clauses (ORed); implied = derived from CUDA_VERSION alone.
    require: tuple[str, ...] = ()
    require_implied: bool = False
    require_disabled: bool = False

    @property
    def requirement(self) -> CudaRequirement:
        parsed = parse_require(" ".join(self.require), disabled=self.require_disabled)
        return CudaRequirement(parsed.text, parsed.clauses, self.require_implied, parsed.disabled, parsed.unparsed)

    def to_toml(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for key in ("version", "cudnn", "nccl", "cublas", "min_driver_compat"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.version is not None:
            data["min_driver"] = self.min_driver or UNKNOWN
        if self.require:
            data["require"] = list(self.require)
        if self.require_implied:
            data["require_implied"] = True
        if self.require_disabled:
            data["require_disabled"] = True
        return data

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "cudnn": self.cudnn,
            "nccl": self.nccl,
            "cublas": self.cublas,
            "min_driver": (self.min_driver or UNKNOWN) if self.version else None,
            "min_driver_compat": self.min_driver_compat,
            "require": list(self.require),
            "require_implied": self.require_implied,
            "require_disabled": self.require_disabled,
        }

    @classmethod
    def from_toml(cls, data: Mapping[str, Any], where: str) -> CudaInfo:
        check_keys(data, _CUDA_KEYS, "the platform's cuda table", lambda message: _corrupted(where, message))
        min_driver = _opt_str(data, "min_driver", where)
        require = data.get("require", [])
        if not isinstance(require, list) or not all(isinstance(c, str) for c in require):
            raise _bad(where, "cuda.require", "a list of strings")
        return cls(
            version=_opt_str(data, "version", where),
            cudnn=_opt_str(data, "cudnn", where),
            nccl=_opt_str(data, "nccl", where),
            cublas=_opt_str(data, "cublas", where),
            min_driver=None if min_driver == UNKNOWN else min_driver,
            min_driver_compat=_opt_str(data, "min_driver_compat", where),
            require=tuple(require),
            require_implied=_bool(data, "require_implied", where),
            require_disabled=_bool(data, "require_disabled", where),
        )


@dataclass(frozen=True)
class PlatformContents:
    """OS, Python, CUDA stack and apt packages of one platform of an image."""

    os: OsInfo | None = None
    python: str | None = None
    cuda: CudaInfo | None = None
    apt: Mapping[str, str] = field(default_factory=dict)
    created: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    # Honest caveats: unreadable dpkg stanzas, no os-release found, ...
    notes: tuple[str, ...] = ()

    def to_toml(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.os is not None:
            data["os"] = {k: v for k, v in _os_fields(self.os).items() if v is not None}
        if self.python is not None:
            data["python"] = self.python
        if self.cuda is not None:
            data["cuda"] = self.cuda.to_toml()
        data["apt"] = dict(sorted(self.apt.items()))
        if self.created is not None:
            data["created"] = self.created
        if self.labels:
            data["labels"] = dict(sorted(self.labels.items()))
        if self.notes:
            data["notes"] = list(self.notes)
        return data

    def to_json(self) -> dict[str, Any]:
        """The platform's part of ``pinrepro manifest --format json`` (without its digest)."""
        return {
            "os": _os_fields(self.os) if self.os is not None else None,
            "python": self.python,
            "cuda": self.cuda.to_json() if self.cuda is not None else None,
            "apt": dict(sorted(self.apt.items())),
            "created": self.created,
            "labels": dict(sorted(self.labels.items())),
            "notes": list(self.notes),
        }

    @classmethod
    def from_toml(cls, data: Mapping[str, Any], *, where: str = "pinrepro.lock") -> PlatformContents:
        """Read back ``to_toml()``'s output (``digest``, the lock's own key next to it, is ignored)."""
        check_keys(data, _KEYS, "the platform's table", lambda message: _corrupted(where, message))
        os_data = data.get("os")
        os_info = None
        if os_data is not None:
            if not isinstance(os_data, Mapping):
                raise _bad(where, "os", "a table")
            check_keys(os_data, _OS_KEYS, "the platform's os table", lambda message: _corrupted(where, message))
            os_info = OsInfo(
                id=_opt_str(os_data, "id", where), version_id=_opt_str(os_data, "version_id", where),
                codename=_opt_str(os_data, "codename", where), pretty_name=_opt_str(os_data, "pretty_name", where),
            )
        cuda_data = data.get("cuda")
        if cuda_data is not None and not isinstance(cuda_data, Mapping):
            raise _bad(where, "cuda", "a table")
        return cls(
            os=os_info,
            python=_opt_str(data, "python", where),
            cuda=CudaInfo.from_toml(cuda_data, where) if cuda_data is not None else None,
            apt=_str_table(data, "apt", where),
            created=_opt_str(data, "created", where),
            labels=_str_table(data, "labels", where),
            notes=tuple(_str_list(data, "notes", where)),
        )


def contents_of(platform: PlatformLock, *, where: str = "pinrepro.lock") -> PlatformContents | None:
    """The platform's recorded contents; None when the platform is absent or the lock has no contents for it."""
    if platform.absent or not platform.contents:
        return None
    return PlatformContents.from_toml(platform.contents, where=where)


def _os_fields(info: OsInfo) -> dict[str, str | None]:
    return {"id": info.id, "version_id": info.version_id, "codename": info.codename, "pretty_name": info.pretty_name}


def _bad(where: str, key: str, expected: str) -> LockfileError:
    return _corrupted(where, f"platform contents '{key}' must be {expected}")


def _corrupted(where: str, message: str) -> LockfileError:
    return LockfileError(
        f"corrupted lock file: {message}", where=where,
        fix="restore it from version control, or run `pinrepro lock --upgrade` to record the contents anew",
    )


def _opt_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(where, key, "a string")
    return value


def _bool(data: Mapping[str, Any], key: str, where: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise _bad(where, key, "true or false")
    return value


def _str_table(data: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    value = data.get(key, {})
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise _bad(where, key, "a table of strings")
    return {str(k): v for k, v in value.items()}


def _str_list(data: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(where, key, "a list of strings")
    return list(value)
