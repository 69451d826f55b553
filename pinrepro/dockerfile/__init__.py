"""FROM sites in a Dockerfile, and a rewrite that pins them to digests and touches nothing else.

The reading follows BuildKit's Dockerfile frontend (moby/buildkit ``frontend/dockerfile/parser/parser.go``,
``directives.go``, ``line_parsers.go`` and ``shell/lex.go``), because that is what decides what a build pulls:

- parser directives (``# syntax=``, ``# escape=``) only count before the first other line, blank or not;
- a logical instruction joins physical lines that end in the escape character (``\\`` or the backtick set by
  ``# escape=```); comment lines and blank lines inside a continuation are skipped;
- RUN/COPY/ADD (also under ONBUILD) may open heredocs (``<<EOF``, ``<<-EOF``, ``<<"EOF"``, several per line);
  their bodies are raw lines, so a ``FROM x`` inside one is not an instruction;
- FROM sees only the ARGs declared before the first FROM, expanded with BuildKit's shell-word rules.

Pure: no I/O. ``parse`` takes text, ``rewrite`` returns text; every byte that is not part of an image reference
(or of the ARG default that holds one) comes back unchanged, CRLF, BOM and missing final newline included.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, NamedTuple, TypeAlias

from pinrepro.errors import DockerfileError, InvalidReferenceError
from pinrepro.reference import DEFAULT_TAG, ImageRef

Kind = Literal["image", "stage", "scratch", "unresolved"]
PinTarget = Literal["literal", "arg", "expression"]


@dataclass(frozen=True)
class FromSite:
    """One FROM instruction: what it names, and where a digest for it would go."""

    path: str  # as passed to parse()
    line: int  # 1-based line where the FROM instruction starts
    written: str  # the image word as written (continuations joined), e.g. "${BASE}" or "img:${VER}"
    image: str | None  # after ARG expansion, maybe with "@sha256:..."; None unless kind == "image"
    kind: Kind
    stage_name: str | None = None  # the AS name, lower-cased as BuildKit does
    # the --platform value, unquoted; expanded when its ARGs have known values, else as written ("$BUILDPLATFORM")
    platform: str | None = None
    reason: str | None = None  # why the image is unknown (kind == "unresolved")
    # "literal": the digest goes after the reference in FROM; "arg": into the default of the global ARG
    # ``arg_name``; "expression": after the ARG expression in FROM. None for an image means no safe place
    # exists (its digest comes from part of an ARG); rewrite then accepts only the digest it already has.
    pin_target: PinTarget | None = None
    arg_name: str | None = None
    # ARGs that ``docker build --build-arg`` could set to name another tag while the digest written for this
    # FROM stays - and wins. Empty when the digest goes into an ARG that holds the whole reference.
    build_args: tuple[str, ...] = ()
    base_stage: str | None = None  # the earlier stage this one builds on (kind == "stage")


@dataclass(frozen=True)
class RunScript:
    """The shell text of one RUN instruction (or of one heredoc it opens), for readers of RUN lines.

    ``offsets[i]`` is the file offset of ``script[i]``, so a reader can edit the file byte-exactly.
    """

    path: str
    line: int  # where the RUN instruction starts
    stage: int  # index of the stage's FROM in Dockerfile.sites
    script: str  # the command line after RUN's flags, continuations joined (as the shell gets it), or a body
    offsets: tuple[int, ...]
    # ARGs the stage can see: the value, or None when pinrepro cannot know it (no default, --build-arg).
    args: Mapping[str, str | None] = field(default_factory=dict, hash=False)
    heredoc: bool = False
    flags: tuple[str, ...] = ()  # RUN's own flags, e.g. --mount=type=cache,target=/var/cache/apt


@dataclass(frozen=True)
class ShellToken:
    """A shell word as written (quotes kept), or an operator (``&&``, ``||``, ``;``, ``|``, ``&``, newline,
    ``(``, ``)``, ``>``, ``>>``, ``<``); ``start``/``end`` index the script."""

    text: str
    start: int
    end: int
    operator: bool = False


@dataclass(frozen=True)
class Dockerfile:
    path: str
    text: str
    sites: tuple[FromSite, ...]
    runs: tuple[RunScript, ...] = ()


# containerd's platform specifier: one to three components of [A-Za-z0-9_-].
_PLATFORM = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+){0,2}")
_FROM_USAGE = "write FROM [--platform=<platform>] <image>[:<tag>] [AS <name>]"
_BOM = "\ufeff"
# Go's regexp \s is ASCII only; BuildKit's directive regexp relies on that.
_DIRECTIVE = re.compile(r"#[ \t\n\f\r]*([a-zA-Z][a-zA-Z0-9]*)[ \t\n\f\r]*=[ \t\n\f\r]*(.+?)[ \t\n\f\r]*")
_KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check"})
# reWhitespace in parser.go: what separates a command from its arguments and FROM's arguments from each other.
_SEPARATORS = "\t\v\f\r "
_STAGE_NAME = re.compile(r"[a-z][a-z0-9-_.]*")
_HEREDOC_WORD = re.compile(r"([0-9]*)<<(-?)([^<]*)")
_HEREDOC_COMMANDS = frozenset({"run", "copy", "add"})
_DIGEST_TEXT = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}"
_DIGEST = re.compile(_DIGEST_TEXT)
_DIGEST_SUFFIX = re.compile("@" + _DIGEST_TEXT + r"\Z")
_WHOLE_ARG = re.compile(r'("?)\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})\1')
# BuildKit defines these for every build, per platform, so FROM may use them without declaring them.
_PLATFORM_ARGS = frozenset({
    "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
})
_PROBE_DIGEST = "sha256:" + "0" * 64
_SHELL_SPECIAL = ("$", "'", '"')  # what makes the word lexer do more than copy a word
_SHARED_ARG_FIX = "use the ARG that holds the image only as the whole reference in FROM lines"


def add_arguments(instruction: Instruction, where: str) -> tuple[list[str], int, list[str]]:
    """ADD / COPY: the leading ``--flags`` (unquoted), where the rest starts in ``instruction.text``, and the
    rest's words - sources then destination - unquoted (JSON form decoded), not ARG-expanded."""
    flags, rest_at = _builder_flags(instruction.text, instruction.args_at, where)
    rest = instruction.text[rest_at:]
    if _is_json_form(rest):
        return flags, rest_at, [str(word) for word in json.loads(rest.strip())]
    return flags, rest_at, [_unquote(word) for word in _raw_words(rest)]


