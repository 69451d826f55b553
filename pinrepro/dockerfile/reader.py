"""Physical lines -> logical instructions, the way BuildKit reads a Dockerfile (moby/buildkit
``frontend/dockerfile/parser/parser.go`` and ``directives.go``, https://github.com/moby/buildkit):

- parser directives (``# syntax=``, ``# escape=``, ``# check=``) only count before the first other line, blank
  or not: "Once a comment, empty line or builder instruction has been processed, BuildKit no longer looks for
  parser directives" (https://docs.docker.com/reference/dockerfile/#parser-directives);
- a logical instruction joins physical lines that end in the escape character (``\\`` or the backtick set by
  ``# escape=```); comment lines and blank lines inside a continuation are skipped;
- RUN/COPY/ADD (also under ONBUILD) may open heredocs (``<<EOF``, ``<<-EOF``, ``<<"EOF"``, several per line);
  their bodies are raw lines, so a ``FROM x`` inside one is not an instruction.

Every character of an instruction keeps the file offset it came from, so readers can name the physical line
of a finding and edit the file byte-exactly. The reading is linear in the size of the file.
"""

from __future__ import annotations

import bisect
import functools
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from pinrepro.dockerfile.offsets import Offsets, OffsetsBuilder
from pinrepro.dockerfile.words import (
    arg_words,
    builder_flags,
    is_json_form,
    lstrip_count,
    raw_words,
    split_command,
    unquote_word,
)
from pinrepro.errors import DockerfileError

BOM = "\ufeff"
# Go's regexp \s is ASCII only; BuildKit's directive regexp relies on that.
_DIRECTIVE = re.compile(r"#[ \t\n\f\r]*([a-zA-Z][a-zA-Z0-9]*)[ \t\n\f\r]*=[ \t\n\f\r]*(.+?)[ \t\n\f\r]*")
_KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_HEREDOC_WORD = re.compile(r"([0-9]*)<<(-?)([^<]*)")
_HEREDOC_COMMANDS = frozenset({"run", "copy", "add"})


@dataclass(frozen=True)
class Heredoc:
    """The body of one ``<<NAME`` heredoc (leading tabs removed for ``<<-``)."""

    name: str
    line: int  # the first body line
    body: str  # the body lines joined with "\n", without the terminator
    # The body as written (tabs kept, each line ending in "\n") and the file offset of each of its characters,
    # for readers that edit the file (apt pinning).
    text: str = field(default="", repr=False, compare=False)
    offsets: Offsets = field(default_factory=Offsets, repr=False, compare=False)


@dataclass(frozen=True)
class Instruction:
    """One logical instruction, as BuildKit reads it: continuations joined, heredoc bodies attached.

    ``text`` keeps the characters as written (quotes, escapes); ``line_at`` maps a position in it back to
    the physical line, so a finding inside a long ``RUN`` names the line the user has to edit.
    """

    path: str
    line: int  # where the instruction starts
    end_line: int  # its last physical line, heredoc bodies included
    command: str  # lower-cased: "run", "copy", ...
    text: str
    args_at: int  # where the arguments start in text
    flags: tuple[str, ...]  # leading --name=value words, unquoted (RUN --mount=..., COPY --from=...)
    rest_at: int  # where the arguments after the flags start in text
    heredocs: tuple[Heredoc, ...]
    stage: int  # index of the build stage it belongs to; -1 before the first FROM
    escape: str = "\\"
    offsets: Sequence[int] = field(default=(), repr=False)  # per character of text: its offset in the file
    _starts: tuple[int, ...] = field(default=(), repr=False, compare=False)

    @property
    def rest(self) -> str:
        return self.text[self.rest_at:]

    def flag(self, name: str) -> str | None:
        """The value of ``--name=value`` (the last one wins, as in BuildKit); "" for a bare ``--name``."""
        values = self.flag_values(name)
        return values[-1] if values else None

    def flag_values(self, name: str) -> list[str]:
        found = []
        for flag in self.flags:
            key, has_value, value = flag[2:].partition("=")
            if key == name:
                found.append(value if has_value else "")
        return found

    def line_at(self, position: int) -> int:
        """The physical line of ``text[position]``."""
        if not self.offsets or not self._starts:
            return self.line
        offset = self.offsets[max(0, min(position, len(self.offsets) - 1))]
        return bisect.bisect_right(self._starts, offset)

    def exec_form(self) -> list[str] | None:
        """The JSON-array (exec) form of the arguments after the flags, or None for the shell form."""
        rest = self.rest.strip()
        if not is_json_form(rest):
            return None
        value: list[str] = json.loads(rest)
        return value

    def pairs(self) -> list[tuple[str, str | None]]:
        """``ENV``/``ARG``/``LABEL`` arguments as (name, value as written or None): ``A=1 B="x y"``, ``ENV A 1``."""
        words = [self.text[a:b] for a, b in arg_words(self.text, self.rest_at, self.escape)]
        if self.command == "env" and words and "=" not in words[0]:
            # The legacy form ``ENV NAME value with spaces``.
            return [(words[0], self.text[self.rest_at:].strip()[len(words[0]):].strip())]
        result: list[tuple[str, str | None]] = []
        for word in words:
            name, has_value, value = word.partition("=")
            result.append((name, value if has_value else None))
        return result


