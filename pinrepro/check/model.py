"""What every rule reads: the project's Dockerfiles split into stages, the lock, the settings.

The *final image* of a Dockerfile is its last stage plus the stages it builds on (``FROM builder AS app``
inherits everything ``builder`` installed); ``COPY --from`` does not inherit, so those stages are not part of
it. Rules about what ships to production look at the final image only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pinrepro.check.rules import RULES
from pinrepro.check.settings import CheckSettings
from pinrepro.config import Config
from pinrepro.dockerfile import Dockerfile, Instruction, Stage, instructions, stages
from pinrepro.findings import Finding
from pinrepro.lockfile import Lock


@dataclass(frozen=True)
class DockerfileView:
    dockerfile: Dockerfile
    stages: tuple[Stage, ...]
    final: tuple[Stage, ...]  # the last stage first, then each stage it builds on
    preamble: tuple[Instruction, ...] = ()  # the global ARGs before the first FROM

    @property
    def path(self) -> str:
        return self.dockerfile.path

    @property
    def last(self) -> Stage | None:
        return self.stages[-1] if self.stages else None

    def final_instructions(self) -> list[Instruction]:
        """The final image's instructions in build order (base stages first)."""
        return [instruction for stage in reversed(self.final) for instruction in stage.instructions]


def view(dockerfile: Dockerfile) -> DockerfileView:
    read, _ = instructions(dockerfile.text, dockerfile.path)
    all_stages = stages(dockerfile, read)
    by_name = {stage.name: stage for stage in all_stages if stage.name}
    final: list[Stage] = []
    current = all_stages[-1] if all_stages else None
    while current is not None and current not in final:
        final.append(current)
        base = current.site.base_stage
        current = by_name.get(base) if base else None
    return DockerfileView(dockerfile, all_stages, tuple(final), tuple(i for i in read if i.stage < 0))


@dataclass(frozen=True)
class CheckContext:
    config: Config
    settings: CheckSettings
    lock: Lock | None
    dockerfiles: tuple[DockerfileView, ...]

    @property
    def root(self) -> Path:
        return self.config.root


def finding(rule_id: str, path: str, line: int | None, message: str, *, stage: Stage | None = None,
            fix: str | None = None) -> Finding:
    """A finding of one of check's own rules, with the rule's level and fix unless told otherwise."""
    rule = RULES[rule_id]
    return Finding(path, line, rule.level, rule_id, message, stage=stage.label() if stage else None,
                   fix=fix or rule.fix)
