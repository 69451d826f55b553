"""Which ``RUN`` commands install Python packages around the locks, and why each one does.

verify reports them as errors, with or without requirement layers: a build that runs ``pip install requests``
pulls whatever the index serves that day, whatever pinrepro.lock says. :func:`check_dockerfile_installs` takes
the RUN instructions and their simple commands from the one Dockerfile reader (pinrepro.dockerfile: BuildKit's
continuations, parser directives and heredocs; its shell lexer for the words), and judges one command (its
argv) at a time:

- pip / ``python -m pip`` / ``uv pip`` ``install`` of names from an index (``install-unlocked``), of a
  requirements file that is not a lock pinrepro writes (``install-not-a-lock``, or ``install-input`` for a
  layer's ``.in``), of a lock without ``--require-hashes`` (``install-no-hashes``) or, when the locks are
  layered, without ``--no-deps`` (``install-with-deps``);
- a layer locked per platform (pinrepro.pyplatforms) installed through its single lock name rather than its
  ``${TARGETARCH}`` lock (``install-one-platform``);
- ``uv sync`` / ``uv add`` without ``--locked`` or ``--frozen`` (``uv-unlocked``): they may resolve anew;
- ``conda`` / ``mamba`` / ``micromamba install`` (``conda-install``) and ``pipx install`` (``pipx-install``),
  which no pinrepro lock covers.

Local paths, URLs and wheel files are not names from an index and are left alone; so are words holding a
shell variable, whose value a build argument decides.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from packaging.requirements import InvalidRequirement, Requirement

from pinrepro.config import Config, Layer
from pinrepro.dockerfile import instructions
from pinrepro.dockerfile.commands import commands
from pinrepro.errors import DockerfileError
from pinrepro.findings import Finding
from pinrepro.pipwords import VALUE_OPTIONS
from pinrepro.pyplatforms import targetarch_pattern, targets

_PIP = re.compile(r"^pip(3(\.\d+)?)?$")
_PYTHON = re.compile(r"^python(3(\.\d+)?)?$")
_CONDA = frozenset({"conda", "mamba", "micromamba"})
_INSTALL_LOCK = "pip install --require-hashes --no-deps -r {lock}"
_TARGETARCH = re.compile(r"\$\{TARGETARCH\}|\$TARGETARCH\b")


def check_dockerfile_installs(text: str, path: str, config: Config) -> list[Finding]:
    """Errors for RUN commands that install Python packages around the locks, each on its command's line.

    Every simple command of every RUN: its shell form, an exec form (``sh -c`` scripts included), the
    heredoc bodies a shell runs, and the commands inside ``$(...)``.
    """
    try:
        found, _ = instructions(text, path)
    except DockerfileError:
        return []  # a file the reader refuses is reported as such where it is parsed (verify's FROM reading)
    findings: list[Finding] = []
    for instruction in found:
        if instruction.command != "run":
            continue
        # $(pip install x) installs too: the commands inside substitutions are judged as well.
        for command in commands(instruction, nested=True):
            findings.extend(check_command(list(command.words), command.line, path, config))
    return findings


def check_command(words: list[str], line: int, path: str, config: Config) -> Iterator[Finding]:
    """The findings for one simple shell command of a RUN instruction (empty when it installs nothing).

    ``words`` start at the program: the shell reader's ``Command.words``, which has already dropped
    ``VAR=value`` assignments and wrappers with their options (``sudo -E``, ``/usr/bin/env -i``).
    """
    if not words:
        return
    head = PurePosixPath(words[0]).name
    rest = words[1:]
    if _PYTHON.match(head) and rest[:1] == ["-m"] and len(rest) > 1:
        head, rest = rest[1], rest[2:]
    tool = head
    if _PIP.match(head):
        tool = "pip"
    elif head == "uv" and _subcommand(rest)[0] == "pip":
        tool, rest = "uv pip", _subcommand(rest)[1]
    command, args = _subcommand(rest)
    if tool in ("pip", "uv pip") and command == "install":
        yield from _check_pip_install(tool, args, line, path, config)
    elif tool == "uv" and command in ("sync", "add"):
        if not {"--locked", "--frozen"} & set(args):
            yield Finding(path, line, "error", "uv-unlocked",
                          f"`uv {command}` without --locked or --frozen may resolve anew and install versions "
                          "uv.lock does not have - add --locked (fail if uv.lock is stale) or --frozen")
    elif tool in _CONDA and command == "install":
        yield Finding(path, line, "error", "conda-install",
                      f"`{tool} install` resolves packages when the image is built; no lock covers them - install "
                      "Python packages from a requirement layer's lock, or silence this rule with a reason")
    elif tool == "pipx" and command == "install":
        yield Finding(path, line, "error", "pipx-install",
                      "`pipx install` resolves the tool and its dependencies when the image is built; no lock "
                      "covers them - install it from a requirement layer's lock, or silence this rule with a reason")


def _subcommand(words: list[str]) -> tuple[str | None, list[str]]:
    """The first word that is not an option (skipping option values), and the words after it."""
    position = 0
    while position < len(words) and words[position].startswith("-"):
        word = words[position]
        position += 2 if word in VALUE_OPTIONS else 1
    if position >= len(words):
        return None, []
    return words[position], words[position + 1:]


def _check_pip_install(tool: str, args: list[str], line: int, path: str, config: Config) -> Iterator[Finding]:
    by_lock = {PurePosixPath(layer.lock).name: layer for layer in config.layers}
    per_platform: dict[str, tuple[Layer, str]] = {}  # a per-architecture layer's single lock -> its ${TARGETARCH} form
    for item in config.layers:
        pattern = targetarch_pattern(item.lock, config.platforms)
        if pattern is not None:
            per_platform[PurePosixPath(item.lock).name] = (item, pattern)
            by_lock.pop(PurePosixPath(item.lock).name, None)
            by_lock[PurePosixPath(pattern).name] = item
            by_lock.update({PurePosixPath(t.lock).name: item for t in targets(item.lock, config.platforms)})
    by_input = {PurePosixPath(layer.requirements).name: layer for layer in config.layers}
    files, names, flags = _parse_install(args)
    where = "a layer's requirements" if config.layers else "a requirement layer ([[tool.pinrepro.layers]])"
    if names:
        yield Finding(path, line, "error", "install-unlocked",
                      f"installs {', '.join(names)} from the index, outside the locks (versions and hashes "
                      f"decided when the image is built) - add {'it' if len(names) == 1 else 'them'} to {where} "
                      "and install its lock")
    for value in files:
        name = _TARGETARCH.sub("${TARGETARCH}", PurePosixPath(value).name)
        if name in per_platform:
            single, pattern = per_platform[name]
            yield Finding(path, line, "error", "install-one-platform",
                          f"installs {value}, but layer '{single.name}' is locked per platform "
                          f"({', '.join(config.platforms)}) - after `ARG TARGETARCH`, use "
                          f"`{_INSTALL_LOCK.format(lock=pattern)}`")
            continue
        layer = by_lock.get(name)
        if layer is None:
            yield _not_a_lock(value, line, path, by_input.get(name), config.platforms)
            continue
        if layer.hashes and "--require-hashes" not in flags:
            yield Finding(path, line, "error", "install-no-hashes",
                          f"installs the lock {value} without --require-hashes, so a requirement without a hash "
                          f"would be installed unchecked - use `{tool} {_INSTALL_LOCK.format(lock=value)[4:]}`")
        if len(config.layers) > 1 and "--no-deps" not in flags:
            yield Finding(path, line, "error", "install-with-deps",
                          f"installs the layered lock {value} without --no-deps, so a dependency another layer "
                          f"pins may be resolved again - use `{tool} {_INSTALL_LOCK.format(lock=value)[4:]}`")


def _not_a_lock(value: str, line: int, path: str, layer: Layer | None, platforms: tuple[str, ...]) -> Finding:
    if layer is not None:
        lock = targetarch_pattern(layer.lock, platforms) or layer.lock  # a lock per platform: the build's own
        return Finding(path, line, "error", "install-input",
                       f"installs {value}, the input of layer '{layer.name}', instead of its lock {lock} - "
                       f"use `{_INSTALL_LOCK.format(lock=lock)}`")
    return Finding(path, line, "error", "install-not-a-lock",
                   f"installs {value}, which is not a lock pinrepro writes - add it as a requirement layer "
                   "([[tool.pinrepro.layers]]) and install its lock")


def _parse_install(args: list[str]) -> tuple[list[str], list[str], set[str]]:
    """(requirement files, package names from an index, flags) of ``pip install`` arguments."""
    files: list[str] = []
    names: list[str] = []
    flags: set[str] = set()
    position = 0
    positional_only = False
    while position < len(args):
        arg = args[position]
        position += 1
        if not positional_only and arg == "--":
            positional_only = True
            continue
        if not positional_only and arg.startswith("-"):
            option, has_inline, inline = arg.partition("=")
            value: str | None = None
            if option in ("-r", "--requirement") or re.match(r"^-r\S", arg):
                if has_inline:
                    value = inline
                elif option == arg and arg not in ("-r", "--requirement"):
                    value = arg[2:]
                elif position < len(args):
                    value = args[position]
                    position += 1
                # A build argument decides a "$" path, except the one pinrepro names its per-platform locks after.
                if value and "$" not in _TARGETARCH.sub("", value):
                    files.append(value)
            elif option in VALUE_OPTIONS and not has_inline:
                position += 1
            else:
                flags.add(option)
            continue
        if _is_index_name(arg):
            names.append(arg)
    return files, names, flags


@functools.lru_cache(maxsize=4096)
def _is_index_name(arg: str) -> bool:
    # Cached: parsing a requirement is most of the check's time, and a long RUN repeats its words.
    if "$" in arg or "://" in arg or arg.startswith((".", "/", "~")) or "/" in arg \
            or arg.endswith((".whl", ".tar.gz", ".zip")):
        return False  # a path, URL or shell variable: not a name from an index
    try:
        requirement = Requirement(arg)
    except InvalidRequirement:
        return False
    return requirement.url is None
