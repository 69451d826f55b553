"""What reading a Dockerfile yields: its FROM sites, its RUN scripts, its build stages (pin.py builds them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pinrepro.dockerfile.reader import Instruction

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
class Dockerfile:
    path: str
    text: str
    sites: tuple[FromSite, ...]
    runs: tuple[RunScript, ...] = ()


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


def strip_digest(image: str) -> tuple[str, str | None]:
    """Split ``name:tag@sha256:x`` into ``("name:tag", "sha256:x")``; the digest is None when there is none."""
    name, sep, digest = image.partition("@")
    return name, (digest if sep else None)