def strip_digest(image: str) -> tuple[str, str | None]:
    """Split ``name:tag@sha256:x`` into ``("name:tag", "sha256:x")``; the digest is None when there is none."""
    name, sep, digest = image.partition("@")
    return name, (digest if sep else None)


def parse(text: str, path: str = "Dockerfile", platforms: Sequence[str] = ()) -> Dockerfile:
    """Find every FROM site of ``text``; raise DockerfileError (with ``path:line``) for a malformed FROM.

    ``platforms`` are the target platforms the project builds for: a FROM that depends on TARGETARCH (or
    another TARGET* ARG) and names an earlier stage for each of them is a stage, not an unknown image.
    """
    runs: list[RunScript] = []
    sites, _ = _analyse(text, path, platforms=tuple(platforms), runs=runs)
    return Dockerfile(path=path, text=text, sites=sites, runs=tuple(runs))


def expand_word(word: str, args: Mapping[str, str | None]) -> str | None:
    """A shell word of a RUN line with quotes removed and ``$ARG``s substituted; None when it needs a value
    pinrepro cannot know (or is not valid shell). Uses the same lexer as FROM lines."""
    env: dict[str, _Value] = {
        name: value if value is not None else _Opaque(f"ARG {name} has no known value", "unknown")
        for name, value in args.items()
    }
    try:
        return _expand(word, env, "\\").value
    except _SyntaxProblem:
        return None


def apply_edits(text: str, edits: Mapping[tuple[int, int], str]) -> str:
    """``text`` with each ``(start, end)`` span replaced; every other character stays."""
    return _apply(text, edits)


@dataclass(frozen=True)
class Heredoc:
    """The body of one ``<<NAME`` heredoc (leading tabs removed for ``<<-``)."""

    name: str
    line: int  # the first body line
    body: str  # the body lines joined with "\n", without the terminator


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
    offsets: tuple[int, ...] = field(default=(), repr=False)  # per character of text: its offset in the file
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
        if not _is_json_form(rest):
            return None
        value: list[str] = json.loads(rest)
        return value

    def pairs(self) -> list[tuple[str, str | None]]:
        """``ENV``/``ARG``/``LABEL`` arguments as (name, value as written or None): ``A=1 B="x y"``, ``ENV A 1``."""
        words = [self.text[a:b] for a, b in _arg_words(self.text, self.rest_at, self.escape)]
        if self.command == "env" and words and "=" not in words[0]:
            # The legacy form ``ENV NAME value with spaces``.
            return [(words[0], self.text[self.rest_at:].strip()[len(words[0]):].strip())]
        result: list[tuple[str, str | None]] = []
        for word in words:
            name, has_value, value = word.partition("=")
            result.append((name, value if has_value else None))
        return result


@dataclass(frozen=True)
class Stage:
    """A build stage: its FROM and every instruction up to the next FROM (the FROM itself first)."""

    index: int
    site: FromSite
    instructions: tuple[Instruction, ...]

    @property
    def name(self) -> str | None:
        return self.site.stage_name

    def label(self) -> str:
        """How findings name the stage: its AS name, else its index (what ``COPY --from=0`` uses)."""
        return self.name if self.name else str(self.index)


def instructions(text: str, path: str = "Dockerfile") -> tuple[tuple[Instruction, ...], dict[str, str]]:
    """Every logical instruction of ``text``, in order, with its stage index and line span, and the parser
    directives (lower-cased name -> value, e.g. ``{"syntax": "docker/dockerfile:1"}``)."""
    # check and verify's ADD checks read the same files in one run: the reading is done once.
    found, directives = _instructions(text, path)
    return found, dict(directives)


@functools.lru_cache(maxsize=16)
def _instructions(text: str, path: str) -> tuple[tuple[Instruction, ...], tuple[tuple[str, str], ...]]:
    starts = [1 if text.startswith(_BOM) else 0]
    position = text.find("\n")
    while position >= 0:
        starts.append(position + 1)
        position = text.find("\n", position + 1)
    shared = tuple(starts)
    found: list[Instruction] = []
    directives: dict[str, str] = {}
    stage = -1
    for step in _walk(text, path, directives):
        logical = step.logical
        if step.command == "from":
            stage += 1
        flags, rest_at = _builder_flags(logical.text, step.args_at, f"{path}:{logical.line}")
        heredocs = tuple(Heredoc(body.name, body.line, "\n".join(body.lines)) for body in step.bodies)
        found.append(Instruction(
            path=path, line=logical.line, end_line=step.end_line, command=step.command, text=logical.text,
            args_at=step.args_at, flags=tuple(flags), rest_at=rest_at, heredocs=heredocs, stage=stage,
            escape=step.escape, offsets=tuple(logical.offsets), _starts=shared,
        ))
    return tuple(found), tuple(directives.items())


