"""Words of an instruction's arguments, split as BuildKit splits them (moby/buildkit
``frontend/dockerfile/parser/line_parsers.go``, ``split_command.go`` and ``instructions/parse.go``).

Not the shell: these keep quotes and escapes as written, and only say where each word starts and ends; the
reader (reader.py) finds heredoc names and flags with them, FROM and ARG sites (pin.py) their words.
"""

from __future__ import annotations

import functools
import json
import re

_QUOTING = re.compile(r"['\"\\\\]")
# reWhitespace in parser.go: what separates a command from its arguments and FROM's arguments from each other.
SEPARATORS = "\t\v\f\r "


def is_space(char: str) -> bool:
    # Go's unicode.IsSpace; Python's isspace() also counts the ASCII separators 0x1c-0x1f, Go does not.
    return char.isspace() and char not in "\x1c\x1d\x1e\x1f"


# The same set as is_space, for a whole run at once (re's \s is str.isspace()).
LEADING_SPACE = re.compile(r"[^\S\x1c-\x1f]*")

# is_space's characters spelled out, for character classes that exclude them.
SPACE_CLASS = "".join(re.escape(c) for c in map(chr, range(0x3001)) if is_space(c))


def lstrip_count(text: str) -> int:
    match = LEADING_SPACE.match(text)
    return match.end() if match else 0


def split_command(text: str) -> tuple[str, int]:
    """The lower-cased command word and where its arguments start (splitCommand in split_command.go)."""
    start = lstrip_count(text)
    end = start
    while end < len(text) and text[end] not in SEPARATORS:
        end += 1
    command = text[start:end].lower()
    while end < len(text) and text[end] in SEPARATORS:
        end += 1
    return command, end


def raw_words(line: str) -> list[str]:
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
        if is_space(char):
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


def unquote_word(word: str) -> str:
    """A word as written (``raw_words``, ``commands.shell_tokens``) with its quotes and backslash escapes
    removed; ``$VAR`` stays. Heredoc names are read with it too."""
    if not _QUOTING.search(word):
        return word  # most words have nothing to remove
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


def builder_flags(text: str, start: int, where: str) -> tuple[list[str], int]:
    """Leading ``--flag=value`` words and where the rest starts (extractBuilderFlags in line_parsers.go).

    Flags are unquoted with a plain backslash as the escape, whatever ``# escape=`` says, as BuildKit does.
    """
    flags: list[str] = []
    position = start
    while True:
        while position < len(text) and is_space(text[position]):
            position += 1
        if not text.startswith("--", position):
            return flags, position
        word = ""
        quote = ""
        while position < len(text):
            char = text[position]
            if not quote and is_space(char):
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


def from_words(text: str, start: int) -> list[tuple[int, int]]:
    """Whitespace-delimited words (parseStringsWhitespaceDelimited), as spans of the logical text."""
    end = len(text)
    while end > start and is_space(text[end - 1]):
        end -= 1
    position = start + lstrip_count(text[start:end])
    spans: list[tuple[int, int]] = []
    while position < end:
        while position < end and text[position] in SEPARATORS:
            position += 1
        word_start = position
        while position < end and text[position] not in SEPARATORS:
            position += 1
        if position > word_start:
            spans.append((word_start, position))
    return spans


@functools.cache
def _arg_plain(escape: str) -> dict[str, re.Pattern[str]]:
    """Per quote state, the runs of characters that change nothing, skipped in one step (per-character steps
    made long lines slow); built once per escape character, not once per ARG line."""
    return {"": re.compile("[^" + SPACE_CLASS + "'\"" + re.escape(escape) + "]+"),
            '"': re.compile(r'[^"' + re.escape(escape) + r"]+"), "'": re.compile(r"[^']+")}


def arg_words(text: str, start: int, escape: str) -> list[tuple[int, int]]:
    """Words of an ARG line; quotes may hold spaces (parseWords in line_parsers.go)."""
    spans: list[tuple[int, int]] = []
    position = start
    plain = _arg_plain(escape)
    while position < len(text):
        spaces = LEADING_SPACE.match(text, position)
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
            if not quote and is_space(char):
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


def is_json_form(args: str) -> bool:
    stripped = args.strip()
    if not stripped.startswith("["):
        return False
    try:
        value = json.loads(stripped)
    except ValueError:
        return False
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
