"""Checklist item 1 (build separated from serving) and the install anti-patterns: Jupyter in the final image,
one giant pip install."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from pinrepro.check.model import CheckContext, DockerfileView, finding
from pinrepro.check.packages import pip_install, requirement_name, system_install, system_remove
from pinrepro.dockerfile import Instruction, Stage, strip_digest
from pinrepro.dockerfile.commands import Command, commands
from pinrepro.findings import Finding
from pinrepro.pyplatforms import targetarch_pattern, targets
from pinrepro.reference import ImageRef
from pinrepro.reqfile import parse_lock

# "12.4.1-devel-ubuntu22.04", "12.4.1-cudnn-devel-ubuntu22.04", "2.3.0-cuda12.1-cudnn8-devel".
_DEVEL_TAG = re.compile(r"(?:^|[-_.])devel(?:$|[-_.])")
_COMPILERS = re.compile(
    r"^(?:build-essential|gcc(?:-\d+)?|g\+\+(?:-\d+)?|clang(?:-\d+)?|cmake|ninja-build|gfortran(?:-\d+)?|"
    r"nvidia-cuda-toolkit|cuda-toolkit(?:-[\d-]+)?|cuda-nvcc(?:-[\d-]+)?|cuda-compiler(?:-[\d-]+)?|"
    r"cuda-libraries-dev(?:-[\d-]+)?|gxx_linux-64|gcc_linux-64|cxx-compiler|c-compiler)$"
)
_NOTEBOOK_PACKAGES = frozenset({"jupyter", "jupyterlab", "notebook", "ipykernel", "jupyter-server", "nbclassic",
                                "jupyterhub", "voila"})
# More names than this in one pip install is the "one giant RUN" the article warns about.
GIANT_INSTALL = 5


def check(ctx: CheckContext) -> Iterator[Finding]:
    for view in ctx.dockerfiles:
        yield from _devel_base(view)
        yield from _final_installs(ctx, view)
        yield from _single_stage(view)
        yield from _giant_installs(view)


def _devel_base(view: DockerfileView) -> Iterator[Finding]:
    for stage in view.final:
        site = stage.site
        if site.kind != "image" or site.image is None:
            continue
        shown = strip_digest(site.image)[0]
        ref = ImageRef.parse(shown)
        if _DEVEL_TAG.search(ref.tag or ""):
            yield finding("final-devel-base", view.path, site.line,
                          f"the final image is built on {shown}, a -devel image with the whole CUDA toolkit",
                          stage=stage)
        if ref.registry in ("docker.io", "quay.io") and ref.repository.startswith("jupyter/"):
            yield finding("jupyter-in-final", view.path, site.line,
                          f"the final image is built on {shown}, a Jupyter image", stage=stage)


def _runs(stage: Stage) -> Iterator[tuple[Instruction, list[Command]]]:
    for instruction in stage.instructions:
        if instruction.command == "run":
            yield instruction, list(commands(instruction))


def _final_installs(ctx: CheckContext, view: DockerfileView) -> Iterator[Finding]:
    lock_names = _layer_lock_packages(ctx)
    for stage in view.final:
        for _, run in _runs(stage):
            removed = {name for command in run for name in system_remove(command)}
            for command in run:
                installed = system_install(command) or ()
                compilers = [n for n in installed if _COMPILERS.match(n) and n not in removed]
                if compilers:
                    yield finding("final-compilers", view.path, command.line,
                                  f"installs {', '.join(compilers)} in the final image", stage=stage)
                notebooks = [n for n in installed if n in _NOTEBOOK_PACKAGES and n not in removed]
                pip = pip_install(command)
                if pip is not None:
                    names = [requirement_name(p) for p in pip.packages]
                    notebooks += [n for n in names if n in _NOTEBOOK_PACKAGES]
                    for file in pip.requirement_files:
                        listed = lock_names.get(PurePosixPath(file).name, set())
                        found = sorted(listed & _NOTEBOOK_PACKAGES)
                        notebooks += [f"{name} (from {PurePosixPath(file).name})" for name in found]
                if notebooks:
                    yield finding("jupyter-in-final", view.path, command.line,
                                  f"installs {', '.join(n for n in notebooks if n)} in the final image", stage=stage)


def _layer_lock_packages(ctx: CheckContext) -> dict[str, set[str]]:
    """Package names per requirement-lock file name, for ``pip install -r <lock>`` in a Dockerfile."""
    found: dict[str, set[str]] = {}
    for layer in ctx.config.layers:
        every: set[str] = set()
        # One lock per architecture when the platforms span several (requirements-base.${TARGETARCH}.lock).
        for target in targets(layer.lock, ctx.config.platforms):
            try:
                text = (ctx.root / target.lock).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue  # a missing lock is verify's finding
            names = {e.name for e in parse_lock(text) if e.name}
            found[PurePosixPath(target.lock).name] = names
            every |= names
        pattern = targetarch_pattern(layer.lock, ctx.config.platforms)
        if pattern is not None:
            found[PurePosixPath(pattern).name] = every
    return found


def _compiles(command: Command) -> str | None:
    """What in ``command`` compiles, or None."""
    words = command.words
    name = command.name
    pip = pip_install(command)
    if pip is not None and pip.has("--no-binary"):
        return "pip install --no-binary (builds from source)"
    if name.startswith("pip") and words[1:2] == ("wheel",):
        return "pip wheel"
    if re.match(r"^python(3(\.\d+)?)?$", name) and len(words) > 2 and PurePosixPath(words[1]).name == "setup.py" \
            and words[2] in ("build", "build_ext", "bdist_wheel", "install", "develop"):
        return f"setup.py {words[2]}"
    if re.match(r"^python(3(\.\d+)?)?$", name) and words[1:3] == ("-m", "build"):
        return "python -m build"
    if name in ("make", "ninja", "nvcc", "gcc", "g++", "cc", "c++"):
        return name
    if name == "cmake" and ("--build" in words or len(words) > 1):
        return "cmake"
    return None


def _single_stage(view: DockerfileView) -> Iterator[Finding]:
    if len(view.stages) != 1:
        return
    stage = view.stages[0]
    for _, run in _runs(stage):
        for command in run:
            what = _compiles(command)
            if what:
                yield finding("single-stage-build", view.path, command.line,
                              f"compiles ({what}) in a single-stage Dockerfile: the build tools ship to production",
                              stage=stage)
                return


def _giant_installs(view: DockerfileView) -> Iterator[Finding]:
    for stage in view.stages:
        for _, run in _runs(stage):
            for command in run:
                pip = pip_install(command)
                if pip is None:
                    continue
                names = [p for p in pip.packages if requirement_name(p)]
                if len(names) > GIANT_INSTALL:
                    yield finding("giant-pip-install", view.path, command.line,
                                  f"installs {len(names)} packages by name in one pip install "
                                  f"({', '.join(names[:4])}, ...)", stage=stage)
