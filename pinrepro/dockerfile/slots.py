"""Where a FROM's digest goes: after the reference in FROM, after the ARG expression, or into the default of
the global ARG that holds the whole reference - and only where the expanded result is exactly ``image@digest``.

Every slot is checked by expanding the word with a probe digest in place, with the same lexer as the build
(shell.py), so a slot never yields a reference other than the one the FROM names plus the digest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from pinrepro.dockerfile.model import FromSite, strip_digest
from pinrepro.dockerfile.shell import SyntaxProblem, Value, expand, read_args

_DIGEST_TEXT = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}"
DIGEST = re.compile(_DIGEST_TEXT)
_DIGEST_SUFFIX = re.compile("@" + _DIGEST_TEXT + r"\Z")
_WHOLE_ARG = re.compile(r'("?)\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})\1')
_PROBE_DIGEST = "sha256:" + "0" * 64


@dataclass
class ArgDecl:
    name: str
    raw: str | None
    offsets: list[int]  # file offsets of the characters of raw
    env: Mapping[str, Value]  # what was visible when it was declared (a scope.Snapshot)


@dataclass(frozen=True)
class Slot:
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


def _make_slot(raw: str, offsets: list[int], env: Mapping[str, Value], escape: str,
               expected_base: str) -> Slot | None:
    """The slot for ``raw``, if putting a digest there really yields ``expected_base@digest``."""
    span_start, span_end = _digest_span(raw)
    probe = raw[:span_start] + "@" + _PROBE_DIGEST + raw[span_end:]
    try:
        result = expand(probe, env, escape).value
    except SyntaxProblem:
        return None
    if result != f"{expected_base}@{_PROBE_DIGEST}" or len(offsets) != len(raw) or not offsets:
        return None
    insert_at = offsets[span_start - 1] + 1 if span_start > 0 else offsets[0]
    return Slot(tuple(offsets[span_start:span_end]), insert_at)


def pin_slot(site: FromSite, referenced: bool, word_offsets: list[int], env: Mapping[str, Value],
              decls: Mapping[str, ArgDecl], escape: str) -> tuple[FromSite, Slot | None]:
    site, slot = _place_pin(site, referenced, word_offsets, env, decls, escape)
    if site.pin_target == "arg" and site.arg_name is not None and site.arg_name in decls:
        decl = decls[site.arg_name]
        names = read_args(decl.raw or "", decl.env, escape)
    else:
        names = read_args(site.written, env, escape)
    return replace(site, build_args=names), slot


def _place_pin(site: FromSite, referenced: bool, word_offsets: list[int], env: Mapping[str, Value],
               decls: Mapping[str, ArgDecl], escape: str) -> tuple[FromSite, Slot | None]:
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
