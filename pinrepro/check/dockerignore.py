"""Docker's .dockerignore semantics, exactly: which paths of a build context are left out.

Written from moby's rules (github.com/moby/patternmatcher ``patternmatcher.go`` and ``ignorefile/ignorefile.go``,
which BuildKit uses when it sends the context), because no maintained Python library follows them faithfully:

- reading: a line whose first character is ``#`` is a comment (``  # x`` is a pattern); lines are trimmed;
  ``!`` marks an exception; each pattern is cleaned like Go's ``filepath.Clean`` (``./a//b/`` -> ``a/b``) and a
  leading ``/`` is dropped, so ``/foo`` and ``foo`` both mean ``foo`` at the context root;
- matching: Go's ``filepath.Match`` rules (``*`` and ``?`` never cross ``/``, ``[...]`` classes, ``\\`` escapes)
  plus ``**`` for any number of directories, zero included; a pattern also excludes everything below a
  directory it matches;
- the last pattern that matches a path decides: ``*.md`` then ``!README.md`` keeps README.md;
- a malformed pattern (``[a``, a trailing ``\\``, a lone ``!``) fails the build, so it is an error here too.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

_BOM = "\ufeff"
_ESCAPED = frozenset(".+()|{}$")  # regexp specials with no meaning in filepath.Match (shouldEscape)
MatchKind = Literal["exact", "prefix", "suffix", "regexp"]


class PatternError(ValueError):
    """A pattern Docker refuses (the build fails with "syntax error in pattern")."""


def go_clean(path: str) -> str:
    """Go's ``filepath.Clean`` for slash paths: lexical ``.``/``..`` processing, no trailing or double ``/``."""
    if not path:
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def read_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore file, as ``ignorefile.ReadAll`` returns them."""
    patterns: list[str] = []
    for number, raw in enumerate(text.splitlines()):
        line = raw[1:] if number == 0 and raw.startswith(_BOM) else raw
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


@dataclass(frozen=True)
class Pattern:
    text: str  # cleaned, without "!"
    exclusion: bool  # a "!" exception: matching paths are kept
    kind: MatchKind
    regex: re.Pattern[str] | None

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            # "**/foo" also matches "foo" itself.
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert self.regex is not None
        return self.regex.match(path) is not None


class Matcher:
    """``patternmatcher.New`` + ``MatchesOrParentMatches``: is a context path excluded?"""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns: list[Pattern] = []
        for raw in patterns:
            text = raw.strip()
            if not text:
                continue
            text = go_clean(text)
            exclusion = text.startswith("!")
            if exclusion:
                if len(text) == 1:
                    raise PatternError('illegal exclusion pattern: "!"')
                text = text[1:]
            _validate(text)
            kind, regex = _compile(text)
            self.patterns.append(Pattern(text, exclusion, kind, regex))

    @property
    def has_exclusions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def excluded(self, path: str) -> bool:
        """Whether ``path`` (slash-separated, relative to the context root) is left out of the context."""
        path = go_clean(path)
        if path == ".":
            return False
        parent = path.rsplit("/", 1)[0] if "/" in path else "."
        parents = parent.split("/")
        matched = False
        for pattern in self.patterns:
            # An exception only matters for a path already excluded, and an exclusion only for one that is not.
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path)
            if not hit and parent != ".":
                hit = any(pattern.match("/".join(parents[:i + 1])) for i in range(len(parents)))
            if hit:
                matched = not pattern.exclusion
        return matched


def _validate(pattern: str) -> None:
    """Raise PatternError where Go's ``filepath.Match(pattern, ".")`` reports ErrBadPattern."""
    i = 0
    n = len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\":
            if i + 1 >= n:
                raise PatternError(f"syntax error in pattern '{pattern}': it ends with a backslash")
            i += 2
            continue
        if char != "[":
            i += 1
            continue
        i += 1
        if i < n and pattern[i] == "^":
            i += 1
        ranges = 0
        while True:
            if i < n and pattern[i] == "]" and ranges > 0:
                i += 1
                break
            i = _class_char(pattern, i)
            if i < n and pattern[i] == "-":
                i = _class_char(pattern, i + 1)
            ranges += 1


def _class_char(pattern: str, i: int) -> int:
    """getEsc in Go's path/filepath: one character of a [...] class; '-' and ']' must be escaped there."""
    if i >= len(pattern) or pattern[i] in "-]":
        raise PatternError(f"syntax error in pattern '{pattern}': a [...] class is not closed or is malformed")
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise PatternError(f"syntax error in pattern '{pattern}': it ends with a backslash")
    return i + 1


def _compile(pattern: str) -> tuple[MatchKind, re.Pattern[str] | None]:
    """The pattern as a regexp, or one of moby's shortcuts (exact, ``foo/**`` prefix, ``**/foo`` suffix)."""
    regex = "^"
    kind: MatchKind = "exact"
    i = 0
    step = 0
    n = len(pattern)
    while i < n:
        char = pattern[i]
        i += 1
        if char == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":  # "**/" is "**"
                    i += 1
                if i >= n:
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        regex += ".*"
                        kind = "regexp"
                else:
                    regex += "(.*/)?"
                    kind = "regexp"
                if step == 0:
                    kind = "suffix"
            else:
                regex += "[^/]*"
                kind = "regexp"
        elif char == "?":
            regex += "[^/]"
            kind = "regexp"
        elif char in _ESCAPED:
            regex += "\\" + char
        elif char == "\\":
            if i < n:
                regex += "\\" + pattern[i]
                i += 1
                kind = "regexp"
            else:
                regex += "\\\\"
        elif char in "[]":
            regex += char
            kind = "regexp"
        else:
            regex += char  # as moby does: even "^" goes into the regexp as it is
        step += 1
    if kind != "regexp":
        return kind, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # Python warns about "[[" that Go reads literally
            return "regexp", re.compile(regex + r"\Z")
    except re.error as error:
        raise PatternError(f"syntax error in pattern '{pattern}': {error}") from None
