"""FROM sites and the global ARGs they see: what each FROM names, and where its digest would go.

FROM sees only the ARGs declared before the first FROM (dockerfile2llb), each default expanded with the ARGs
before it; an ARG inside a stage is read for the stage's RUN lines (apt pinning). A FROM that names an earlier
stage is a stage, ``scratch`` is nothing to pull, and an image whose name pinrepro cannot know says why.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from pinrepro.dockerfile.model import Dockerfile, FromSite, RunScript, Stage
from pinrepro.dockerfile.reader import Instruction, instructions, iter_instructions
from pinrepro.dockerfile.scope import Scope
from pinrepro.dockerfile.shell import PLATFORM_ARGS, Opaque, SyntaxProblem, Value, expand, expand_word
from pinrepro.dockerfile.slots import ArgDecl, Slot, pin_slot
from pinrepro.dockerfile.words import arg_words, from_words
from pinrepro.errors import DockerfileError, InvalidReferenceError
from pinrepro.reference import ImageRef

# containerd's platform specifier: one to three components of [A-Za-z0-9_-].
_PLATFORM = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+){0,2}")
_FROM_USAGE = "write FROM [--platform=<platform>] <image>[:<tag>] [AS <name>]"
_STAGE_NAME = re.compile(r"[a-z][a-z0-9-_.]*")


def parse(text: str, path: str = "Dockerfile", platforms: Sequence[str] = ()) -> Dockerfile:
    """Find every FROM site of ``text``; raise DockerfileError (with ``path:line``) for a malformed FROM.

    ``platforms`` are the target platforms the project builds for: a FROM that depends on TARGETARCH (or
    another TARGET* ARG) and names an earlier stage for each of them is a stage, not an unknown image.
    """
    runs: list[RunScript] = []
    sites, _ = analyse(text, path, platforms=tuple(platforms), runs=runs)
    return Dockerfile(path=path, text=text, sites=sites, runs=tuple(runs))


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


def analyse(text: str, path: str, platforms: tuple[str, ...] = (),
            runs: list[RunScript] | None = None) -> tuple[tuple[FromSite, ...], list[Slot | None]]:
    """The FROM sites of ``text`` and where each one's digest goes; ``runs`` (if given) receives every RUN
    script (and heredoc body) of a stage, with the stage's ARGs as they are at that line."""
    sites: list[FromSite] = []
    slots: list[Slot | None] = []
    stages: dict[str, int] = {}  # stage name -> the line of its FROM
    env: Scope[Value] = Scope()
    decls: dict[str, ArgDecl] = {}
    stage_args = _StageArgs()
    # The global ARGs once more per target platform, with BuildKit's TARGET* values filled in.
    platform_envs = [Scope(_target_args(platform)) for platform in platforms]
    for instruction in _read(text, path):
        command, escape = instruction.command, instruction.escape
        if command == "from":
            site, slot = _from_site(instruction, env, decls, stages)
            if site.kind == "unresolved" and platform_envs and all(
                _earlier_stage(_expand_or_none(site.written, penv, escape), stages, site.line)
                for penv in platform_envs
            ):
                site = replace(site, kind="stage", reason=None)
            sites.append(site)
            slots.append(slot)
            stage_args = _StageArgs()
        elif command == "arg" and not sites:
            _declare_args(instruction, env, decls)
            for penv in platform_envs:
                _declare_args(instruction, penv, {})
        elif command == "arg":
            stage_args.declare(instruction, env)
        if runs is not None and command == "run" and sites:
            runs.extend(_run_scripts(instruction, len(sites) - 1, stage_args.values.snapshot()))
    return tuple(sites), slots


def _read(text: str, path: str) -> Iterable[Instruction]:
    """The reader's instructions, shared with the other readers of the same text (cached); when the reader
    refuses the file, read one at a time instead, so an error in a FROM above the reader's is reported first."""
    try:
        return instructions(text, path)[0]
    except DockerfileError:
        return iter_instructions(text, path)


def _earlier_stage(name: str | None, stages: Mapping[str, int], line: int) -> bool:
    """Whether ``name`` is a stage whose FROM comes before ``line``: a dict lookup, not a copy of the names
    per FROM (which made a file of thousands of stages quadratic)."""
    return name is not None and stages.get(name, line) < line


def _run_scripts(run: Instruction, stage: int, args: Mapping[str, str | None]) -> list[RunScript]:
    scripts = [RunScript(path=run.path, line=run.line, stage=stage, script=run.rest,
                         offsets=run.offsets[run.rest_at:], args=args, flags=run.flags)]
    for body in run.heredocs:
        scripts.append(RunScript(path=run.path, line=run.line, stage=stage, script=body.text,
                                 offsets=body.offsets, args=args, heredoc=True, flags=run.flags))
    return scripts


