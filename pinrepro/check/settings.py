"""``[tool.pinrepro.check]`` (or ``[check]`` in pinrepro.toml): which rules, how severe, and the fleet's facts.

```toml
[tool.pinrepro.check]
ignore = ["python-buffered"]              # rule ids never reported
severity = { pip-cache = "error" }        # per rule: "error" or "warning"
min_driver = "535.104.05"                 # the fleet's NVIDIA driver: images/wheels needing more are errors
model_size_limit = "100MB"                # a COPY of a context directory larger than this is reported
deploy_files = ["compose*.y*ml", "k8s/**/*.y*ml"]   # where rule 10 looks (default: [tool.pinrepro] deploy_files)
```
Unknown keys and unknown rule ids are errors that name them, like everywhere in pinrepro's configuration.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from pinrepro.check.rules import known_ids
from pinrepro.config import Config
from pinrepro.errors import ConfigError
from pinrepro.findings import Level
from pinrepro.inventory.cuda import parse_version
from pinrepro.schema import UNKNOWN_KEY_FIX, check_keys, locate

DEFAULT_MODEL_SIZE_LIMIT = 100 * 1000 * 1000
_KEYS = {"ignore", "severity", "min_driver", "model_size_limit", "deploy_files"}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
          "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


@dataclass(frozen=True)
class CheckSettings:
    ignore: frozenset[str] = frozenset()
    severity: Mapping[str, Level] = field(default_factory=dict)
    min_driver: str | None = None
    model_size_limit: int = DEFAULT_MODEL_SIZE_LIMIT
    deploy_files: tuple[str, ...] | None = None  # None: the project's `deploy_files` ([tool.pinrepro])


def load(config: Config) -> CheckSettings:
    raw = config.check
    where = _where(config)
    if not isinstance(raw, Mapping):
        raise ConfigError("'check' must be a table", where=config.source,
                          fix="write it as [tool.pinrepro.check] / [check]")
    file, section = locate(config.source, "check")
    check_keys(raw, _KEYS, section, lambda message: ConfigError(message, where=file, fix=UNKNOWN_KEY_FIX))
    return CheckSettings(
        ignore=frozenset(_ids(raw.get("ignore", []), "ignore", where)),
        severity=_severity(raw.get("severity", {}), where),
        min_driver=_driver(raw.get("min_driver"), where),
        model_size_limit=_size(raw.get("model_size_limit"), where),
        deploy_files=_globs(raw.get("deploy_files"), where),
    )


def _where(config: Config) -> str:
    if config.source.startswith("pyproject"):
        return "pyproject.toml [tool.pinrepro.check]"
    return f"{config.source} [check]"


def _ids(value: Any, key: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"'{key}' must be a list of rule ids", where=where, fix='write e.g. ignore = ["pip-cache"]')
    _check_known(value, key, where)
    return list(value)


def _check_known(ids: list[str], key: str, where: str) -> None:
    known = known_ids()
    for rule_id in ids:
        if rule_id not in known:
            raise ConfigError(f"'{key}' names unknown rule '{rule_id}'", where=where,
                              fix="use an id from the README's rules table or `pinrepro check --format json`")


def _severity(value: Any, where: str) -> dict[str, Level]:
    if not isinstance(value, Mapping):
        raise ConfigError("'severity' must map rule ids to \"error\" or \"warning\"", where=where,
                          fix='write e.g. severity = { pip-cache = "error" }')
    _check_known(list(value), "severity", where)
    for rule_id, level in value.items():
        if level not in ("error", "warning"):
            raise ConfigError(f"severity of '{rule_id}' must be \"error\" or \"warning\", not {level!r}", where=where,
                              fix="use `ignore` to turn a rule off")
    return {str(k): cast(Level, v) for k, v in value.items()}


def _driver(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or parse_version(value) is None:
        raise ConfigError(f"'min_driver' must be a driver version like \"535.104.05\", not {value!r}", where=where)
    return value


def _size(value: Any, where: str) -> int:
    if value is None:
        return DEFAULT_MODEL_SIZE_LIMIT
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ConfigError(f"'model_size_limit' must be a size like \"100MB\" or a number of bytes, not {value!r}",
                          where=where)
    unit = (match.group(2) or "").lower().rstrip("b")
    return int(float(match.group(1)) * _UNITS[unit])


def _globs(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError("'deploy_files' must be a list of globs", where=where,
                          fix='write e.g. deploy_files = ["compose.yaml", "k8s/**/*.yaml"]')
    return tuple(value)