def stages(dockerfile: Dockerfile, read: tuple[Instruction, ...] | None = None) -> tuple[Stage, ...]:
    """The build stages of a parsed Dockerfile, in order (the last one is what ``docker build`` builds).

    ``read`` is ``instructions()`` of the same file, when the caller has it already.
    """
    grouped: dict[int, list[Instruction]] = {}
    for instruction in read if read is not None else instructions(dockerfile.text, dockerfile.path)[0]:
        if instruction.stage >= 0:
            grouped.setdefault(instruction.stage, []).append(instruction)
    return tuple(Stage(index, site, tuple(grouped.get(index, ())))
                 for index, site in enumerate(dockerfile.sites))


def rewrite(dockerfile: Dockerfile, digest_for: Callable[[FromSite], str | None]) -> str:
    """Return the Dockerfile text with each image site pinned to ``digest_for(site)`` (None: leave it)."""
    path = dockerfile.path
    sites, slots = _analyse(dockerfile.text, path)
    edits: dict[tuple[int, int], str] = {}
    arg_choice: dict[str, tuple[str, FromSite]] = {}
    expected = [site.image for site in sites]
    for index, site in enumerate(sites):
        if site.kind != "image" or site.image is None:
            continue
        digest = digest_for(site)
        if digest is None:
            continue
        where = f"{path}:{site.line}"
        if not _DIGEST.fullmatch(digest):
            raise DockerfileError(f"'{digest}' is not a digest for {site.image}", where=where,
                                  fix="pass the digest as sha256:<64 hex digits>")
        base, current = strip_digest(site.image)
        slot = slots[index]
        if slot is None:
            if current == digest:
                continue
            raise DockerfileError(
                f"cannot pin '{site.written}': its digest comes from an ARG value that is not the whole reference",
                where=where,
                fix="write the digest in the FROM line itself, or put the whole reference in one ARG",
            )
        if site.pin_target == "arg" and site.arg_name is not None:
            earlier = arg_choice.get(site.arg_name)
            if earlier is not None and earlier[0] != digest:
                raise DockerfileError(
                    f"ARG {site.arg_name} feeds the FROM lines {earlier[1].line} and {site.line}, which would need "
                    f"different digests ({earlier[0]} and {digest})",
                    where=where,
                    fix="give each FROM its own ARG, or use the same image in both",
                )
            arg_choice[site.arg_name] = (digest, site)
        tag = _implicit_tag(base)
        for start, end, replacement in slot.edits(f"{tag}@{digest}"):
            edits[(start, end)] = replacement
        expected[index] = f"{base}{tag}@{digest}"
    # A pinned ARG also pins every other FROM that uses it as the whole reference.
    for index, site in enumerate(sites):
        if site.pin_target == "arg" and site.arg_name in arg_choice and site.image is not None:
            base = strip_digest(site.image)[0]
            expected[index] = f"{base}{_implicit_tag(base)}@{arg_choice[site.arg_name][0]}"
    new_text = _apply(dockerfile.text, edits)
    if new_text != dockerfile.text:  # an unchanged text names what it named (a lock with nothing to do)
        _check_only_pins_changed(path, sites, expected, new_text)
    return new_text


def _implicit_tag(base: str) -> str:
    """``:latest`` for a reference written without a tag, else nothing.

    ``FROM ubuntu`` means ``ubuntu:latest`` (Docker's rule). Pinning it as ``ubuntu@sha256:...`` would drop
    the tag for good - nobody could tell later which tag to move - so the pin spells the tag out.
    """
    return f":{DEFAULT_TAG}" if ImageRef.parse(base).implicit_tag else ""


# ---------------------------------------------------------------------------------------------------------------
# Reading the file: physical lines -> logical instructions, the way parser.go does it.


class _Line(NamedTuple):
    number: int
    start: int  # offset in the text of the first character (after the BOM on line 1)
    content: str  # without trailing CR/LF characters (parser.go's trimNewline)


def _lines(text: str) -> list[_Line]:
    position = 1 if text.startswith(_BOM) else 0
    pieces = text[position:].split("\n")
    if pieces[-1] == "":
        pieces.pop()  # the text ends with a newline: no line after it
    lines: list[_Line] = []
    for number, piece in enumerate(pieces, start=1):
        lines.append(_Line(number, position, piece.rstrip("\r")))
        position += len(piece) + 1
    return lines


def _is_space(char: str) -> bool:
    # Go's unicode.IsSpace; Python's isspace() also counts the ASCII separators 0x1c-0x1f, Go does not.
    return char.isspace() and char not in "\x1c\x1d\x1e\x1f"


# The same set as _is_space, for a whole run at once (re's \s is str.isspace()).
_LEADING_SPACE = re.compile(r"[^\S\x1c-\x1f]*")
# _is_space's characters spelled out, for character classes that exclude them.
_SPACE_CLASS = "".join(re.escape(c) for c in map(chr, range(0x3001)) if _is_space(c))


def _lstrip_count(text: str) -> int:
    match = _LEADING_SPACE.match(text)
    return match.end() if match else 0


class _Logical:
    """A logical instruction: its text and, per character, the offset it came from in the file."""

    def __init__(self, line: int) -> None:
        self.line = line
        self.offsets: list[int] = []
        # Pieces are joined once, when the text is read: ``text += piece`` per continued line was quadratic
        # (a 100,000-line RUN took seconds).
        self._pieces: list[str] = []
        self._text: str | None = ""

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = "".join(self._pieces)
            self._pieces = [self._text]
        return self._text

    def add(self, piece: str, start: int) -> None:
        self._pieces.append(piece)
        self._text = None
        self.offsets.extend(range(start, start + len(piece)))


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
    return content[_lstrip_count(content):].startswith("#")


