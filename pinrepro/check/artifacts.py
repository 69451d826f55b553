"""Checklist items 7 (model artifacts loaded at run time, not baked in) and 8 (.dockerignore excludes what
it should)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from pinrepro.check.context import Context, context_for, copy_sources, is_model_file, walk
from pinrepro.check.dockerignore import go_clean
from pinrepro.check.model import CheckContext, DockerfileView, finding
from pinrepro.dockerfile import Instruction, Stage
from pinrepro.dockerfile.commands import Command, commands
from pinrepro.findings import Finding

_PYTHON_DOWNLOADS = re.compile(r"\b(?:snapshot_download|hf_hub_download|from_pretrained)\s*\(")
_URL_FILE = re.compile(r"^https?://", re.IGNORECASE)
# What .dockerignore must leave out (item 8): a label, and context paths that must all be excluded.
_REQUIRED: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (".git", (".git",), ".git"),
    (".env", (".env",), ".env"),
    ("wandb/", ("wandb",), "wandb/"),
    ("mlruns/", ("mlruns",), "mlruns/"),
    ("notebooks", ("notebooks/eda.ipynb", "eda.ipynb"), "**/*.ipynb"),
    ("data directories", ("data",), "data/"),
    ("caches", ("pkg/__pycache__/mod.cpython-311.pyc",), "**/__pycache__"),
    ("model files", ("model.safetensors", "checkpoints/last.ckpt", "model.pt"),
     "**/*.safetensors\n**/*.ckpt\n**/*.pt"),
)
_DATA_DIRS = ("data", "datasets", "dataset", "checkpoints", "models", "outputs", ".cache", ".venv")


def check(ctx: CheckContext) -> Iterator[Finding]:
    for view in ctx.dockerfiles:
        yield from _downloads(view)
        copies = [(stage, i) for stage in view.stages for i in stage.instructions if i.command in ("copy", "add")]
        if not any(copy_sources(i) for _, i in copies):
            continue
        context = context_for(ctx.root, view)
        final = {stage.index for stage in view.final}
        for stage, instruction in copies:
            if stage.index in final:
                yield from _baked(ctx, view, context, stage, instruction)
        whole = [(stage, i) for stage, i in copies if any(s.rstrip("/") in (".", "") for s in copy_sources(i))]
        if whole:
            yield from _dockerignore(view, context, whole[0][0], whole[0][1])


def _baked(ctx: CheckContext, view: DockerfileView, context: Context, stage: Stage,
           instruction: Instruction) -> Iterator[Finding]:
    limit = ctx.settings.model_size_limit
    verb = instruction.command.upper()
    for source in copy_sources(instruction):
        if is_model_file(source):
            yield finding("model-in-image", view.path, instruction.line, f"{verb} {source} bakes model weights "
                          "into the image", stage=stage)
            continue
        paths = _expand(context, source)
        for path in paths:
            result = walk(context, path)
            shown = "the build context" if path in (".", "") else path
            if result.model_files:
                listed = ", ".join(result.model_files[:3]) + (", ..." if len(result.model_files) > 3 else "")
                yield finding("model-in-image", view.path, instruction.line,
                              f"{verb} {source} copies model files from {shown} into the image ({listed})",
                              stage=stage)
            elif result.size > limit or result.truncated:
                yield finding("context-too-large", view.path, instruction.line,
                              f"{verb} {source} copies {_human(result.size)}{'+' if result.truncated else ''} from "
                              f"{shown} after .dockerignore (limit {_human(limit)})", stage=stage)


def _expand(context: Context, source: str) -> list[str]:
    """The context paths a COPY source names (wildcards expanded); missing paths are the build's problem."""
    cleaned = go_clean(source.lstrip("/") or ".")
    if cleaned == ".." or cleaned.startswith("../"):
        return []  # outside the context: Docker refuses it, and nothing there is sent
    if not any(char in cleaned for char in "*?["):
        return [cleaned] if (context.root / cleaned).exists() else []
    return sorted(p.relative_to(context.root).as_posix() for p in context.root.glob(cleaned))


def _human(size: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _downloads(view: DockerfileView) -> Iterator[Finding]:
    for stage in view.stages:
        for instruction in stage.instructions:
            if instruction.command != "run":
                continue
            reported = False
            for command in commands(instruction):
                what = _download(command)
                if what:
                    reported = True
                    yield finding("model-download-at-build", view.path, command.line,
                                  f"downloads model weights at build time ({what})", stage=stage)
            if not reported:
                for heredoc in instruction.heredocs:
                    match = _PYTHON_DOWNLOADS.search(heredoc.body)
                    if match:
                        line = heredoc.line + heredoc.body.count("\n", 0, match.start())
                        yield finding("model-download-at-build", view.path, line,
                                      f"downloads model weights at build time ({match.group(0).rstrip('( ')})",
                                      stage=stage)
                        break


def _download(command: Command) -> str | None:
    words = command.words
    name = command.name
    if name == "huggingface-cli" and words[1:2] == ("download",):
        return "huggingface-cli download"
    if name == "hf" and words[1:2] == ("download",):
        return "hf download"
    if name == "git" and words[1:3] in (("lfs", "pull"), ("lfs", "fetch")):
        return f"git lfs {words[2]}"
    if name.startswith("python") and "-c" in words:
        code = " ".join(words[words.index("-c") + 1:])
        match = _PYTHON_DOWNLOADS.search(code)
        if match:
            return match.group(0).rstrip("( ")
    if name in ("curl", "wget"):
        previous = ""
        for word in words[1:]:
            target = word.split("?", 1)[0].split("#", 1)[0]
            fetched = _URL_FILE.match(word) is not None
            saved = previous in ("-o", "-O", "--output", "--output-document")
            if (fetched or saved) and is_model_file(target):
                return f"{name} {PurePosixPath(target).name}"
            previous = word
    return None


def _dockerignore(view: DockerfileView, context: Context, stage: Stage, instruction: Instruction) -> Iterator[Finding]:
    verb = instruction.command.upper()
    if context.ignore_file is None:
        where = "the build context" if context.name == "." else context.name
        yield finding("dockerignore-missing", view.path, instruction.line,
                      f"{verb} . copies {where} whole, but it has no .dockerignore: .git, .env, data and "
                      "checkpoints all go into the image", stage=stage)
        return
    missing: list[str] = []
    lines: list[str] = []
    for label, probes, suggestion in _REQUIRED:
        if not all(context.excluded(p) for p in probes):
            missing.append(label)
            lines.append(suggestion)
    for name in _DATA_DIRS:
        if (context.root / name).is_dir() and not context.excluded(name) and name not in missing:
            missing.append(f"{name}/ (present)")
            lines.append(f"{name}/")
    if missing:
        suggestion = "; ".join(line.replace("\n", ", ") for line in lines)
        yield finding("dockerignore-incomplete", context.ignore_name or ".dockerignore", None,
                      f"does not exclude {', '.join(missing)} from the context that {view.path} copies whole",
                      fix=f"add these patterns: {suggestion}")
