"""The article's anti-patterns that are not about ML as such: secrets in ENV/ARG, ``curl | sh``, ``ADD <url>``
without a checksum, apt lists and pip caches left in the image's layers.

Cache findings (apt lists, pip cache) look at the final image only: a build stage's leftovers never ship.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pinrepro.check.model import CheckContext, DockerfileView, finding
from pinrepro.check.packages import pip_install
from pinrepro.dockerfile import Instruction, Stage, add_arguments
from pinrepro.dockerfile.commands import Command, scripts
from pinrepro.findings import Finding
from pinrepro.scrub import without_userinfo

# Names that hold a secret: *_TOKEN, *_KEY, *_SECRET, *_PASSWORD (HF_TOKEN, WANDB_API_KEY, AWS_SECRET_ACCESS_KEY).
_SECRET_NAME = re.compile(r"(?:^|_)(?:TOKEN|KEY|SECRET|PASSWORD|PASSWD|PASS)$", re.IGNORECASE)
# Public material that happens to be called a key (the official python images set GPG_KEY to a fingerprint).
_NOT_SECRET = re.compile(r"GPG|PGP|PUBLIC|PUBKEY|KEYRING|_KEY_ID$|KEY_URL$|KEY_PATH$|KEY_FILE$|KEYSERVER",
                         re.IGNORECASE)
_VARIABLE_ONLY = re.compile(r"^\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[^}]*\})$")
_DOWNLOADERS = frozenset({"curl", "wget"})
# python3.11, and python${PYTHON_VERSION} as Dockerfiles that build several Pythons write it.
_INTERPRETERS = re.compile(r"^(?:sh|bash|dash|zsh|ash|ksh|python[0-9.]*(?:\$\{?\w+\}?)?|perl|ruby|node)$")
_URL = re.compile(r"^https?://", re.IGNORECASE)


def check(ctx: CheckContext) -> Iterator[Finding]:
    for view in ctx.dockerfiles:
        final = {stage.index for stage in view.final}
        for stage in view.stages:
            for instruction in stage.instructions:
                if instruction.command in ("env", "arg"):
                    yield from _secrets(view, stage, instruction)
                elif instruction.command == "add":
                    yield from _add_url(view, stage, instruction)
                elif instruction.command == "run":
                    yield from _run(view, stage, instruction, stage.index in final)
        yield from _global_args(view)


def _global_args(view: DockerfileView) -> Iterator[Finding]:
    """ARGs before the first FROM are not in any stage but are still build arguments with defaults."""
    for instruction in view.preamble:
        if instruction.command == "arg":
            yield from _secrets(view, None, instruction)


def _secrets(view: DockerfileView, stage: Stage | None, instruction: Instruction) -> Iterator[Finding]:
    for name, raw in instruction.pairs():
        if raw is None or not _SECRET_NAME.search(name) or _NOT_SECRET.search(name):
            continue
        value = raw.strip().strip("'\"")
        if not value or _VARIABLE_ONLY.match(value) or value.startswith(("/", "./", "~/")):
            continue  # empty, passed in from outside, or the path of a key file (SSL_KEY=/etc/ssl/key.pem)
        # The value itself is never repeated: it is the secret.
        yield finding("secret-in-env", view.path, instruction.line,
                      f"{instruction.command.upper()} {name} has a literal value, stored in the image for anyone "
                      "who can pull it", stage=stage)


def _add_url(view: DockerfileView, stage: Stage, instruction: Instruction) -> Iterator[Finding]:
    if instruction.flag("checksum"):
        return
    argv = add_arguments(instruction)
    for source in argv[:-1]:
        if _URL.match(source) and not re.search(r"\.git(?:#|$)", source):
            shown = without_userinfo(source)  # never print a password, even one holding an '@'
            yield finding("add-url-no-checksum", view.path, instruction.line,
                          f"ADD {shown} has no --checksum: the build takes whatever the server sends", stage=stage)


def _cache_mount(instruction: Instruction, *targets: str) -> bool:
    for mount in instruction.flag_values("mount"):
        fields = dict(part.partition("=")[::2] for part in mount.split(","))
        if fields.get("type") == "cache" and any(
                (fields.get("target") or fields.get("dst") or fields.get("destination") or "").rstrip("/").endswith(t)
                for t in targets):
            return True
    return False


def _run(view: DockerfileView, stage: Stage, instruction: Instruction, in_final: bool) -> Iterator[Finding]:
    run_scripts = scripts(instruction)
    every = [command for script in run_scripts for command in script.commands]
    for script in run_scripts:
        yield from _pipes(view, stage, list(script.commands))
    if not in_final:
        return
    updates = [c for c in every if c.name in ("apt-get", "apt") and "update" in c.words[1:]]
    cleaned = any(c.name == "rm" and any(w.rstrip("/*").rstrip("/") == "/var/lib/apt/lists" for w in c.words[1:])
                  for c in every)
    if updates and not cleaned and not _cache_mount(instruction, "/var/lib/apt", "/var/lib/apt/lists"):
        yield finding("apt-lists-kept", view.path, updates[0].line,
                      "apt-get update without `rm -rf /var/lib/apt/lists/*` in the same RUN leaves the package "
                      "lists in the layer", stage=stage)
    env_off = _pip_cache_off(view)
    for command in every:
        pip = pip_install(command)
        if pip is None or pip.tool != "pip" or pip.has("--no-cache-dir") or env_off:
            continue
        if _cache_mount(instruction, ".cache/pip", "/root/.cache", ".cache"):
            continue
        yield finding("pip-cache", view.path, command.line,
                      "pip install without --no-cache-dir keeps pip's download cache in the layer", stage=stage)


def _pip_cache_off(view: DockerfileView) -> bool:
    for instruction in view.final_instructions():
        if instruction.command == "env":
            for key, raw in instruction.pairs():
                if key == "PIP_NO_CACHE_DIR" and (raw or "").strip("'\"").lower() not in ("", "0", "false", "no"):
                    return True
    return False


def _pipes(view: DockerfileView, stage: Stage, commands: list[Command]) -> Iterator[Finding]:
    for index, command in enumerate(commands):
        if command.name in _DOWNLOADERS:
            for later in commands[index + 1:]:
                if later.pipeline != command.pipeline:
                    break
                if later.position > command.position and _INTERPRETERS.match(later.name):
                    yield finding("curl-pipe-shell", view.path, command.line,
                                  f"pipes `{command.name}` into `{later.name}`: the download runs unverified",
                                  stage=stage)
                    break
        elif _INTERPRETERS.match(command.name) and "-c" in command.words:
            body = " ".join(command.words[command.words.index("-c") + 1:])
            if re.search(r"\$\(\s*(?:curl|wget)\b", body):
                yield finding("curl-pipe-shell", view.path, command.line,
                              f"`{command.name} -c \"$(curl ...)\"` runs a download unverified", stage=stage)