@dataclass
class _ArgDecl:
    name: str
    raw: str | None
    offsets: list[int]  # file offsets of the characters of raw
    env: dict[str, _Value]  # what was visible when it was declared


def _analyse(text: str, path: str, platforms: tuple[str, ...] = (),
             runs: list[RunScript] | None = None) -> tuple[tuple[FromSite, ...], list[_Slot | None]]:
    sites: list[FromSite] = []
    slots: list[_Slot | None] = []
    stages: dict[str, int] = {}
    env: dict[str, _Value] = {}
    decls: dict[str, _ArgDecl] = {}
    stage_args: dict[str, str | None] = {}
    # The global ARGs once more per target platform, with BuildKit's TARGET* values filled in.
    platform_envs = [_target_args(platform) for platform in platforms]
    seen_from = False
    for step in _walk(text, path):
        logical, command, args_at, escape = step.logical, step.command, step.args_at, step.escape
        if command == "from":
            seen_from = True
            earlier_stages = set(stages)
            site, slot = _from_site(logical, args_at, path, env, decls, stages, escape)
            if site.kind == "unresolved" and platform_envs and all(
                _expand_or_none(site.written, penv, escape) in earlier_stages for penv in platform_envs
            ):
                site = replace(site, kind="stage", reason=None)
            sites.append(site)
            slots.append(slot)
            stage_args = {}
        elif command == "arg" and not seen_from:
            _declare_args(logical, args_at, env, decls, escape)
            for penv in platform_envs:
                _declare_args(logical, args_at, penv, {}, escape)
        elif command == "arg":
            _declare_stage_args(logical.text[args_at:], env, stage_args, escape)
        if runs is not None and command == "run" and sites:
            where = f"{path}:{logical.line}"
            flags, rest_at = _builder_flags(logical.text, args_at, where)
            common = {"path": path, "line": logical.line, "stage": len(sites) - 1, "args": dict(stage_args),
                      "flags": tuple(flags)}
            runs.append(RunScript(script=logical.text[rest_at:], offsets=tuple(logical.offsets[rest_at:]),
                                  **common))  # type: ignore[arg-type]
            for body in step.bodies:
                runs.append(RunScript(script=body.text, offsets=body.offsets, heredoc=True,
                                      **common))  # type: ignore[arg-type]
    return tuple(sites), slots


@dataclass(frozen=True)
class _Body:
    """One heredoc body as read: for RUN readers (text with its file offsets) and for check (lines)."""

    name: str
    line: int  # the first body line
    lines: tuple[str, ...]  # as the command gets them (leading tabs removed for <<-)
    text: str  # the raw lines, each ending in "\n"
    offsets: tuple[int, ...]  # the file offset of each character of text


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
        skip = _lstrip_count(first.content)
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
            if _is_comment(line.content) or not line.content[_lstrip_count(line.content):]:
                continue
            last = line.number
            cut = directives.continuation_cut(line.content)
            logical.add(line.content if cut is None else line.content[:cut], line.start)
        command, args_at = _split_command(logical.text)
        where = f"{path}:{logical.line}"
        bodies: list[_Body] = []
        index = _skip_heredocs(lines, index, logical, command, args_at, where, bodies)
        if bodies:
            last = bodies[-1].line + len(bodies[-1].lines)  # the terminator line
        yield _Step(logical, command, args_at, directives.escape, last, tuple(bodies))
    if directive_values is not None:
        directive_values.update(directives.values)


def _declare_stage_args(text: str, env: Mapping[str, _Value], stage_args: dict[str, str | None],
                        escape: str) -> None:
    """ARGs inside a stage: a default, or the global value re-declared; a --build-arg may override both,
    which pinrepro cannot see, so it reads the defaults as the build's values."""
    for word in _raw_words(text):
        name, has_value, raw = word.partition("=")
        if not name:
            continue
        if has_value:
            known = {k: v for k, v in stage_args.items() if v is not None}
            value = expand_word(raw, known)
            stage_args[name] = value
        else:
            inherited = env.get(name)
            stage_args[name] = inherited if isinstance(inherited, str) else None


def _target_args(platform: str) -> dict[str, _Value]:
    os_name, _, rest = platform.partition("/")
    arch, _, variant = rest.partition("/")
    return {"TARGETPLATFORM": platform, "TARGETOS": os_name, "TARGETARCH": arch, "TARGETVARIANT": variant}


def _expand_or_none(word: str, env: Mapping[str, _Value], escape: str) -> str | None:
    try:
        value = _expand(word, env, escape).value
    except _SyntaxProblem:
        return None
    return value.lower() if value else None


def _split_command(text: str) -> tuple[str, int]:
    """The lower-cased command word and where its arguments start (splitCommand in split_command.go)."""
    start = _lstrip_count(text)
    end = start
    while end < len(text) and text[end] not in _SEPARATORS:
        end += 1
    command = text[start:end].lower()
    while end < len(text) and text[end] in _SEPARATORS:
        end += 1
    return command, end


