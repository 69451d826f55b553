"""The apt installs of a Dockerfile, stage by stage, read from its RUN scripts.

No second parser: pinrepro.dockerfile gives each RUN's shell text (continuations joined, heredoc bodies
separately, with file offsets) and splits it into words and operators; this module only knows apt's
command line (``apt-get [options] install [options] names...``).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from pinrepro.dockerfile import (
    Dockerfile,
    Instruction,
    RunScript,
    ShellToken,
    expand_word,
    instructions,
    shell_tokens,
    unquote_word,
)
from pinrepro.findings import Finding

_APT_COMMANDS = frozenset({"apt-get", "apt"})
# Options that take the next word as their value (apt-get(8)): a value is never a package name.
_VALUE_OPTIONS = frozenset({"-t", "--target-release", "--default-release", "-o", "--option", "-c",
                            "--config-file", "-a", "--host-architecture"})
_WRAPPERS = frozenset({"sudo", "env", "command", "exec", "nice", "time"})
# Shell reserved words that may start a simple command's words (``if true; then apt-get install ...; fi``):
# the command after them runs in the build like any other.
_SHELLS = frozenset({"sh", "bash", "dash"})
_APT_INSTALL = re.compile(r"\bapt(?:-get)?\b.*\binstall\b", re.DOTALL)
_RESERVED = frozenset({"if", "then", "else", "elif", "while", "until", "do", "!", "{", "(", "time"})
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*", re.DOTALL)
# Debian policy 5.6.1 package names, with an optional :arch, =version and /release.
_PACKAGE = re.compile(r"(?P<name>[a-z0-9][a-z0-9+.-]+(?::[a-z0-9-]+)?)"
                      r"(?:=(?P<version>[A-Za-z0-9.+~:-]+)|/(?P<release>[A-Za-z0-9.+_-]+))?")
_SOURCES_PATH = re.compile(r"/etc/apt/sources\.list(?:\.d/.*)?\Z")


@dataclass(frozen=True)
class AptName:
    """One package an install names, as written and as apt will read it."""

    name: str  # with ``:arch`` when written
    version: str | None  # ``name=version`` as written
    release: str | None  # ``name/release`` as written
    written: str
    # File offsets of the written word when it is plain text (no quotes, no $ARG): only then is it
    # rewritten in place; otherwise the pin lives in the lock alone.
    span: tuple[int, int] | None


@dataclass(frozen=True)
class AptInstall:
    path: str
    line: int
    stage: int
    names: tuple[AptName, ...]
    no_install_recommends: bool = False
    install_suggests: bool = False
    target_release: str | None = None


@dataclass(frozen=True)
class AptScan:
    installs: tuple[AptInstall, ...] = ()
    findings: tuple[Finding, ...] = ()
    # Stages that add an apt repository at build time: their installs cannot be resolved from the base.
    unpinnable_stages: frozenset[int] = field(default_factory=frozenset)


def find_installs(dockerfile: Dockerfile) -> AptScan:
    installs: list[AptInstall] = []
    findings: list[Finding] = []
    unpinnable: set[int] = set()
    for run in dockerfile.runs:
        for command in _commands(shell_tokens(run.script)):
            words = [token.text for token in command]
            if _adds_repository(command):
                unpinnable.add(run.stage)
                findings.append(Finding(
                    run.path, run.line, "warning", "apt-repository",
                    "this RUN adds an apt repository at build time; packages from it are not pinned "
                    "(put the repository in the base image, or pin by hand)",
                ))
                continue
            argv = _strip_prefix(words)
            if not argv:
                continue
            offset = len(command) - len(argv)
            if argv[0].rsplit("/", 1)[-1] in _SHELLS and "-c" in argv[1:-1]:
                inner = expand_word(argv[argv.index("-c", 1) + 1], run.args) or ""
                if _APT_INSTALL.search(inner):
                    findings.append(_hidden(run.path, run.line, f"`{argv[0]} -c`"))
                continue
            if argv[0].rsplit("/", 1)[-1] not in _APT_COMMANDS:
                continue
            install, problems = _read_install(run, command[offset:])
            findings.extend(problems)
            if install is not None:
                installs.append(install)
    for instruction in instructions(dockerfile.text, dockerfile.path)[0]:
        exec_form = instruction.exec_form() if instruction.command == "run" else None
        if exec_form and _APT_INSTALL.search(" ".join(exec_form)):
            findings.append(_hidden(instruction.path, instruction.line, "the exec (JSON) form"))
        if instruction.command in ("copy", "add") and instruction.stage >= 0 and _copies_sources(instruction):
            unpinnable.add(instruction.stage)
            findings.append(Finding(
                instruction.path, instruction.line, "warning", "apt-repository",
                f"this {instruction.command.upper()} adds an apt repository at build time; packages from it are "
                "not pinned (put the repository in the base image, or pin by hand)"))
    return AptScan(tuple(installs), tuple(findings), frozenset(unpinnable))


def _hidden(path: str, line: int, how: str) -> Finding:
    return Finding(path, line, "warning", "apt-hidden",
                   f"this RUN runs apt-get install through {how}, where pinrepro does not read it: its packages "
                   "are not pinned (write the apt-get command in the RUN line's shell form)")


def _copies_sources(instruction: Instruction) -> bool:
    """A COPY/ADD whose destination is apt's sources (a .list/.sources file, sources.list.d, or /etc/apt itself)."""
    words = instruction.exec_form() or [unquote_word(t.text) for t in shell_tokens(instruction.rest)
                                        if not t.operator]
    if len(words) < 2:
        return False
    destination = posixpath.normpath(words[-1])
    return destination in ("/etc/apt", "/etc/apt/sources.list", "/etc/apt/sources.list.d") or (
        destination.startswith("/etc/apt/sources.list.d/"))