class _StageArgs:
    """ARGs inside a stage: a default, or the global value re-declared; a --build-arg may override both,
    which pinrepro cannot see, so it reads the defaults as the build's values."""

    def __init__(self) -> None:
        self.values: Scope[str | None] = Scope()
        self._known: dict[str, str] = {}  # the values pinrepro knows, for expanding later defaults

    def declare(self, arg: Instruction, env: Mapping[str, Value]) -> None:
        # The ARG's words as the global ARGs' are split (BuildKit's parseWords, with the file's escape).
        for name, raw in arg.pairs():
            if not name:
                continue
            if raw is not None:
                value = expand_word(raw, self._known)
            else:
                inherited = env.get(name)
                value = inherited if isinstance(inherited, str) else None
            self.values[name] = value
            if value is None:
                self._known.pop(name, None)
            else:
                self._known[name] = value


def _target_args(platform: str) -> dict[str, Value]:
    os_name, _, rest = platform.partition("/")
    arch, _, variant = rest.partition("/")
    return {"TARGETPLATFORM": platform, "TARGETOS": os_name, "TARGETARCH": arch, "TARGETVARIANT": variant}


def _expand_or_none(word: str, env: Mapping[str, Value], escape: str) -> str | None:
    try:
        value = expand(word, env, escape).value
    except SyntaxProblem:
        return None
    return value.lower() if value else None


def _from_platform(flags: Sequence[str], env: Mapping[str, Value], escape: str, where: str) -> str | None:
    """FROM's ``--platform`` value, expanded when its ARGs have known values; its only flag."""
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
    if platform is not None and "$" in platform:
        # `ARG PLATFORM=linux/arm64` + `--platform=$PLATFORM` pulls linux/arm64, as the literal does; only an
        # ARG whose value pinrepro cannot know ($BUILDPLATFORM, $TARGETPLATFORM, no default) stays as written.
        with contextlib.suppress(SyntaxProblem):
            platform = expand(platform, env, escape).value or platform
    if platform is not None and "$" not in platform and not _PLATFORM.fullmatch(platform):
        # BuildKit parses it with containerd's platforms.Parse, which refuses this: the build would fail.
        raise DockerfileError(f"FROM --platform '{platform}' is not a platform", where=where,
                              fix="write one platform as os/arch[/variant], e.g. --platform=linux/arm64 (a FROM pulls "
                                  "one platform; the platforms to build go to `docker buildx build --platform`)")
    return platform


def _from_image_word(text: str, rest_at: int, where: str) -> tuple[int, str, str | None]:
    """Where FROM's image word starts in ``text``, the word as written, and the ``AS`` name (lower-cased)."""
    spans = from_words(text, rest_at)
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
    return spans[0][0], words[0], stage_name


def _from_site(logical: Instruction, env: Mapping[str, Value], decls: Mapping[str, ArgDecl],
               stages: dict[str, int]) -> tuple[FromSite, Slot | None]:
    path, escape = logical.path, logical.escape
    where = f"{path}:{logical.line}"
    platform = _from_platform(logical.flags, env, escape, where)
    word_start, written, stage_name = _from_image_word(logical.text, logical.rest_at, where)
    try:
        expansion = expand(written, env, escape)
    except SyntaxProblem as problem:
        raise DockerfileError(f"FROM image '{written}' cannot be expanded: {problem}", where=where,
                              fix="close every quote and write ARG references as $NAME or ${NAME}") from None
    site = FromSite(path=path, line=logical.line, written=written, image=None, kind="unresolved",
                    stage_name=stage_name, platform=platform)
    slot: Slot | None = None
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
        word_offsets = logical.offsets[word_start:word_start + len(written)]
        site, slot = pin_slot(replace(site, kind="image", image=value), expansion.referenced, word_offsets,
                              env, decls, escape)
    if stage_name is not None:
        if stage_name in stages:
            raise DockerfileError(f"stage name '{stage_name}' is already used on line {stages[stage_name]}",
                                  where=where, fix="give each stage its own name")
        stages[stage_name] = logical.line
    return site, slot


def _declare_args(logical: Instruction, env: Scope[Value], decls: dict[str, ArgDecl]) -> None:
    """Global ARGs, in order: each default is expanded with the ARGs before it (as dockerfile2llb does)."""
    escape = logical.escape
    for start, end in arg_words(logical.text, logical.args_at, escape):
        word = logical.text[start:end]
        name, has_value, raw = word.partition("=")
        if not name:
            continue
        if not has_value:
            if name not in PLATFORM_ARGS:
                env[name] = Opaque(f"ARG {name} has no default", "unset")
            decls.pop(name, None)
            continue
        offsets = logical.offsets[start + len(name) + 1:end]
        decls[name] = ArgDecl(name, raw, offsets, env.snapshot())
        try:
            expansion = expand(raw, env, escape)
        except SyntaxProblem as problem:
            env[name] = Opaque(f"the default of ARG {name} cannot be expanded: {problem}", "unknown")
            continue
        env[name] = expansion.value if expansion.value is not None else Opaque(str(expansion.reason), "unknown")