def _skip_heredocs(lines: list[_Line], index: int, logical: _Logical, command: str, args_at: int,
                   where: str, bodies: list[_Body] | None = None) -> int:
    """Consume the bodies of the heredocs this instruction opens; return the index of the next line.

    ``bodies`` (if given) receives each body: its lines, and its text with the file offset of each character.
    """
    if command == "onbuild":
        sub, sub_at = _split_command(logical.text[args_at:])
        command, args_at = sub, args_at + sub_at
    if command not in _HEREDOC_COMMANDS or "<<" not in logical.text:
        return index
    _, rest_at = _builder_flags(logical.text, args_at, where)
    if _is_json_form(logical.text[rest_at:]):
        return index
    for name, chomp in _heredocs(logical.text):
        first = lines[index].number if index < len(lines) else 0
        content: list[str] = []
        text, offsets = "", list[int]()
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
            text += body + "\n"
            offsets.extend(range(start, start + len(body)))
            offsets.append(start + len(body))
        if bodies is not None:
            bodies.append(_Body(name, first, tuple(content), text, tuple(offsets)))
    return index


def _is_json_form(args: str) -> bool:
    stripped = args.strip()
    if not stripped.startswith("["):
        return False
    try:
        value = json.loads(stripped)
    except ValueError:
        return False
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _heredocs(line: str) -> list[tuple[str, bool]]:
    """(name, chomp) of every heredoc word on the line, in order (heredocsFromLine in parser.go)."""
    found: list[tuple[str, bool]] = []
    for word in _raw_words(line):
        match = _HEREDOC_WORD.fullmatch(word)
        if match is None or not match.group(3):
            continue
        name = _unquote(match.group(3))
        if name:
            found.append((name, match.group(2) == "-"))
    return found


def _raw_words(line: str) -> list[str]:
    """Shell words with quotes and escapes kept as written (BuildKit's lexer with RawQuotes and RawEscapes)."""
    words: list[str] = []
    word = ""
    in_word = False
    position = 0
    while position < len(line):
        char = line[position]
        if char in "'\"":
            end = position + 1
            while end < len(line) and line[end] != char:
                end += 2 if char == '"' and line[end] == "\\" else 1
            word += line[position:end + 1]
            in_word = True
            position = end + 1
            continue
        if char == "\\":
            word += line[position:position + 2]
            in_word = True
            position += 2
            continue
        if _is_space(char):
            if in_word:
                words.append(word)
            word, in_word = "", False
        else:
            word += char
            in_word = True
        position += 1
    if in_word:
        words.append(word)
    return words


_SHELL_OPERATORS = ("&&", "||", ">>", ";", "|", "&", "\n", "(", ")", ">", "<")
_SHELL_OPERATOR_STARTS = frozenset(op[0] for op in _SHELL_OPERATORS)


def shell_tokens(script: str) -> list[ShellToken]:
    """Split a RUN script into words (quotes and escapes kept, as ``_raw_words`` keeps them) and operators.

    Enough of POSIX sh to find commands: quotes, backslashes, ``$(...)``/backticks kept inside a word,
    comments dropped. A redirection's file descriptor (``2>``) stays a word before the operator.
    """
    tokens: list[ShellToken] = []
    position = 0
    start = -1
    depth = 0

    def close(end: int) -> None:
        nonlocal start
        if start >= 0:
            tokens.append(ShellToken(script[start:end], start, end))
            start = -1

    while position < len(script):
        char = script[position]
        if depth == 0 and start < 0 and char == "#":
            newline = script.find("\n", position)
            position = len(script) if newline < 0 else newline
            continue
        if char in "'\"`":
            if start < 0:
                start = position
            end = position + 1
            while end < len(script) and script[end] != char:
                end += 2 if char != "'" and script[end] == "\\" else 1
            position = end + 1
            continue
        if char == "\\":
            if start < 0:
                start = position
            position += 2
            continue
        if char == "$" and script.startswith("$(", position):
            if start < 0:
                start = position
            depth += 1
            position += 2
            continue
        if depth:
            depth += {"(": 1, ")": -1}.get(char, 0)
            position += 1
            continue
        operator = next((op for op in _SHELL_OPERATORS if script.startswith(op, position)), None) \
            if char in _SHELL_OPERATOR_STARTS else None  # most characters start no operator: skip the scan
        if operator is not None or char in " \t\r":
            close(position)
            if operator is not None:
                tokens.append(ShellToken(operator, position, position + len(operator), operator=True))
                position += len(operator)
            else:
                position += 1
            continue
        if start < 0:
            start = position
        position += 1
    close(min(position, len(script)))
    return tokens


def unquote_word(word: str) -> str:
    """A shell word as written (``shell_tokens``) with its quotes and backslash escapes removed; ``$VAR`` stays."""
    return _unquote(word)


def _unquote(word: str) -> str:
    """A heredoc name with its quotes and backslash escapes removed."""
    out: list[str] = []
    position = 0
    while position < len(word):
        char = word[position]
        if char in "'\"":
            end = word.find(char, position + 1)
            end = len(word) if end < 0 else end
            out.append(word[position + 1:end])
            position = end + 1
        elif char == "\\":
            out.append(word[position + 1:position + 2])
            position += 2
        else:
            out.append(char)
            position += 1
    return "".join(out)


# ---------------------------------------------------------------------------------------------------------------
# FROM and global ARG instructions.


def _builder_flags(text: str, start: int, where: str) -> tuple[list[str], int]:
    """Leading ``--flag=value`` words and where the rest starts (extractBuilderFlags in line_parsers.go).

    Flags are unquoted with a plain backslash as the escape, whatever ``# escape=`` says, as BuildKit does.
    """
    flags: list[str] = []
    position = start
    while True:
        while position < len(text) and _is_space(text[position]):
            position += 1
        if not text.startswith("--", position):
            return flags, position
        word = ""
        quote = ""
        while position < len(text):
            char = text[position]
            if not quote and _is_space(char):
                break
            position += 1
            if quote and char == quote:
                quote = ""
            elif not quote and char in "'\"":
                quote = char
            elif char == "\\":
                if position < len(text):
                    word += text[position]
                    position += 1
            else:
                word += char
        if word == "--":
            return flags, position
        flags.append(word)


