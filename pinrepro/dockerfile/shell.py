"""Shell-word expansion of FROM images, ARG defaults and RUN words: BuildKit's ``shell/lex.go`` counterpart
(moby/buildkit ``frontend/dockerfile/shell/lex.go``, https://github.com/moby/buildkit).

A word is read with its quotes and escapes (the escape character of ``# escape=``), ``$NAME`` and ``${NAME}``
are substituted, and the POSIX modifiers ``${NAME:-word}``, ``${NAME:+word}``, ``${NAME:?word}`` (with and
without ``:``) are evaluated. An ARG whose value pinrepro cannot know (no default, set per platform by BuildKit)
is an :class:`Opaque` value: the expansion then says why it has no value instead of guessing one.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

# BuildKit defines these for every build, per platform, so FROM may use them without declaring them.
PLATFORM_ARGS = frozenset({
    "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
})
_SHELL_SPECIAL = ("$", "'", '"')  # what makes the word lexer do more than copy a word


@dataclass(frozen=True)
class Opaque:
    """An ARG whose value pinrepro cannot know: no default, or set by BuildKit per platform."""

    reason: str
    state: Literal["unset", "nonempty", "unknown"]


Value: TypeAlias = str | Opaque


class SyntaxProblem(Exception):
    """A word BuildKit would refuse to expand (unterminated quote, bad ${...})."""


@dataclass(frozen=True)
class Expansion:
    value: str | None  # None: depends on something unknown
    reason: str | None
    referenced: bool  # whether the word uses any ARG at all


def expand(word: str, env: Mapping[str, Value], escape: str) -> Expansion:
    if "$" not in word and "'" not in word and '"' not in word and escape not in word:
        return Expansion(word, None, False)  # nothing to expand: the lexer would copy it character by character
    lexer = Lexer(word, env, escape)
    value, reason = lexer.word(None)
    if reason is not None:
        return Expansion(None, reason, True)
    return Expansion(value, None, lexer.referenced)


def expand_word(word: str, args: Mapping[str, str | None]) -> str | None:
    """A shell word of a RUN line with quotes removed and ``$ARG``s substituted; None when it needs a value
    pinrepro cannot know (or is not valid shell). Uses the same lexer as FROM lines."""
    try:
        return expand(word, _KnownOrNot(args), "\\").value
    except SyntaxProblem:
        return None


class _KnownOrNot(Mapping[str, Value]):
    """RUN-line ARGs as the lexer reads them: None becomes "no known value". A view, not a copy: a copy per
    word made reading a stage with many ARGs quadratic."""

    def __init__(self, args: Mapping[str, str | None]) -> None:
        self._args = args

    def __getitem__(self, name: str) -> Value:
        value = self._args[name]
        return value if value is not None else Opaque(f"ARG {name} has no known value", "unknown")

    def __iter__(self) -> Iterator[str]:
        return iter(self._args)

    def __len__(self) -> int:
        return len(self._args)


_SPECIAL: dict[tuple[str, str | None], re.Pattern[str]] = {}

_MAX_NESTING = 32  # ${A:-${B:-...}} levels; BuildKit has no limit, but no real Dockerfile nests deeper


class Lexer:
    def __init__(self, text: str, env: Mapping[str, Value], escape: str) -> None:
        self.text = text
        self.env = env
        self.escape = escape
        self.position = 0
        self.referenced = False
        self.names: list[str] = []  # every ARG the word reads, in order
        self.depth = 0

    def _plain_end(self, stop: str | None) -> int:
        """Where the run of characters that stand for themselves, from the current position, ends."""
        pattern = _SPECIAL.get((self.escape, stop))
        if pattern is None:
            special = "'\"$" + self.escape + (stop or "")
            pattern = _SPECIAL[(self.escape, stop)] = re.compile("[" + re.escape(special) + "]")
        match = pattern.search(self.text, self.position)
        return match.start() if match else len(self.text)

    def _peek(self) -> str | None:
        return self.text[self.position] if self.position < len(self.text) else None

    def _next(self) -> str | None:
        char = self._peek()
        self.position += 1
        return char

    def word(self, stop: str | None) -> tuple[str, str | None]:
        if stop is None:
            # Most words are plain (an image, a tag): nothing to expand, so no walk character by character
            # (the lexer was most of lock's CPU time on a Dockerfile with hundreds of FROM lines, issue #15).
            rest = self.text[self.position:]
            if self.escape not in rest and not any(char in rest for char in _SHELL_SPECIAL):
                self.position = len(self.text)
                return rest, None
        out: list[str] = []
        reason: str | None = None
        while (char := self._peek()) is not None:
            if char == stop:
                self.position += 1
                return "".join(out), reason
            if char == "'":
                out.append(self._single_quoted())
                continue
            if char == '"':
                piece, why = self._double_quoted()
            elif char == "$":
                piece, why = self._dollar()
            elif char != self.escape:
                # A run of ordinary characters in one slice: per-character appends made long values slow.
                end = self._plain_end(stop)
                piece, why = self.text[self.position:end], None
                self.position = end
            else:
                self.position += 1
                if char == self.escape:
                    escaped = self._next()
                    if escaped is None:
                        break
                    char = escaped
                piece, why = char, None
            out.append(piece)
            reason = reason or why
        if stop is not None:
            raise SyntaxProblem(f"missing '{stop}'")
        return "".join(out), reason

    def _single_quoted(self) -> str:
        self.position += 1
        end = self.text.find("'", self.position)
        if end < 0:
            raise SyntaxProblem("a single quote is not closed")
        piece = self.text[self.position:end]
        self.position = end + 1
        return piece

    def _double_quoted(self) -> tuple[str, str | None]:
        self.position += 1
        out: list[str] = []
        reason: str | None = None
        while True:
            char = self._peek()
            if char is None:
                raise SyntaxProblem("a double quote is not closed")
            if char == '"':
                self.position += 1
                return "".join(out), reason
            if char == "$":
                piece, why = self._dollar()
                out.append(piece)
                reason = reason or why
                continue
            self.position += 1
            if char == self.escape:
                following = self._peek()
                if following is None:
                    continue
                if following in ('"', "$", self.escape):
                    char = following
                    self.position += 1
            out.append(char)

    def _name(self) -> str:
        start = self.position
        char = self._peek()
        if char is None:
            return ""
        if char.isdigit():
            while (char := self._peek()) is not None and char.isdigit():
                self.position += 1
            return self.text[start:self.position]
        if char in "@*#?-$!0":
            self.position += 1
            return char
        while (char := self._peek()) is not None and (char.isalnum() or char == "_"):
            self.position += 1
        return self.text[start:self.position]

    def _lookup(self, name: str) -> Value:
        if name in self.env:
            return self.env[name]
        if name in PLATFORM_ARGS:
            return Opaque(f"{name} is set by BuildKit for each platform it builds", "nonempty")
        # Undeclared ARGs expand to "" in BuildKit; --build-arg cannot set them either.
        return Opaque(f"ARG {name} is not declared before the first FROM", "unset")

    def _dollar(self) -> tuple[str, str | None]:
        self.position += 1
        if self._peek() != "{":
            name = self._name()
            if not name:
                return "$", None
            self.referenced = True
            self.names.append(name)
            return _bare(self._lookup(name))
        self.position += 1
        char = self._peek()
        if char is None:
            raise SyntaxProblem("missing '}'")
        self.depth += 1
        if self.depth > _MAX_NESTING:
            raise SyntaxProblem(f"${{...}} nested more than {_MAX_NESTING} levels deep")
        try:
            return self._braced(char)
        finally:
            self.depth -= 1

    def _braced(self, char: str) -> tuple[str, str | None]:
        if char in "{}:":
            raise SyntaxProblem("bad substitution")
        name = self._name()
        self.referenced = True
        self.names.append(name)
        value = self._lookup(name)
        operator = self._next()
        if operator == "}":
            return _bare(value)
        if operator == ":":
            modifier = self._next()
            if modifier is None or modifier not in "-+?":
                raise SyntaxProblem(f"unsupported modifier ':{modifier or ''}' in ${{{name}...}}")
            operator += modifier
        elif operator is None:
            raise SyntaxProblem("missing '}'")
        elif operator in "#%/":
            self.word("}")
            return "", f"${{{name}{operator}...}} is not evaluated by pinrepro"
        elif operator not in "-+?":
            raise SyntaxProblem("bad substitution")
        word, why = self.word("}")
        return _modified(name, value, operator, word, why)


def _bare(value: Value) -> tuple[str, str | None]:
    if isinstance(value, str):
        return value, None
    return "", value.reason


def _modified(name: str, value: Value, operator: str, word: str, why: str | None) -> tuple[str, str | None]:
    """``${NAME<operator>word}`` with POSIX semantics; ``:`` makes an empty value count as unset."""
    if isinstance(value, str):
        is_set, known = (value != "" if operator.startswith(":") else True), True
    elif value.state == "unset":
        is_set, known = False, True
    elif value.state == "nonempty":
        is_set, known = True, False
    else:
        return "", value.reason
    test = operator[-1]
    if test == "-":
        if is_set:
            return _bare(value) if known else ("", _opaque_reason(value))
        return word, why
    if test == "+":
        return (word, why) if is_set else ("", None)
    # "?": BuildKit stops the build with the message when the ARG is not set.
    if is_set:
        return _bare(value) if known else ("", _opaque_reason(value))
    return "", f"ARG {name} must be set ({word or 'no message'})"


def _opaque_reason(value: Value) -> str:
    return value.reason if isinstance(value, Opaque) else ""


def read_args(word: str, env: Mapping[str, Value], escape: str) -> tuple[str, ...]:
    lexer = Lexer(word, env, escape)
    with contextlib.suppress(SyntaxProblem):  # parse() already reported a word that cannot be expanded
        lexer.word(None)
    return tuple(dict.fromkeys(name for name in lexer.names if name not in PLATFORM_ARGS))
