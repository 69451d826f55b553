"""The one reader (and writer) of requirement files and locks: pins, includes, editable lines, hashes, markers.

Every part of pinrepro that reads requirement text reads it here, by pip's rules for requirement files
(https://pip.pypa.io/en/stable/reference/requirements-file-format/): a backslash at the end of a line continues
it, ``#`` at the start of a line or after whitespace starts a comment, a line starting with ``-`` is an option
(``-r``, ``-c``, ``--index-url`` ...), and every other line is a requirement (PEP 508, read by ``packaging``).
An editable line (``-e`` / ``--editable``) is an install, not a pin: pip installs it from a path or VCS URL at
whatever version that source has, so it never counts as pinning its package.

``normalize_output`` writes a resolver's output in the one shape pinrepro commits. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "COMPILE_COMMAND", "INCLUDE_OPTIONS", "INDEX_OPTIONS", "LockEntry", "LockOption", "header", "lock_options",
    "normalize_output", "parse_lock", "pins", "pins_only", "without_options",
]

# The command a lock's header says to run again (pip-tools' --custom-compile-command, CUSTOM_COMPILE_COMMAND).
COMPILE_COMMAND = "pinrepro lock"
INCLUDE_OPTIONS = frozenset({"-r", "--requirement", "-c", "--constraint"})
INDEX_OPTIONS = frozenset({"-i", "--index-url", "--extra-index-url", "-f", "--find-links"})
_EDITABLE = frozenset({"-e", "--editable"})
_UNSAFE_COMMENT = "# The following packages are considered to be unsafe in a requirements file:"
# An option and its value: "--index-url=URL", "--index-url URL", "-r file", "-rfile" (optparse's short form).
_OPTION = re.compile(r"^(--[A-Za-z][A-Za-z0-9-]*|-[A-Za-z])(?:\s*=\s*|\s+)?(.*)$", re.DOTALL)
_COMMENT = re.compile(r"(^|\s)#.*$")


@dataclass(frozen=True)
class LockEntry:
    """One requirement line (continuation lines joined): a pin, a URL, an editable install or anything else."""

    line: int
    text: str  # the requirement as written, without options
    name: str | None  # canonical name, None when it does not parse
    version: str | None  # the exact ``==`` version, None when not pinned that way (and for editable lines)
    hashes: tuple[str, ...]
    editable: bool = False
    written_name: str | None = None  # the name as the line spells it
    url: str | None = None  # a direct reference's URL (``name @ URL``)
    marker: str | None = None  # the environment marker, without the ``;``


@dataclass(frozen=True)
class LockOption:
    """One option line (``-r base.lock``, ``--index-url URL``): the option as written and its first word."""

    line: int
    option: str
    value: str  # "" for an option without a value (--no-index)


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, text) of each logical line: continuations joined, comments removed."""
    start = 0
    parts: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", raw)
        if not parts:
            start = number
        if line.rstrip().endswith("\\"):
            parts.append(line.rstrip()[:-1])
            continue
        parts.append(line)
        joined = " ".join(part.strip() for part in parts).strip()
        parts = []
        if joined:
            yield start, joined
    if parts:
        joined = " ".join(part.strip() for part in parts).strip()
        if joined:
            yield start, joined


def _option(line: str) -> tuple[str, str] | None:
    """(option, the rest of the line) when ``line`` is an option line."""
    match = _OPTION.match(line) if line.startswith("-") else None
    return (match.group(1), match.group(2).strip()) if match else None


def _entry(number: int, line: str, editable: bool) -> LockEntry:
    # packaging loads when a requirement is read: the resolver runner imports this module for COMPILE_COMMAND,
    # and `pinrepro lock` without layers reads no requirement (start-up time, issue #15).
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    hashes = tuple(re.findall(r"--hash[= ](\S+)", line))
    requirement = re.split(r"\s--?[a-z]", " " + line, maxsplit=1)[0].strip()
    try:
        parsed = Requirement(requirement)
    except InvalidRequirement:
        return LockEntry(number, requirement, None, None, hashes, editable)
    specs = list(parsed.specifier)
    version = None
    if not editable and parsed.url is None and len(specs) == 1 and specs[0].operator in ("==", "===") \
            and "*" not in specs[0].version:
        version = specs[0].version
    return LockEntry(number, requirement, canonicalize_name(parsed.name), version, hashes, editable,
                     written_name=parsed.name, url=parsed.url,
                     marker=str(parsed.marker) if parsed.marker is not None else None)


