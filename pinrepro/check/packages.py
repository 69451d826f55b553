"""What a shell command installs: pip (and uv pip) installs, apt/yum/apk installs, conda installs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pinrepro.dockerfile.commands import Command
from pinrepro.pipwords import VALUE_OPTIONS

_PIP = re.compile(r"^pip(3(\.\d+)?)?$")
_PYTHON = re.compile(r"^python[0-9.]*(\$\{?\w+\}?)?$")
_SYSTEM = {"apt-get": "install", "apt": "install", "aptitude": "install", "yum": "install", "dnf": "install",
           "microdnf": "install", "apk": "add", "zypper": "install"}
_CONDA = frozenset({"conda", "mamba", "micromamba"})
_REMOVE = frozenset({"remove", "purge", "autoremove", "del", "erase"})


@dataclass(frozen=True)
class PipInstall:
    tool: str  # "pip" or "uv"
    options: tuple[str, ...]  # every option word as written ("--no-cache-dir", "--no-binary=:all:")
    packages: tuple[str, ...]  # requirement words (names, name==version, URLs, paths)
    requirement_files: tuple[str, ...]

    def has(self, *options: str) -> bool:
        return any(word == option or word.startswith(option + "=") for word in self.options for option in options)


def pip_install(command: Command) -> PipInstall | None:
    """The pip install that ``command`` runs (``pip``, ``python -m pip``, ``uv pip``), or None."""
    words = list(command.words)
    if not words:
        return None
    head = command.name
    if _PIP.match(head):
        tool, rest = "pip", words[1:]
    elif _PYTHON.match(head) and words[1:3] == ["-m", "pip"]:
        tool, rest = "pip", words[3:]
    elif head == "uv" and words[1:2] == ["pip"]:
        tool, rest = "uv", words[2:]
    elif _PYTHON.match(head) and words[1:4] == ["-m", "uv", "pip"]:
        tool, rest = "uv", words[4:]
    else:
        return None
    options: list[str] = []
    while rest and rest[0].startswith("-"):  # global options before the subcommand
        takes_value = rest[0] in VALUE_OPTIONS
        options.append(rest.pop(0))
        if takes_value and rest:
            rest.pop(0)
    if rest[:1] != ["install"]:
        return None
    packages: list[str] = []
    files: list[str] = []
    position = 1
    while position < len(rest):
        word = rest[position]
        position += 1
        if word.startswith("-") and word != "-":
            options.append(word)
            name, has_value, value = word.partition("=")
            if name in ("-r", "--requirement"):
                if has_value:
                    files.append(value)
                elif position < len(rest):
                    files.append(rest[position])
                    position += 1
            elif name in VALUE_OPTIONS and not has_value and position < len(rest):
                position += 1
            elif re.match(r"^-r\S", word):
                files.append(word[2:])
            continue
        packages.append(word)
    return PipInstall(tool, tuple(options), tuple(packages), tuple(files))


def system_install(command: Command) -> tuple[str, ...] | None:
    """Package names an apt/yum/dnf/apk/conda install command installs (versions stripped), or None."""
    words = command.words
    head = command.name
    if head in _SYSTEM:
        verb = _SYSTEM[head]
    elif head in _CONDA:
        verb = "install"
    else:
        return None
    arguments = [w for w in words[1:] if not w.startswith("-")]
    # `apt-get -o Opt=value install ...`: an option's value may come before the verb.
    if verb not in arguments or any("=" not in w and "::" not in w for w in arguments[:arguments.index(verb)]):
        return None
    return tuple(_bare_name(word) for word in arguments[arguments.index(verb) + 1:] if "::" not in word)


def system_remove(command: Command) -> tuple[str, ...]:
    """Package names that ``command`` removes or purges (apt-get purge gcc, apk del ...)."""
    if command.name not in _SYSTEM and command.name not in _CONDA:
        return ()
    arguments = [w for w in command.words[1:] if not w.startswith("-")]
    if not arguments or arguments[0] not in _REMOVE:
        return ()
    return tuple(_bare_name(word) for word in arguments[1:])


def _bare_name(word: str) -> str:
    """``gcc=4:11.2.0-1ubuntu1`` -> ``gcc``; ``cuda-nvcc-12-4`` stays; ``python=3.11`` (conda) -> ``python``."""
    return re.split(r"[=<>]", word, maxsplit=1)[0].lower()


def requirement_name(word: str) -> str | None:
    """The normalised project name of a requirement word (``Torch[cuda]==2.3`` -> ``torch``), or None."""
    match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)", word)
    if match is None or "/" in word or "://" in word or word.startswith((".", "$")):
        return None
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()
