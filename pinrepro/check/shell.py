"""The shell commands inside RUN, CMD and ENTRYPOINT, with the Dockerfile line each one starts on.

Not a Dockerfile reader: instructions come from pinrepro.dockerfile (continuations joined, heredoc bodies
attached). This splits one shell script into simple commands the way sh tokenises it - quotes, backslash
escapes, comments, the operators ``&& || | ; &`` and newlines, redirections - keeping each word's position,
so a finding names the physical line of the command and not only the first line of a 40-line RUN.
Variable expansion, subshells and functions are not interpreted: the rules only look for literal commands.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from pinrepro.dockerfile import Instruction

_OPERATORS = ("&&", "||", ";;", "|&", "|", ";", "&", "(", ")", "\n")
_REDIRECT_START = frozenset("0123456789<>&")
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ash"})
# Words that run the next word as the command: `sudo apt-get ...`, `env A=1 pip ...`.
_PREFIXES = frozenset({"sudo", "env", "time", "exec", "command", "nohup", "nice", "stdbuf"})


@dataclass(frozen=True)
class Redirect:
    operator: str  # ">", ">>", "2>", "&>", "2>>", ...
    target: str


@dataclass(frozen=True)
class Command:
    """One simple command: its words (quotes removed) and redirections, and the line it starts on."""

    line: int
    argv: tuple[str, ...]
    redirects: tuple[Redirect, ...] = ()
    pipeline: int = 0  # commands joined by "|" share a pipeline number within their script
    position: int = 0  # 0 for the first command of its pipeline

    @functools.cached_property
    def name(self) -> str:
        """The program, without its directory and without sudo/env prefixes and VAR=value assignments."""
        words = self.words
        return words[0].rsplit("/", 1)[-1] if words else ""

    @functools.cached_property
    def words(self) -> tuple[str, ...]:
        """argv from the program on (prefixes such as ``sudo -E`` and ``VAR=value`` assignments dropped)."""
        words = list(self.argv)
        while words:
            head = words[0]
            if "=" in head and head.split("=", 1)[0].isidentifier():
                words.pop(0)
            elif head.rsplit("/", 1)[-1] in _PREFIXES:
                words.pop(0)
                while words and words[0].startswith("-"):
                    words.pop(0)
            else:
                break
        return tuple(words)


@dataclass(frozen=True)
class Script:
    """The commands of one shell script (a RUN line, a heredoc body, an ``sh -c`` argument)."""

    commands: tuple[Command, ...]
    text: str
    line_of: Callable[[int], int] = field(repr=False, compare=False)


def parse_script(text: str, line_of: Callable[[int], int]) -> Script:
    commands: list[Command] = []
    argv: list[str] = []
    redirects: list[Redirect] = []
    start = 0
    pipeline = 0
    position = 0
    pending_redirect: str | None = None

    def flush(operator: str) -> None:
        nonlocal argv, redirects, pipeline, position
        if argv or redirects:
            commands.append(Command(line_of(start), tuple(argv), tuple(redirects), pipeline, position))
        argv, redirects = [], []
        if operator in ("|", "|&"):
            position += 1
        elif operator:
            pipeline += 1
            position = 0

    for kind, value, at in _tokens(text):
        if kind == "op":
            pending_redirect = None
            flush(value)
        elif kind == "redirect":
            pending_redirect = value
        elif pending_redirect is not None:
            redirects.append(Redirect(pending_redirect, value))
            pending_redirect = None
        else:
            if not argv and not redirects:
                start = at
            argv.append(value)
    flush("")
    return Script(tuple(commands), text, line_of)


def _tokens(text: str) -> Iterator[tuple[str, str, int]]:
    """(kind, value, position): kind is "word", "op" or "redirect"."""
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char in " \t\r":
            i += 1
            continue
        if char == "\\" and i + 1 < n and text[i + 1] == "\n":
            i += 2
            continue
        if char == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        redirect = _redirect_at(text, i) if char in _REDIRECT_START else None
        if redirect:
            yield "redirect", redirect, i
            i += len(redirect)
            continue
        operator = next((op for op in _OPERATORS if text.startswith(op, i)), None) if char in "&|;()\n" else None
        if operator:
            yield "op", operator, i
            i += len(operator)
            continue
        start = i
        word: list[str] = []
        while i < n and text[i] not in " \t\r\n;&|()<>":
            char = text[i]
            if char == "'":
                end = text.find("'", i + 1)
                end = n if end < 0 else end
                word.append(text[i + 1:end])
                i = end + 1
            elif char == '"':
                i += 1
                while i < n and text[i] != '"':
                    if text[i] == "\\" and i + 1 < n and text[i + 1] in '"\\$`\n':
                        if text[i + 1] != "\n":
                            word.append(text[i + 1])
                        i += 2
                        continue
                    word.append(text[i])
                    i += 1
                i += 1
            elif char == "\\" and i + 1 < n:
                if text[i + 1] != "\n":
                    word.append(text[i + 1])
                i += 2
            else:
                word.append(char)
                i += 1
        if i == start:  # a lone "<" or ">" that is not a redirection we know
            i += 1
            continue
        yield "word", "".join(word), start


def _redirect_at(text: str, i: int) -> str | None:
    """A redirection operator starting at ``i`` (``>``, ``>>``, ``2>``, ``&>``, ``<``, ``2>&1`` ...)."""
    j = i
    while j < len(text) and text[j].isdigit():
        j += 1
    if text.startswith("&>", j) and j == i:
        return "&>>" if text.startswith("&>>", j) else "&>"
    if j < len(text) and text[j] in "<>":
        end = j + 1
        if end < len(text) and text[end] in ">&":
            end += 1
        if text.startswith("<<", j):
            end = j + 2 + (1 if text.startswith("<<-", j) else 0)
        # "2>&1": the target "1" follows as a word
        return text[i:end]
    return None


@functools.lru_cache(maxsize=8192)
def scripts(instruction: Instruction) -> tuple[Script, ...]:
    """The shell scripts an instruction runs: RUN (shell, exec ``sh -c``, heredoc bodies), CMD, ENTRYPOINT."""
    argv = instruction.exec_form()
    line = instruction.line
    if argv is not None:
        if len(argv) >= 3 and PurePosixPath(argv[0]).name in _SHELLS and argv[1] == "-c":
            return (parse_script(argv[2], lambda _: line),)
        return (Script((Command(line, tuple(argv)),), " ".join(argv), lambda _: line),)
    rest_at = instruction.rest_at
    found = [parse_script(instruction.rest, lambda p: instruction.line_at(rest_at + p))]
    head = found[0].commands[0] if found[0].commands else None
    runs_body = head is None or not head.words or head.name in _SHELLS
    if instruction.command == "run" and runs_body:
        for heredoc in instruction.heredocs:
            found.append(parse_script(heredoc.body, _body_lines(heredoc.body, heredoc.line)))
    return tuple(found)


def _body_lines(body: str, first: int) -> Callable[[int], int]:
    def line_of(position: int) -> int:
        return first + body.count("\n", 0, position)

    return line_of


def commands(instruction: Instruction) -> Iterator[Command]:
    for script in scripts(instruction):
        yield from script.commands
