"""The shell commands inside RUN, CMD and ENTRYPOINT, with the Dockerfile line each one starts on.

Not a reader of its own: instructions come from reader.py (continuations joined, heredoc bodies attached) and
their scripts are split by ``shell_tokens`` below (the lexer apt pinning uses too); ``pinrepro check``'s rules
and verify's install check (pinrepro.installs) read RUN lines through here. ``commands`` groups the
tokens into simple commands - words without their quotes, redirections, pipelines - keeping each word's
position, so a finding names the physical line of the command and not only the first line of a 40-line RUN.
Variable expansion, subshells and functions are not interpreted: the rules only look for literal commands.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import NamedTuple

from pinrepro.dockerfile.reader import Instruction
from pinrepro.dockerfile.words import unquote_word

_TWO_CHAR_OPERATORS = frozenset({"&&", "||", ">>"})
_OPERATOR_CHARS = frozenset(";|&\n()><")  # each one is an operator alone, some start a two-character one
# Runs of characters that neither end a word nor start a quote, an escape or a substitution: skipped in one
# step, so a 4 MB RUN line is not walked character by character.
_PLAIN = re.compile(r"[^'\"`\\$&|;<>()\n \t\r]+")
_SUBSTITUTION_PLAIN = re.compile(r"[^'\"`\\$()]+")
_DOUBLE_QUOTED_PLAIN = {'"': re.compile(r'[^"\\]+'), "`": re.compile(r"[^`\\]+")}
# The common pieces of a word in one match: plain runs, closed quotes, escaped characters, a "$" that opens
# no substitution. What it leaves ($(...), an unclosed quote, a final backslash) is read piece by piece.
_WORD_RUN = re.compile(r"""(?:[^'"`\\$&|;<>()\n \t\r]+|'[^']*'|"[^"\\]*(?:\\.[^"\\]*)*"|`[^`\\]*(?:\\.[^`\\]*)*`"""
                       r"""|\\.|\$(?!\())+""", re.DOTALL)
_BLANKS = re.compile(r"[ \t\r]+")


class ShellToken(NamedTuple):
    """A shell word as written (quotes kept), or an operator (``&&``, ``||``, ``;``, ``|``, ``&``, newline,
    ``(``, ``)``, ``>``, ``>>``, ``<``); ``start``/``end`` index the script. A named tuple: a script of a
    million words makes a million of them, three times faster than a frozen dataclass."""

    text: str
    start: int
    end: int
    operator: bool = False


def shell_tokens(script: str) -> list[ShellToken]:
    """Split a RUN script into words (quotes and escapes kept, as ``words.raw_words`` keeps them) and operators.

    Enough of POSIX sh to find commands (https://pubs.opengroup.org/onlinepubs/9699919799/utilities/
    V3_chap02.html, 2.3 Token Recognition): quotes, backslashes, ``$(...)``/backticks kept inside a word,
    comments dropped. A redirection's file descriptor (``2>``) stays a word before the operator.
    """
    tokens: list[ShellToken] = []
    position = 0
    start = -1  # where the word being read starts; -1 between words
    length = len(script)
    while position < length:
        char = script[position]
        if start < 0 and char == "#":  # a comment runs to the end of the line
            newline = script.find("\n", position)
            position = length if newline < 0 else newline
            continue
        if char not in _OPERATOR_CHARS and char not in " \t\r":
            start = position if start < 0 else start
            run = _WORD_RUN.match(script, position)
            position = run.end() if run is not None else _word_part_end(script, position)
            continue
        if start >= 0:
            tokens.append(ShellToken(script[start:position], start, position))
            start = -1
        if char in _OPERATOR_CHARS:
            operator = script[position:position + 2]
            operator = operator if operator in _TWO_CHAR_OPERATORS else char
            tokens.append(ShellToken(operator, position, position + len(operator), operator=True))
            position += len(operator)
        else:
            blanks = _BLANKS.match(script, position)
            position = blanks.end() if blanks is not None else position + 1
    if start >= 0:
        tokens.append(ShellToken(script[start:], start, length))
    return tokens


def _word_part_end(script: str, position: int) -> int:
    """Where the piece of a word that starts at ``position`` ends: a quoted string, an escaped character, a
    ``$(...)`` substitution, or a run of plain characters (at least one character)."""
    char = script[position]
    if char in "'\"`":
        return _quoted_end(script, position)
    if char == "\\":
        return min(position + 2, len(script))
    if script.startswith("$(", position):
        return _substitution_end(script, position)
    plain = _PLAIN.match(script, position)
    return plain.end() if plain is not None else position + 1


def _quoted_end(script: str, position: int) -> int:
    """The position after the quote that closes the one at ``position`` (the end of the script if none)."""
    quote = script[position]
    if quote == "'":
        end = script.find("'", position + 1)
        return len(script) if end < 0 else end + 1
    plain = _DOUBLE_QUOTED_PLAIN[quote]
    end = position + 1
    while end < len(script) and script[end] != quote:
        run = plain.match(script, end)
        end = run.end() if run is not None else end + 2  # a backslash and the character it escapes
    return min(end + 1, len(script))


def _substitution_end(script: str, position: int) -> int:
    """The position after the ``)`` that closes the ``$(`` at ``position``; quotes and escapes inside count."""
    depth = 0
    while position < len(script):
        char = script[position]
        if char in "'\"`":
            position = _quoted_end(script, position)
            continue
        if char == "\\":
            position += 2
            continue
        if char == "$" and script.startswith("$(", position):
            depth, position = depth + 1, position + 2
            continue
        if char in "()":
            depth += 1 if char == "(" else -1
            position += 1
            if depth == 0:
                return position
            continue
        run = _SUBSTITUTION_PLAIN.match(script, position)
        position = run.end() if run is not None else position + 1
    return len(script)


_REDIRECTS = frozenset({">", ">>", "<"})
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


def parse_script(text: str, line_of: Callable[[int], int], *, nested: bool = False) -> Script:
    """The simple commands of a shell script; ``line_of`` maps a position in ``text`` to its Dockerfile line.

    ``nested``: the commands inside ``$(...)`` substitutions too (they run as well), after the script's own.
    """
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

    tokens = shell_tokens(text)
    for kind, value, at in _tokens(tokens):
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
    if nested and "$(" in text:
        commands.extend(_substituted(tokens, line_of))
    return Script(tuple(commands), text, line_of)


def _substituted(tokens: list[ShellToken], line_of: Callable[[int], int]) -> Iterator[Command]:
    """The commands inside each ``$(...)`` of the script's words (not of its comments), nested ones included."""
    for token in tokens:
        if token.operator or "$(" not in token.text:
            continue
        for offset, body in _substitutions(token.text):
            yield from parse_script(body, _shifted(line_of, token.start + offset), nested=True).commands


def _shifted(line_of: Callable[[int], int], start: int) -> Callable[[int], int]:
    return lambda position: line_of(start + position)


def _substitutions(word: str) -> Iterator[tuple[int, str]]:
    """(offset, body) of each outermost ``$(...)`` in a word as written; single quotes keep it literal."""
    position = 0
    double = False  # inside "...": a single quote is a character there, and $(...) still runs
    while position < len(word):
        char = word[position]
        if char == "'" and not double:
            position = _quoted_end(word, position)
        elif char == "\\":
            position += 2
        elif char == '"':
            double, position = not double, position + 1
        elif word.startswith("$(", position):
            end = _substitution_end(word, position)
            yield position + 2, word[position + 2:end - 1 if word[end - 1:end] == ")" else end]
            position = end
        else:
            position += 1


def _tokens(tokens: list[ShellToken]) -> Iterator[tuple[str, str, int]]:
    """(kind, value, position) from the shell tokens: kind is "word" (quotes removed), "op" or "redirect"
    (``>``, ``>>``, ``<``, ``2>``, ``&>``, ``>&`` as in ``2>&1``)."""
    count = len(tokens)
    i = 0
    while i < count:
        token = tokens[i]
        following = tokens[i + 1] if i + 1 < count else None
        touching = following is not None and following.start == token.end
        if touching and following is not None and following.operator and following.text in _REDIRECTS and (
                (not token.operator and token.text.isdigit()) or (token.operator and token.text == "&")):
            # "2>" / "&>": the descriptor (or &) and the operator are one redirection.
            operator, i = token.text + following.text, i + 2
        elif token.operator and token.text in _REDIRECTS:
            operator, i = token.text, i + 1
        elif token.operator:
            yield "op", token.text, token.start
            i += 1
            continue
        else:
            word = unquote_word(token.text)
            # A backslash-newline inside a heredoc script is a line continuation, not a word.
            if word.strip() or not token.text.startswith("\\"):
                yield "word", word, token.start
            i += 1
            continue
        if i < count and tokens[i].operator and tokens[i].text == "&" and tokens[i].start == tokens[i - 1].end:
            operator, i = operator + "&", i + 1  # ">&1": a duplicated descriptor, not a file
        yield "redirect", operator, token.start


@functools.lru_cache(maxsize=8192)
def scripts(instruction: Instruction, *, nested: bool = False) -> tuple[Script, ...]:
    """The shell scripts an instruction runs: RUN (shell, exec ``sh -c``, heredoc bodies), CMD, ENTRYPOINT;
    ``nested``: with the commands of their ``$(...)`` substitutions."""
    argv = instruction.exec_form()
    line = instruction.line
    if argv is not None:
        if len(argv) >= 3 and PurePosixPath(argv[0]).name in _SHELLS and argv[1] == "-c":
            return (parse_script(argv[2], lambda _: line, nested=nested),)
        return (Script((Command(line, tuple(argv)),), " ".join(argv), lambda _: line),)
    rest_at = instruction.rest_at
    found = [parse_script(instruction.rest, lambda p: instruction.line_at(rest_at + p), nested=nested)]
    head = found[0].commands[0] if found[0].commands else None
    runs_body = head is None or not head.words or head.name in _SHELLS
    if instruction.command == "run" and runs_body:
        for heredoc in instruction.heredocs:
            found.append(parse_script(heredoc.body, _body_lines(heredoc.body, heredoc.line), nested=nested))
    return tuple(found)


def _body_lines(body: str, first: int) -> Callable[[int], int]:
    # Line starts found once and searched: counting newlines from the top for each command was quadratic in
    # the number of commands of a long heredoc.
    starts = [match.end() for match in re.finditer("\n", body)]

    def line_of(position: int) -> int:
        return first + bisect.bisect_right(starts, position)

    return line_of


def commands(instruction: Instruction, *, nested: bool = False) -> Iterator[Command]:
    """The simple commands of every script the instruction runs (``nested``: substitutions' too)."""
    for script in scripts(instruction, nested=nested):
        yield from script.commands