def add_arguments(instruction: Instruction) -> list[str]:
    """ADD / COPY: the words after the flags - sources then destination - unquoted (JSON form decoded), not
    ARG-expanded. The flags themselves are ``instruction.flags``; the rest starts at ``instruction.rest_at``."""
    rest = instruction.rest
    if is_json_form(rest):
        return [str(word) for word in json.loads(rest.strip())]
    return [unquote_word(word) for word in raw_words(rest)]


def instructions(text: str, path: str = "Dockerfile") -> tuple[tuple[Instruction, ...], dict[str, str]]:
    """Every logical instruction of ``text``, in order, with its stage index and line span, and the parser
    directives (lower-cased name -> value, e.g. ``{"syntax": "docker/dockerfile:1"}``)."""
    # check, verify's ADD checks and the FROM reading (pin.py) read the same files in one run: once is enough.
    found, directives = _instructions(text, path)
    return found, dict(directives)


def iter_instructions(text: str, path: str = "Dockerfile",
                      directives: dict[str, str] | None = None) -> Iterator[Instruction]:
    """``instructions()`` one at a time, as they are read: a caller that stops at a bad instruction reports
    it before a reading error further down the file. ``directives`` receives the parser directives at the end."""
    starts = [1 if text.startswith(BOM) else 0]
    position = text.find("\n")
    while position >= 0:
        starts.append(position + 1)
        position = text.find("\n", position + 1)
    shared = tuple(starts)
    stage = -1
    for step in _walk(text, path, directives):
        logical = step.logical
        if step.command == "from":
            stage += 1
        flags, rest_at = builder_flags(logical.text, step.args_at, f"{path}:{logical.line}")
        heredocs = tuple(Heredoc(body.name, body.line, "\n".join(body.lines), body.text, body.offsets)
                         for body in step.bodies)
        yield Instruction(
            path=path, line=logical.line, end_line=step.end_line, command=step.command, text=logical.text,
            args_at=step.args_at, flags=tuple(flags), rest_at=rest_at, heredocs=heredocs, stage=stage,
            escape=step.escape, offsets=logical.offsets, _starts=shared,
        )


@functools.lru_cache(maxsize=16)
def _instructions(text: str, path: str) -> tuple[tuple[Instruction, ...], tuple[tuple[str, str], ...]]:
    directives: dict[str, str] = {}
    found = tuple(iter_instructions(text, path, directives))
    return found, tuple(directives.items())


class _Line(NamedTuple):
    number: int
    start: int  # offset in the text of the first character (after the BOM on line 1)
    content: str  # without trailing CR/LF characters (parser.go's trimNewline)


def _lines(text: str) -> list[_Line]:
    position = 1 if text.startswith(BOM) else 0
    pieces = text[position:].split("\n")
    if pieces[-1] == "":
        pieces.pop()  # the text ends with a newline: no line after it
    lines: list[_Line] = []
    for number, piece in enumerate(pieces, start=1):
        lines.append(_Line(number, position, piece.rstrip("\r")))
        position += len(piece) + 1
    return lines


class _Logical:
    """A logical instruction: its text and, per character, the offset it came from in the file."""

    def __init__(self, line: int) -> None:
        self.line = line
        self._offsets = OffsetsBuilder()
        # Pieces are joined once, when the text is read: ``text += piece`` per continued line was quadratic
        # (a 100,000-line RUN took seconds).
        self._pieces: list[str] = []
        self._text: str | None = ""

    @functools.cached_property
    def offsets(self) -> Offsets:
        """Read once the instruction is complete (after the last ``add``)."""
        return self._offsets.build()

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = "".join(self._pieces)
            self._pieces = [self._text]
        return self._text

    def add(self, piece: str, start: int) -> None:
        self._pieces.append(piece)
        self._text = None
        self._offsets.add(len(piece), start)


@dataclass
class _Directives:
    escape: str = "\\"
    done: bool = False
    seen: set[str] = field(default_factory=set)
    values: dict[str, str] = field(default_factory=dict)

    def look(self, token: str, where: str) -> None:
        if self.done:
            return
        match = _DIRECTIVE.fullmatch(token)
        if match is None or match.group(1).lower() not in _KNOWN_DIRECTIVES:
            self.done = True
            return
        key, value = match.group(1).lower(), match.group(2)
        if key in self.seen:
            raise DockerfileError(f"the '{key}' parser directive appears twice", where=where,
                                  fix=f"keep one '# {key}=' line at the top of the file")
        self.seen.add(key)
        self.values[key] = value
        if key == "escape":
            if value not in ("\\", "`"):
                raise DockerfileError(f"invalid escape directive '{value}'", where=where,
                                      fix="write '# escape=\\' or '# escape=`'")
            self.escape = value

    def continuation_cut(self, text: str) -> int | None:
        """Where the line's text ends when it ends with a line continuation, else None.

        BuildKit's regexp is ``([^E])E[ \\t]*$|^E[ \\t]*$``: a doubled escape at the end is not a continuation.
        """
        body = text.rstrip(" \t")
        if body.endswith(self.escape) and (len(body) == 1 or body[-2] != self.escape):
            return len(body) - 1
        return None