def _read(text: str) -> Iterator[LockEntry | LockOption]:
    for number, line in _logical_lines(text):
        option = _option(line)
        if option is None and line.startswith("-"):
            yield LockOption(number, line.split()[0], "")  # not an option pip knows; never a requirement
        elif option is None:
            yield _entry(number, line, editable=False)
        elif option[0] in _EDITABLE:
            yield _entry(number, option[1], editable=True)
        else:
            words = option[1].split(maxsplit=1)
            yield LockOption(number, option[0], words[0] if words else "")


def parse_lock(text: str) -> list[LockEntry]:
    """The requirement lines of a requirement file or pip-tools style lock (editable ones included)."""
    return [item for item in _read(text) if isinstance(item, LockEntry)]


def lock_options(text: str) -> list[LockOption]:
    """The option lines (-r / -c includes, index options, ...) of a requirement file, in order."""
    return [item for item in _read(text) if isinstance(item, LockOption)]


def pins(text: str) -> dict[str, tuple[str, int]]:
    """Canonical name -> (exact version, line) of every ``==`` pin; editable and URL lines pin nothing."""
    return {e.name: (e.version, e.line) for e in parse_lock(text) if e.name and e.version}


def pins_only(lock: bytes) -> bytes:
    """``name==version`` lines of a lock, without hashes or annotations."""
    entries = parse_lock(lock.decode("utf-8", "replace"))
    return "".join(f"{e.name}=={e.version}\n" for e in entries if e.name and e.version).encode("utf-8")


def _is_index_line(line: str) -> bool:
    option = _option(line)
    return option is not None and option[0] in INDEX_OPTIONS


def without_options(lock: bytes) -> bytes:
    """A lock without its index option lines (--index-url ...): as a constraint or seed, only its pins matter."""
    text = lock.decode("utf-8", "replace")
    return "".join(line for line in text.splitlines(keepends=True) if not _is_index_line(line)).encode("utf-8")


def header(python: str, platform: str) -> str:
    return (
        "#\n"
        f"# This file is autogenerated by {COMPILE_COMMAND} for Python {python} on {platform}\n"
        "# by the following command:\n"
        "#\n"
        f"#    {COMPILE_COMMAND}\n"
        "#\n"
    )


def _body_start(lines: list[str]) -> int:
    """The first line after the resolver's header (ours, pip-compile's or uv's; any leading comment otherwise)."""
    for index, line in enumerate(lines[:12]):
        if line.strip() == f"#    {COMPILE_COMMAND}":
            after = index + 1
            return after + 1 if after < len(lines) and lines[after].strip() == "#" else after
    start = 0
    while start < len(lines) and lines[start].startswith("#"):
        start += 1
    return start


def _sort_key(block: list[str]) -> tuple[bool, str]:
    """Editable lines first, then by canonical name (uv's order, and pip-tools' apart from its unsafe section)."""
    from packaging.utils import canonicalize_name

    first = block[0]
    option = _option(first)
    editable = option is not None and option[0] in _EDITABLE
    name = re.split(r"[\s=<>!~;\[@\\]", option[1] if editable and option else first, maxsplit=1)[0]
    return (not editable, canonicalize_name(name) if name else first)


def normalize_output(text: str, python: str, platform: str, *, index_lines: list[str] | None = None) -> str:
    """pip-compile's and uv's output in one shape: the same header, entries sorted by name.

    The resolvers differ only in the header and in pip-tools' trailing "unsafe" section (setuptools, pip),
    which uv sorts in with the rest; with both in one shape, switching resolvers changes no byte that a
    changed pin would not. ``index_lines`` (the configured index, pinrepro.pyindex) come right after the header;
    index options the resolver printed itself are dropped.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    blocks: list[list[str]] = []
    loose: list[str] = []  # option lines (e.g. --only-binary) stay first, in order
    for line in lines[_body_start(lines):]:
        if not line.strip() or line.strip() == _UNSAFE_COMMENT:
            continue
        option = _option(line)
        if line[0].isspace() or line.startswith("#"):
            (blocks[-1] if blocks else loose).append(line)
        elif line.startswith("-") and (option is None or option[0] not in _EDITABLE):
            if index_lines is None or option is None or option[0] not in INDEX_OPTIONS:
                loose.append(line)
        else:
            blocks.append([line])
    body = (index_lines or []) + loose + [line for block in sorted(blocks, key=_sort_key) for line in block]
    return header(python, platform) + "".join(f"{line}\n" for line in body)
