"""FROM sites in a Dockerfile, and a rewrite that pins them to digests and touches nothing else.

The reading follows BuildKit's Dockerfile frontend (moby/buildkit ``frontend/dockerfile/parser/parser.go``,
``directives.go``, ``line_parsers.go`` and ``shell/lex.go``, https://github.com/moby/buildkit), because that is
what decides what a build pulls. One reader for every command that reads a Dockerfile:

- reader.py: physical lines -> logical instructions (parser directives, continuations, heredocs), with the
  line span and file offsets of each (``instructions()``; offsets.py keeps the offsets as runs);
- words.py: the words of an instruction's arguments as BuildKit splits them (flags, FROM and ARG words);
- shell.py: shell-word expansion of ARGs (BuildKit's ``shell/lex.go``);
- commands.py: a RUN script's shell tokens and simple commands, for the checks that read RUN lines;
- pin.py, slots.py, rewrite.py: FROM sites and the ARGs they see (``parse``; scope.py keeps the ARGs in
  scope at each line), where each digest goes, and the rewrite (``rewrite``); model.py holds what they return.

Every reader is linear in the size of the file (tests/test_dockerfile_linear.py, bench/parse.py).

Pure: no I/O. ``parse`` takes text, ``rewrite`` returns text; every byte that is not part of an image reference
(or of the ARG default that holds one) comes back unchanged, CRLF, BOM and missing final newline included.
"""

from __future__ import annotations

from pinrepro.dockerfile.commands import ShellToken, shell_tokens
from pinrepro.dockerfile.model import Dockerfile, FromSite, Kind, PinTarget, RunScript, Stage, strip_digest
from pinrepro.dockerfile.pin import parse, stages
from pinrepro.dockerfile.reader import Heredoc, Instruction, add_arguments, instructions
from pinrepro.dockerfile.rewrite import apply_edits, rewrite
from pinrepro.dockerfile.shell import expand_word
from pinrepro.dockerfile.words import unquote_word

__all__ = [
    "Dockerfile", "FromSite", "Heredoc", "Instruction", "Kind", "PinTarget", "RunScript", "ShellToken", "Stage",
    "add_arguments", "apply_edits", "expand_word", "instructions", "parse", "rewrite", "shell_tokens", "stages",
    "strip_digest", "unquote_word",
]