def _is_comment(content: str) -> bool:
    return content[lstrip_count(content):].startswith("#")


@dataclass(frozen=True)
class _Body:
    """One heredoc body as read: for RUN readers (text with its file offsets) and for check (lines)."""

    name: str
    line: int  # the first body line
    lines: tuple[str, ...]  # as the command gets them (leading tabs removed for <<-)
    text: str  # the raw lines, each ending in "\n"
    offsets: Offsets  # the file offset of each character of text


@dataclass(frozen=True)
class _Step:
    """One logical instruction as the walk found it, with the heredoc bodies it opened."""

    logical: _Logical
    command: str
    args_at: int
    escape: str
    end_line: int  # the last physical line, heredoc bodies included
    bodies: tuple[_Body, ...]


def _walk(text: str, path: str, directive_values: dict[str, str] | None = None) -> Iterator[_Step]:
    """Physical lines -> logical instructions (parser.go), heredoc bodies consumed and kept.

    ``directive_values`` receives the parser directives (``{"syntax": "docker/dockerfile:1"}``) once the walk ends.
    """
    lines = _lines(text)
    directives = _Directives()
    index = 0
    while index < len(lines):
        first = lines[index]
        index += 1
        skip = lstrip_count(first.content)
        token = first.content[skip:]
        directives.look(token, f"{path}:{first.number}")
        if token.startswith("#"):
            continue
        logical = _Logical(first.number)
        cut = directives.continuation_cut(token)
        logical.add(token if cut is None else token[:cut], first.start + skip)
        if cut is None and not logical.text:
            continue
        last = first.number
        while cut is not None and index < len(lines):
            line = lines[index]
            index += 1
            if _is_comment(line.content) or not line.content[lstrip_count(line.content):]:
                continue
            last = line.number
            cut = directives.continuation_cut(line.content)
            logical.add(line.content if cut is None else line.content[:cut], line.start)
        command, args_at = split_command(logical.text)
        where = f"{path}:{logical.line}"
        bodies: list[_Body] = []
        index = _skip_heredocs(lines, index, logical, command, args_at, where, bodies)
        if bodies:
            last = bodies[-1].line + len(bodies[-1].lines)  # the terminator line
        yield _Step(logical, command, args_at, directives.escape, last, tuple(bodies))
    if directive_values is not None:
        directive_values.update(directives.values)


def _skip_heredocs(lines: list[_Line], index: int, logical: _Logical, command: str, args_at: int,
                   where: str, bodies: list[_Body] | None = None) -> int:
    """Consume the bodies of the heredocs this instruction opens; return the index of the next line.

    ``bodies`` (if given) receives each body: its lines, and its text with the file offset of each character.
    """
    if command == "onbuild":
        sub, sub_at = split_command(logical.text[args_at:])
        command, args_at = sub, args_at + sub_at
    if command not in _HEREDOC_COMMANDS or "<<" not in logical.text:
        return index
    _, rest_at = builder_flags(logical.text, args_at, where)
    if is_json_form(logical.text[rest_at:]):
        return index
    for name, chomp in _heredocs(logical.text):
        first = lines[index].number if index < len(lines) else 0
        content: list[str] = []
        raw: list[str] = []
        offsets = OffsetsBuilder()
        while True:
            if index >= len(lines):
                raise DockerfileError(f"heredoc <<{name} is never closed", where=where,
                                      fix=f"end it with a line that says only {name}")
            body = lines[index].content
            start = lines[index].start
            index += 1
            if (body.lstrip("\t") if chomp else body) == name:
                break
            content.append(body.lstrip("\t") if chomp else body)
            raw.append(body + "\n")
            offsets.add(len(body) + 1, start)  # the line, then its line break
        if bodies is not None:
            bodies.append(_Body(name, first, tuple(content), "".join(raw), offsets.build()))
    return index


def _heredocs(line: str) -> list[tuple[str, bool]]:
    """(name, chomp) of every heredoc word on the line, in order (heredocsFromLine in parser.go)."""
    found: list[tuple[str, bool]] = []
    for word in raw_words(line):
        match = _HEREDOC_WORD.fullmatch(word)
        if match is None or not match.group(3):
            continue
        name = unquote_word(match.group(3))
        if name:
            found.append((name, match.group(2) == "-"))
    return found