def _from_platform(flags: list[str], where: str) -> str | None:
    platform: str | None = None
    for flag in flags:
        name, has_value, value = flag[2:].partition("=")
        if name != "platform":
            raise DockerfileError(f"FROM has an unknown flag '--{name}'", where=where,
                                  fix="FROM accepts only --platform=<platform>")
        if not has_value:
            raise DockerfileError("FROM flag '--platform' has no value", where=where,
                                  fix="write --platform=<os>/<arch>, e.g. --platform=linux/amd64")
        if platform is not None:
            raise DockerfileError("FROM has '--platform' twice", where=where, fix="keep one --platform flag")
        platform = value
    return platform


def _from_words(text: str, start: int) -> list[tuple[int, int]]:
    """Whitespace-delimited words (parseStringsWhitespaceDelimited), as spans of the logical text."""
    end = len(text)
    while end > start and _is_space(text[end - 1]):
        end -= 1
    position = start + _lstrip_count(text[start:end])
    spans: list[tuple[int, int]] = []
    while position < end:
        while position < end and text[position] in _SEPARATORS:
            position += 1
        word_start = position
        while position < end and text[position] not in _SEPARATORS:
            position += 1
        if position > word_start:
            spans.append((word_start, position))
    return spans


def _from_site(logical: _Logical, args_at: int, path: str, env: Mapping[str, _Value],
               decls: Mapping[str, _ArgDecl], stages: dict[str, int],
               escape: str) -> tuple[FromSite, _Slot | None]:
    where = f"{path}:{logical.line}"
    text = logical.text
    flags, rest_at = _builder_flags(text, args_at, where)
    platform = _from_platform(flags, where)
    if platform is not None and "$" in platform:
        # `ARG PLATFORM=linux/arm64` + `--platform=$PLATFORM` pulls linux/arm64, as the literal does; only an
        # ARG whose value pinrepro cannot know ($BUILDPLATFORM, $TARGETPLATFORM, no default) stays as written.
        with contextlib.suppress(_SyntaxProblem):
            platform = _expand(platform, env, escape).value or platform
    if platform is not None and "$" not in platform and not _PLATFORM.fullmatch(platform):
        # BuildKit parses it with containerd's platforms.Parse, which refuses this: the build would fail.
        raise DockerfileError(f"FROM --platform '{platform}' is not a platform", where=where,
                              fix="write one platform as os/arch[/variant], e.g. --platform=linux/arm64 (a FROM pulls "
                                  "one platform; the platforms to build go to `docker buildx build --platform`)")
    spans = _from_words(text, rest_at)
    words = [text[a:b] for a, b in spans]
    if not words:
        raise DockerfileError("FROM names no image", where=where, fix=_FROM_USAGE)
    stage_name: str | None = None
    if len(words) == 3 and words[1].lower() == "as":
        stage_name = words[2].lower()
        if not _STAGE_NAME.fullmatch(stage_name):
            raise DockerfileError(f"invalid stage name '{words[2]}'", where=where,
                                  fix="start it with a letter and use only a-z, 0-9, '-', '_' and '.'")
    elif len(words) != 1:
        raise DockerfileError(
            f"FROM takes one image and an optional 'AS <name>', not '{' '.join(words)}'", where=where,
            fix=f"{_FROM_USAGE}; a comment must go on a line of its own",
        )
    written = words[0]
    word_start, _ = spans[0]
    word_offsets = logical.offsets[word_start:word_start + len(written)]
    try:
        expansion = _expand(written, env, escape)
    except _SyntaxProblem as problem:
        raise DockerfileError(f"FROM image '{written}' cannot be expanded: {problem}", where=where,
                              fix="close every quote and write ARG references as $NAME or ${NAME}") from None
    site = FromSite(path=path, line=logical.line, written=written, image=None, kind="unresolved",
                    stage_name=stage_name, platform=platform)
    slot: _Slot | None = None
    value = expansion.value
    if value is None:
        site = replace(site, reason=expansion.reason)
    elif value == "":
        site = replace(site, reason=f"'{written}' expands to an empty image name")
    elif value.lower() in stages:
        site = replace(site, kind="stage", base_stage=value.lower())
    elif value.lower() == "scratch":
        site = replace(site, kind="scratch")
    else:
        try:
            ImageRef.parse(value)
        except InvalidReferenceError as error:
            shown = error.what if value == written else f"{error.what} (written as '{written}')"
            raise DockerfileError(shown, where=where, fix=error.fix) from None
        site, slot = _pin_slot(replace(site, kind="image", image=value), expansion.referenced, word_offsets,
                               env, decls, escape)
    if stage_name is not None:
        if stage_name in stages:
            raise DockerfileError(f"stage name '{stage_name}' is already used on line {stages[stage_name]}",
                                  where=where, fix="give each stage its own name")
        stages[stage_name] = logical.line
    return site, slot


