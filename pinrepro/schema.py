"""One way to read a TOML table: the keys it may have, and each value read as the type it must be.

pinrepro.toml / ``[tool.pinrepro]`` and its tables (refresh, apt, policy, check, verify, layers), pinrepro.lock
and the platform contents in it all check their keys here, so an unknown key reads the same everywhere::

    pinrepro.toml: unknown key 'platfroms' in the top-level table; known: add_max_bytes, ... - remove it, or ...

pre-commit declares its configuration schemas the same way with cfgv (https://github.com/asottile/cfgv); its
errors are nested and span lines, where pinrepro's are one line naming file, key and fix, and the few types
read here need no library.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from pinrepro.errors import ConfigError, PinreproError

UNKNOWN_KEY_FIX = "remove it, or correct its spelling"

# A type error's maker: (key, what the value must be, e.g. "a list of strings") -> the error to raise.
Invalid = Callable[[str, str], Exception]


def locate(source: str, table: str | None = None) -> tuple[str, str]:
    """(file, section) of ``table`` in a configuration read from ``source``: ``pinrepro.toml`` (its tables are
    top-level, ``[refresh]``) or ``pyproject.toml [tool.pinrepro]`` (``[tool.pinrepro.refresh]``). Without a
    ``table``, the section is the configuration's own: the top-level table, or ``[tool.pinrepro]``."""
    if source.startswith("pyproject.toml"):
        return "pyproject.toml", f"[tool.pinrepro.{table}]" if table else "[tool.pinrepro]"
    return source, f"[{table}]" if table else "the top-level table"


def unknown_key(data: Mapping[str, Any], known: Collection[str], section: str) -> str | None:
    """The message for the first unknown key of ``data`` (sorted), or None when every key is known.

    ``section`` names the table as the user wrote it: ``[refresh]``, ``[[layers]] #2``, ``the top-level table``.
    """
    unknown = sorted(set(data) - set(known))
    if not unknown:
        return None
    return f"unknown key '{unknown[0]}' in {section}; known: {', '.join(sorted(known))}"


def check_keys(data: Mapping[str, Any], known: Collection[str], section: str,
               error: Callable[[str], Exception]) -> None:
    """Raise ``error(message)`` when ``data`` has a key outside ``known``."""
    message = unknown_key(data, known, section)
    if message is not None:
        raise error(message)


class Table:
    """A table of a configuration file being read: its keys are checked against ``known`` at once.

    ``file`` is where an unknown key is reported (the message names the ``section``); ``where`` prefixes the
    type errors (default: ``file section``). ``invalid`` builds a type error; by default a :class:`ConfigError`
    ``'<key>' must be <expected>``.
    """

    def __init__(self, data: Any, *, known: Collection[str], file: str | None, section: str,
                 where: str | None = None, invalid: Invalid | None = None,
                 error: type[PinreproError] = ConfigError, fix: str | None = None) -> None:
        self.where = where if where is not None else " ".join(part for part in (file, section) if part)
        self._invalid = invalid or (lambda key, expected: error(f"'{key}' must be {expected}", where=self.where))
        if not isinstance(data, Mapping):
            raise error(f"{section} must be a table", where=file, fix=fix)
        self.data: Mapping[str, Any] = data
        check_keys(data, known, section, lambda message: error(message, where=file, fix=UNKNOWN_KEY_FIX))

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def string(self, key: str, *, empty: bool = False, strip: bool = False) -> str | None:
        """A string, or None when the key is absent; an empty one (or blank, with ``strip``) only with ``empty``."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not (empty or (value.strip() if strip else value)):
            raise self._invalid(key, "a string" if empty else "a non-empty string")
        return value.strip() if strip else value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self._invalid(key, "true or false")
        return value

    def positive_int(self, key: str, default: int) -> int:
        value = self.data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise self._invalid(key, "a positive integer")
        return value

    def strings(self, key: str, default: tuple[str, ...] = (), *, one: bool = True, empty: bool = False,
                strip: bool = False) -> tuple[str, ...]:
        """A list of strings (``default`` when absent); a single string counts as a list of one with ``one``."""
        value = self.data.get(key)
        if value is None:
            return default
        if one and isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(
                isinstance(v, str) and (empty or (v.strip() if strip else v)) for v in value):
            raise self._invalid(key, "a list of strings")
        return tuple(v.strip() if strip else v for v in value)

    def string_table(self, key: str) -> dict[str, str]:
        """A table of strings ({} when absent)."""
        value = self.data.get(key, {})
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            raise self._invalid(key, "a table of strings")
        return {str(k): v for k, v in value.items()}

    def table(self, key: str) -> Mapping[str, Any] | None:
        """A sub-table left for its owner to read, or None when absent."""
        value = self.data.get(key)
        if value is not None and not isinstance(value, Mapping):
            raise self._invalid(key, "a table")
        return value
