"""Checklist items 5, 6 and 9: how the final image runs - its user, its health check, where its logs go."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from pinrepro.check.model import CheckContext, DockerfileView, finding
from pinrepro.dockerfile import Instruction, Stage
from pinrepro.dockerfile.commands import Command, commands
from pinrepro.findings import Finding

_ROOT_USERS = frozenset({"root", "0"})
# Programs that make an image a server (item 6 asks serving images for a HEALTHCHECK).
_SERVERS = frozenset({
    "uvicorn", "gunicorn", "hypercorn", "daphne", "waitress-serve", "tritonserver", "text-generation-launcher",
    "torchserve", "bentoml", "mlflow", "serve", "flask", "fastapi", "streamlit", "gradio", "vllm", "ray",
    "nginx", "httpd", "node", "tgi", "ollama", "litserve", "sglang",
})
# Programs that run Python (item 9: unbuffered output).
_PYTHON_PROGRAMS = re.compile(r"^(?:python(?:3(?:\.\d+)?)?|uvicorn|gunicorn|hypercorn|celery|torchrun|accelerate|"
                              r"streamlit|flask|fastapi|vllm|bentoml|mlflow|deepspeed|huggingface-cli)$")
_LOG_OPTIONS = ("--access-logfile", "--error-logfile", "--log-file")
_STD_STREAMS = frozenset({"-", "/dev/stdout", "/dev/stderr", "/proc/self/fd/1", "/proc/self/fd/2",
                          "/dev/fd/1", "/dev/fd/2"})
_URL = re.compile(r"https?://[^\s/'\"]+(/[^\s'\"|;&)]*)?")
# curl localhost:8000 - a URL without its scheme.
_BARE_URL = re.compile(r"(?:^|[\s'\"])(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\]):\d+(/[^\s'\"|;&)]*)?")
_PORT_ONLY = re.compile(r"(?:^|\s)(?:nc|netcat|ncat)\s(?:[^|;&]*\s)?-[a-y]*z|/dev/tcp/")


def check(ctx: CheckContext) -> Iterator[Finding]:
    for view in ctx.dockerfiles:
        if view.last is None:
            continue
        instructions = view.final_instructions()
        entry = _last(instructions, "entrypoint")
        cmd = _last(instructions, "cmd")
        started = [i for i in (entry, cmd) if i is not None]
        # A `FROM scratch` stage with nothing to run is an export (`docker build --output`), not a container.
        exported = view.final[-1].site.kind == "scratch" and not started
        if not exported:
            yield from _user(view, view.last, instructions)
        yield from _healthcheck(view, view.last, instructions, started)
        yield from _logs(view, view.last, instructions, started)


def _last(instructions: list[Instruction], command: str) -> Instruction | None:
    found = [i for i in instructions if i.command == command]
    return found[-1] if found else None


def _stage_of(view: DockerfileView, instruction: Instruction) -> Stage:
    return view.stages[instruction.stage]


def _user(view: DockerfileView, last: Stage, instructions: list[Instruction]) -> Iterator[Finding]:
    user = _last(instructions, "user")
    if user is None:
        yield finding("run-as-root", view.path, last.site.line,
                      "the final stage sets no USER, so it runs as root (unless its base image sets a user)",
                      stage=last)
        return
    value = user.rest.strip().split()[0] if user.rest.strip() else ""
    name = value.partition(":")[0]
    if name in _ROOT_USERS:
        shown = f"USER {value}"
        yield finding("run-as-root", view.path, user.line, f"the final stage ends with {shown}: it runs as root",
                      stage=_stage_of(view, user))


def _started(started: list[Instruction]) -> list[Command]:
    return [command for instruction in started for command in commands(instruction)]


def _serves(instructions: list[Instruction], started: list[Instruction]) -> bool:
    if any(i.command == "expose" for i in instructions):
        return True
    for command in _started(started):
        words = command.words
        if command.name in _SERVERS or any(PurePosixPath(w).name in _SERVERS for w in words[1:3]):
            return True
        # python -m vllm.entrypoints.openai.api_server, python -m text_generation_server ...
        if command.name.startswith("python") and "-m" in words[:-1]:
            module = words[words.index("-m") + 1].split(".")[0]
            if module in _SERVERS or module.endswith("_server") or module.endswith("server"):
                return True
    return False


def _healthcheck(view: DockerfileView, last: Stage, instructions: list[Instruction],
                 started: list[Instruction]) -> Iterator[Finding]:
    if not _serves(instructions, started):
        return
    health = _last(instructions, "healthcheck")
    rest = health.rest.strip() if health else ""
    if health is None or rest.upper() == "NONE":
        line = health.line if health else last.site.line
        what = "HEALTHCHECK NONE turns the check off" if health else "the final stage has no HEALTHCHECK"
        yield finding("no-healthcheck", view.path, line, f"a serving image, but {what}", stage=last)
        return
    target = rest[3:] if rest.upper().startswith("CMD") else rest
    urls = [match.group(1) or "" for pattern in (_URL, _BARE_URL) for match in pattern.finditer(target)]
    if _PORT_ONLY.search(target) or (urls and all(path in ("", "/") for path in urls)):
        probe = "that a port is open" if not urls else "that / answers"
        yield finding("shallow-healthcheck", view.path, health.line,
                      f"the HEALTHCHECK only checks {probe}, not that the model is loaded and can infer",
                      stage=_stage_of(view, health))


def _logs(view: DockerfileView, last: Stage, instructions: list[Instruction],
          started: list[Instruction]) -> Iterator[Finding]:
    runs_python = False
    unbuffered = _env_set(instructions, "PYTHONUNBUFFERED")
    for instruction in started:
        stage = _stage_of(view, instruction)
        for command in commands(instruction):
            for redirect in command.redirects:
                if ">" in redirect.operator and not redirect.operator.endswith("&") \
                        and redirect.target not in _STD_STREAMS and redirect.target != "/dev/null":
                    yield finding("log-to-file", view.path, command.line,
                                  f"{instruction.command.upper()} redirects output to {redirect.target}", stage=stage)
            words = command.words
            for index, word in enumerate(words):
                option, has_value, value = word.partition("=")
                if option in _LOG_OPTIONS:
                    target = value if has_value else (words[index + 1] if index + 1 < len(words) else "-")
                    if target not in _STD_STREAMS:
                        yield finding("log-to-file", view.path, command.line,
                                      f"{option} {target} writes the server's log to a file", stage=stage)
            if _PYTHON_PROGRAMS.match(command.name) or any(
                    _PYTHON_PROGRAMS.match(PurePosixPath(w).name) for w in words[1:2]):
                runs_python = True
                if command.name.startswith("python") and "-u" in words[1:]:
                    unbuffered = True
    if runs_python and not unbuffered:
        yield finding("python-buffered", view.path, started[-1].line,
                      "runs Python without PYTHONUNBUFFERED=1 or python -u: log lines may arrive late or be lost",
                      stage=_stage_of(view, started[-1]))


def _env_set(instructions: list[Instruction], name: str) -> bool:
    value: str | None = None
    for instruction in instructions:
        if instruction.command == "env":
            for key, raw in instruction.pairs():
                if key == name:
                    value = (raw or "").strip("'\"")
    return bool(value)