def _declare_args(logical: _Logical, args_at: int, env: dict[str, _Value], decls: dict[str, _ArgDecl],
                  escape: str) -> None:
    """Global ARGs, in order: each default is expanded with the ARGs before it (as dockerfile2llb does)."""
    for start, end in _arg_words(logical.text, args_at, escape):
        word = logical.text[start:end]
        name, has_value, raw = word.partition("=")
        if not name:
            continue
        if not has_value:
            if name not in _PLATFORM_ARGS:
                env[name] = _Opaque(f"ARG {name} has no default", "unset")
            decls.pop(name, None)
            continue
        offsets = logical.offsets[start + len(name) + 1:end]
        decls[name] = _ArgDecl(name, raw, offsets, dict(env))
        try:
            expansion = _expand(raw, env, escape)
        except _SyntaxProblem as problem:
            env[name] = _Opaque(f"the default of ARG {name} cannot be expanded: {problem}", "unknown")
            continue
        env[name] = expansion.value if expansion.value is not None else _Opaque(str(expansion.reason), "unknown")


def _arg_words(text: str, start: int, escape: str) -> list[tuple[int, int]]:
    """Words of an ARG line; quotes may hold spaces (parseWords in line_parsers.go)."""
    spans: list[tuple[int, int]] = []
    position = start
    # Runs of characters that change nothing, skipped in one step (per-character steps made long lines slow).
    plain = {"": re.compile("[^" + _SPACE_CLASS + "'\"" + re.escape(escape) + "]+"),
             '"': re.compile(r'[^"' + re.escape(escape) + r"]+"), "'": re.compile(r"[^']+")}
    while position < len(text):
        spaces = _LEADING_SPACE.match(text, position)
        position = spaces.end() if spaces else position
        if position >= len(text):
            break
        word_start = position
        quote = ""
        while position < len(text):
            run = plain[quote].match(text, position)
            if run is not None:
                position = run.end()
                continue
            char = text[position]
            if not quote and _is_space(char):
                break
            if quote and char == quote:
                quote = ""
            elif not quote and char in "'\"":
                quote = char
            elif char == escape and quote != "'":
                position += 1
            position += 1
        spans.append((word_start, min(position, len(text))))
    return spans


# ---------------------------------------------------------------------------------------------------------------
# Shell-word expansion of FROM images and ARG defaults (shell/lex.go).


@dataclass(frozen=True)
class _Opaque:
    """An ARG whose value pinrepro cannot know: no default, or set by BuildKit per platform."""

    reason: str
    state: Literal["unset", "nonempty", "unknown"]


_Value: TypeAlias = str | _Opaque


class _SyntaxProblem(Exception):
    """A word BuildKit would refuse to expand (unterminated quote, bad ${...})."""


@dataclass(frozen=True)
class _Expansion:
    value: str | None  # None: depends on something unknown
    reason: str | None
    referenced: bool  # whether the word uses any ARG at all


def _expand(word: str, env: Mapping[str, _Value], escape: str) -> _Expansion:
    if "$" not in word and "'" not in word and '"' not in word and escape not in word:
        return _Expansion(word, None, False)  # nothing to expand: the lexer would copy it character by character
    lexer = _Lexer(word, env, escape)
    value, reason = lexer.word(None)
    if reason is not None:
        return _Expansion(None, reason, True)
    return _Expansion(value, None, lexer.referenced)


_SPECIAL: dict[tuple[str, str | None], re.Pattern[str]] = {}
_MAX_NESTING = 32  # ${A:-${B:-...}} levels; BuildKit has no limit, but no real Dockerfile nests deeper


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, _Value], escape: str) -> None:
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
            raise _SyntaxProblem(f"missing '{stop}'")
        return "".join(out), reason

    def _single_quoted(self) -> str:
        self.position += 1
        end = self.text.find("'", self.position)
        if end < 0:
            raise _SyntaxProblem("a single quote is not closed")
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
                raise _SyntaxProblem("a double quote is not closed")
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

    def _lookup(self, name: str) -> _Value:
        if name in self.env:
            return self.env[name]
        if name in _PLATFORM_ARGS:
            return _Opaque(f"{name} is set by BuildKit for each platform it builds", "nonempty")
        # Undeclared ARGs expand to "" in BuildKit; --build-arg cannot set them either.
        return _Opaque(f"ARG {name} is not declared before the first FROM", "unset")

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
            raise _SyntaxProblem("missing '}'")
        self.depth += 1
        if self.depth > _MAX_NESTING:
            raise _SyntaxProblem(f"${{...}} nested more than {_MAX_NESTING} levels deep")
        try:
            return self._braced(char)
        finally:
            self.depth -= 1

    def _braced(self, char: str) -> tuple[str, str | None]:
        if char in "{}:":
            raise _SyntaxProblem("bad substitution")
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
                raise _SyntaxProblem(f"unsupported modifier ':{modifier or ''}' in ${{{name}...}}")
            operator += modifier
        elif operator is None:
            raise _SyntaxProblem("missing '}'")
        elif operator in "#%/":
            self.word("}")
            return "", f"${{{name}{operator}...}} is not evaluated by pinrepro"
        elif operator not in "-+?":
            raise _SyntaxProblem("bad substitution")
        word, why = self.word("}")
        return _modified(name, value, operator, word, why)


def _bare(value: _Value) -> tuple[str, str | None]:
    if isinstance(value, str):
        return value, None
    return "", value.reason


def _modified(name: str, value: _Value, operator: str, word: str, why: str | None) -> tuple[str, str | None]:
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


def _opaque_reason(value: _Value) -> str:
    return value.reason if isinstance(value, _Opaque) else ""


# ---------------------------------------------------------------------------------------------------------------
# Where a digest goes, and the rewrite itself.


