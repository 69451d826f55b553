"""Build contexts: where a Dockerfile's ``COPY`` sources come from, and what .dockerignore leaves in.

Which directory is the context is the builder's command line, which pinrepro cannot see. It takes the
Dockerfile's own directory, unless the Dockerfile's COPY sources exist only at the project root (the usual
``docker build -f docker/Dockerfile .``). The ignore file is BuildKit's choice: ``<Dockerfile>.dockerignore``
next to the Dockerfile when there is one, else ``.dockerignore`` at the context root.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pinrepro.check.dockerignore import Matcher, PatternError, read_patterns
from pinrepro.check.model import DockerfileView
from pinrepro.dockerfile import Instruction, add_arguments
from pinrepro.errors import PinreproError

MODEL_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".gguf", ".ggml", ".h5", ".pb",
                            ".tflite", ".engine", ".plan", ".mar", ".nemo"})
# A walk stops counting after this many entries: enough to tell "too large", bounded on a huge tree.
_WALK_LIMIT = 200_000


class DockerignoreError(PinreproError):
    """A .dockerignore Docker itself would refuse."""


def is_model_file(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in MODEL_SUFFIXES


@dataclass
class Context:
    root: Path  # the context directory
    name: str  # it, relative to the project root ("." for the root)
    ignore_file: Path | None
    ignore_name: str | None  # the ignore file relative to the project root
    matcher: Matcher = field(default_factory=lambda: Matcher([]))

    def excluded(self, relative: str) -> bool:
        return self.matcher.excluded(relative)


@dataclass(frozen=True)
class Walk:
    size: int
    model_files: tuple[str, ...]  # relative to the context, not excluded
    truncated: bool


def copy_sources(instruction: Instruction) -> list[str]:
    """The context sources of a COPY/ADD: not ``--from`` another stage or image, not URLs, not heredocs."""
    if instruction.flag("from") is not None:
        return []
    # The words as BuildKit splits them (quotes removed, JSON form decoded): the one Dockerfile reader's.
    words = add_arguments(instruction)
    return [w for w in words[:-1] if "://" not in w and not w.startswith("<<") and not w.startswith("git@")]


def context_for(project: Path, view: DockerfileView) -> Context:
    dockerfile = project / view.path
    here = dockerfile.parent
    sources = [s for stage in view.stages for i in stage.instructions if i.command in ("copy", "add")
               for s in copy_sources(i) if s not in (".", "./") and not any(c in s for c in "*?[$")]
    directory = here
    if sources and here != project and not any((here / s).exists() for s in sources) \
            and any((project / s).exists() for s in sources):
        directory = project
    own = dockerfile.with_name(dockerfile.name + ".dockerignore")
    ignore = own if own.is_file() else directory / ".dockerignore"
    ignore_file = ignore if ignore.is_file() else None
    name = directory.relative_to(project).as_posix() if directory != project else "."
    context = Context(directory, name, ignore_file,
                      ignore_file.relative_to(project).as_posix() if ignore_file else None)
    if ignore_file is not None:
        try:
            text = ignore_file.read_text(encoding="utf-8")
            context.matcher = Matcher(read_patterns(text))
        except (OSError, UnicodeDecodeError) as exc:
            raise DockerignoreError(f"cannot read it: {exc}", where=context.ignore_name,
                                    fix="save it as UTF-8 text") from None
        except PatternError as exc:
            raise DockerignoreError(str(exc), where=context.ignore_name,
                                    fix="fix the pattern: Docker refuses to build with it") from None
    return context


def walk(context: Context, source: str) -> Walk:
    """Size and model files of ``source`` (a file or directory inside the context) after .dockerignore."""
    start = PurePosixPath(source.lstrip("/")).as_posix()
    start = "" if start in (".", "") else start
    base = context.root / start if start else context.root
    size = 0
    models: list[str] = []
    if base.is_file() and not base.is_symlink():
        if not context.excluded(start):
            size = base.stat().st_size
            if is_model_file(start):
                models.append(start)
        return Walk(size, tuple(models), False)
    for seen, (relative, entry_size, is_model) in enumerate(_entries(context, base), start=1):
        if seen > _WALK_LIMIT:
            return Walk(size, tuple(models), True)
        size += entry_size
        if is_model:
            models.append(relative)
    return Walk(size, tuple(sorted(models)), False)


def _entries(context: Context, base: Path) -> Iterator[tuple[str, int, bool]]:
    prefixes = [p.text + "/" for p in context.matcher.patterns if p.exclusion]
    wild = any(p.exclusion and p.text[:1] in "*?[" for p in context.matcher.patterns)
    for directory, dirs, files in os.walk(base):
        rel_dir = Path(directory).relative_to(context.root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        kept = []
        for name in sorted(dirs):
            relative = f"{rel_dir}/{name}" if rel_dir else name
            if os.path.islink(os.path.join(directory, name)):
                continue
            # An excluded directory is skipped unless an exception could bring something below it back.
            if context.excluded(relative) and not wild and not any(p.startswith(relative + "/") for p in prefixes):
                continue
            kept.append(name)
        dirs[:] = kept
        for name in files:
            relative = f"{rel_dir}/{name}" if rel_dir else name
            path = os.path.join(directory, name)
            if context.excluded(relative) or os.path.islink(path):
                continue
            try:
                entry_size = os.stat(path).st_size
            except OSError:
                continue
            yield relative, entry_size, is_model_file(name)