def _commands(tokens: list[ShellToken]) -> list[list[ShellToken]]:
    """Simple commands: words between control operators, redirections kept as ``>`` + target words."""
    commands: list[list[ShellToken]] = [[]]
    for token in tokens:
        if token.operator and token.text not in (">", ">>", "<"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [command for command in commands if command]


def _strip_prefix(words: list[str]) -> list[str]:
    """Drop ``VAR=value`` assignments and wrappers (``sudo``, ``env``) in front of the command."""
    index = 0
    while index < len(words) and (_ASSIGNMENT.fullmatch(words[index]) or words[index] in _WRAPPERS
                                  or words[index] in _RESERVED
                                  or (index and words[index - 1] == "env" and words[index].startswith("-"))):
        index += 1
    return words[index:]


def _adds_repository(command: list[ShellToken]) -> bool:
    words = [token.text.strip("'\"") for token in command]
    if words and words[0].rsplit("/", 1)[-1] in ("add-apt-repository", "apt-add-repository"):
        return True
    for index, word in enumerate(words):
        target = words[index + 1] if index + 1 < len(words) else ""
        if word in (">", ">>") and _SOURCES_PATH.match(target):
            return True
        if word.endswith(".sources") and words[0] in ("tee", "cp", "mv", "install", "ln") and "/etc/apt/" in word:
            return True
        if words[0] == "tee" and index and _SOURCES_PATH.match(word):
            return True
    return False


def _read_install(run: RunScript, command: list[ShellToken]) -> tuple[AptInstall | None, list[Finding]]:
    findings: list[Finding] = []
    subcommand: str | None = None
    no_recommends = suggests = False
    target: str | None = None
    names: list[AptName] = []
    index = 1
    while index < len(command):
        token = command[index]
        word = expand_word(token.text, run.args) or token.text
        index += 1
        if word in (">", ">>", "<"):
            index += 1  # the redirection's target
            continue
        if word.startswith("-") and len(word) > 1:
            option, _, value = word.partition("=")
            if option in _VALUE_OPTIONS and not value and index < len(command):
                value = expand_word(command[index].text, run.args) or command[index].text
                index += 1
            if option in ("-t", "--target-release", "--default-release"):
                target = value
            elif option == "--no-install-recommends":
                no_recommends = True
            elif option == "--install-suggests":
                suggests = True
            elif option in ("-o", "--option"):
                key, _, setting = value.partition("=")
                if key.lower() == "apt::install-recommends":
                    no_recommends = setting.lower() in ("0", "false", "no", "off")
                elif key.lower() == "apt::install-suggests":
                    suggests = setting.lower() in ("1", "true", "yes", "on")
            continue
        if subcommand is None:
            subcommand = word
            if subcommand != "install":
                return None, []
            continue
        findings.extend(_add_names(run, token, names))
    if subcommand != "install":
        return None, []
    return AptInstall(run.path, run.line, run.stage, tuple(names), no_recommends, suggests, target), findings


def _add_names(run: RunScript, token: ShellToken, names: list[AptName]) -> list[Finding]:
    raw = token.text
    value = expand_word(raw, run.args)
    if value is None:
        return [Finding(run.path, run.line, "warning", "apt-unknown-name",
                        f"cannot tell which package '{raw}' names (an ARG without a default?); it is not pinned")]
    plain = raw == value
    # An unquoted $VAR splits into words, as the shell does.
    pieces = value.split() if not plain and not raw.startswith(("'", '"')) else [value]
    findings: list[Finding] = []
    for piece in pieces:
        if piece.endswith(".deb") or piece.startswith(("./", "/", "../")):
            findings.append(Finding(run.path, run.line, "warning", "apt-local-deb",
                                    f"'{piece}' is a local .deb file: it is installed as it is, not pinned"))
            continue
        match = _PACKAGE.fullmatch(piece)
        if match is None:
            findings.append(Finding(run.path, run.line, "warning", "apt-pattern",
                                    f"'{piece}' is not a package name (a pattern or a typo?); it is not pinned"))
            continue
        span = None
        if plain and len(pieces) == 1:
            start = run.offsets[token.start]
            end = run.offsets[token.end - 1] + 1
            if end - start == len(raw):
                span = (start, end)
        names.append(AptName(match["name"], match["version"], match["release"], piece, span))
    return findings