@dataclass(frozen=True)
class _Slot:
    """The characters (by file offset) that a ``@digest`` replaces, or the offset it is inserted at."""

    offsets: tuple[int, ...]
    insert_at: int

    def edits(self, replacement: str) -> list[tuple[int, int, str]]:
        if not self.offsets:
            return [(self.insert_at, self.insert_at, replacement)]
        runs: list[list[int]] = []
        for offset in self.offsets:
            if runs and runs[-1][1] == offset:
                runs[-1][1] = offset + 1
            else:
                runs.append([offset, offset + 1])
        # The first run takes the new text; later runs (a reference split by a line continuation) are dropped.
        return [(start, end, replacement if i == 0 else "") for i, (start, end) in enumerate(runs)]


def _digest_span(raw: str) -> tuple[int, int]:
    """Where in a written word ``@digest`` goes: over an existing ``@digest`` suffix, else at the end.

    A word that is one quoted string (``"img:tag"``) keeps its quotes: the digest goes inside them.
    """
    start, end = 0, len(raw)
    if len(raw) >= 2 and raw[0] in "'\"" and raw[-1] == raw[0] and raw.find(raw[0], 1) == len(raw) - 1:
        start, end = 1, len(raw) - 1
    match = _DIGEST_SUFFIX.search(raw[start:end])
    if match is not None:
        return start + match.start(), end
    return end, end


def _make_slot(raw: str, offsets: list[int], env: Mapping[str, _Value], escape: str,
               expected_base: str) -> _Slot | None:
    """The slot for ``raw``, if putting a digest there really yields ``expected_base@digest``."""
    span_start, span_end = _digest_span(raw)
    probe = raw[:span_start] + "@" + _PROBE_DIGEST + raw[span_end:]
    try:
        result = _expand(probe, env, escape).value
    except _SyntaxProblem:
        return None
    if result != f"{expected_base}@{_PROBE_DIGEST}" or len(offsets) != len(raw) or not offsets:
        return None
    insert_at = offsets[span_start - 1] + 1 if span_start > 0 else offsets[0]
    return _Slot(tuple(offsets[span_start:span_end]), insert_at)


def _read_args(word: str, env: Mapping[str, _Value], escape: str) -> tuple[str, ...]:
    lexer = _Lexer(word, env, escape)
    with contextlib.suppress(_SyntaxProblem):  # parse() already reported a word that cannot be expanded
        lexer.word(None)
    return tuple(dict.fromkeys(name for name in lexer.names if name not in _PLATFORM_ARGS))


def _pin_slot(site: FromSite, referenced: bool, word_offsets: list[int], env: Mapping[str, _Value],
              decls: Mapping[str, _ArgDecl], escape: str) -> tuple[FromSite, _Slot | None]:
    site, slot = _place_pin(site, referenced, word_offsets, env, decls, escape)
    if site.pin_target == "arg" and site.arg_name is not None and site.arg_name in decls:
        decl = decls[site.arg_name]
        names = _read_args(decl.raw or "", decl.env, escape)
    else:
        names = _read_args(site.written, env, escape)
    return replace(site, build_args=names), slot


def _place_pin(site: FromSite, referenced: bool, word_offsets: list[int], env: Mapping[str, _Value],
               decls: Mapping[str, _ArgDecl], escape: str) -> tuple[FromSite, _Slot | None]:
    assert site.image is not None
    base, _ = strip_digest(site.image)
    whole = _WHOLE_ARG.fullmatch(site.written)
    if whole is not None:
        name = whole.group(2) or whole.group(3)
        decl = decls.get(name)
        # ARG B=${A}: the image lives in A's default, so the digest goes there - once, for every FROM that
        # reaches A, instead of once more in B's default (which would read "image@digest@digest").
        seen = {name}
        while decl is not None and decl.raw is not None and (inner := _WHOLE_ARG.fullmatch(decl.raw)):
            source = inner.group(2) or inner.group(3)
            source_decl = decls.get(source)
            if source in seen or source_decl is None or decl.env.get(source) != env.get(name):
                break
            seen.add(source)
            name, decl = source, source_decl
        if decl is not None and decl.raw is not None:
            slot = _make_slot(decl.raw, decl.offsets, decl.env, escape, base)
            if slot is not None:
                return replace(site, pin_target="arg", arg_name=name), slot
            return site, None
    slot = _make_slot(site.written, word_offsets, env, escape, base)
    if slot is None:
        return site, None
    return replace(site, pin_target="expression" if referenced else "literal"), slot


def _apply(text: str, edits: Mapping[tuple[int, int], str]) -> str:
    pieces: list[str] = []
    position = 0
    for (start, end), replacement in sorted(edits.items()):
        pieces.append(text[position:start])
        pieces.append(replacement)
        position = max(position, end)
    pieces.append(text[position:])
    return "".join(pieces)


def _check_only_pins_changed(path: str, before: tuple[FromSite, ...], expected: list[str | None],
                             new_text: str) -> None:
    """Re-read the result: each FROM must name what it named before, plus exactly the digest asked for.

    This catches an ARG whose default also feeds another ARG or another FROM in a way a pin would change.
    """
    try:
        after, _ = _analyse(new_text, path)
    except DockerfileError as error:
        raise DockerfileError(f"pinning would break this FROM: {error.what}", where=error.where,
                              fix=_SHARED_ARG_FIX) from None
    for old, new, want in zip(before, after, expected, strict=True):
        if (new.kind, new.image) != (old.kind, want):
            raise DockerfileError(
                f"pinning would change the FROM on this line from '{old.image or old.written}' to "
                f"'{new.image or new.written}'",
                where=f"{path}:{old.line}",
                fix=_SHARED_ARG_FIX,
            )
