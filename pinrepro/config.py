"""Project configuration: ``[tool.pinrepro]`` in pyproject.toml, or the same keys in pinrepro.toml.

Every key has a default, so a repository with only a Dockerfile needs no configuration. Unknown keys are
errors that name the key: a typo must not be silently ignored.
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from pinrepro.apt.settings import AptSettings, parse_settings
from pinrepro.errors import ConfigError
from pinrepro.layers.order import ordered
from pinrepro.reference import canonical_registry
from pinrepro.schema import Table, locate
from pinrepro.scrub import remember
from pinrepro.suppress import check_rule_ids

DEFAULT_DOCKERFILE_GLOBS = ("**/Dockerfile", "**/Dockerfile.*", "**/*.Dockerfile")
DEFAULT_PLATFORMS = ("linux/amd64",)
DEFAULT_LOCKFILE = "pinrepro.lock"
RESOLVERS = ("pip-compile", "uv")
# Where deployment files (compose, Kubernetes, Helm values, workflows, devcontainer) usually live.
DEFAULT_DEPLOY_GLOBS = (
    "compose*.y*ml", "docker-compose*.y*ml", "**/k8s/**/*.y*ml", "**/deploy/**/*.y*ml",
    "charts/*/values*.yaml", ".github/workflows/*.y*ml", ".devcontainer/devcontainer.json",
)
# Where the image digests go: into the Dockerfiles, into a BuildKit source policy, or both.
PIN_MODES = ("dockerfile", "policy", "both")
DEFAULT_ADD_MAX_BYTES = 1 << 30  # ADD <url> downloads larger than this are refused (1 GiB)


@dataclass(frozen=True)
class IndexOptions:
    """Where packages come from. None means "pip's own default", never the machine's pip.conf."""

    # An index URL may carry a password (https://user:token@host/simple): keep it out of reprs and tracebacks.
    index_url: str | None = field(default=None, repr=False)
    extra_index_urls: tuple[str, ...] = field(default=(), repr=False)
    find_links: tuple[str, ...] = ()
    # Seconds an index may take to answer before `lock` gives up on it (exit 2 naming it); not a resolution
    # option, so it stays out of the options hash.
    timeout: float = 60.0


@dataclass(frozen=True)
class Layer:
    """One requirements layer: ``requirements`` (.in) compiled into ``lock`` under the ``constraints`` layers."""

    name: str
    requirements: str
    lock: str
    constraints: tuple[str, ...] = ()
    python: str | None = None
    hashes: bool = True
    resolver: str = "pip-compile"
    index: IndexOptions = field(default_factory=IndexOptions)


@dataclass(frozen=True)
class VerifyOptions:
    """``[tool.pinrepro.verify]``: rule ids silenced everywhere (see pinrepro.suppress)."""

    ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    root: Path
    dockerfiles: tuple[str, ...] = DEFAULT_DOCKERFILE_GLOBS
    platforms: tuple[str, ...] = DEFAULT_PLATFORMS
    lockfile: str = DEFAULT_LOCKFILE
    python: str | None = None
    hashes: bool = True
    resolver: str = "pip-compile"
    index: IndexOptions = field(default_factory=IndexOptions)
    mirrors: dict[str, str] = field(default_factory=dict)
    insecure_registries: tuple[str, ...] = ()
    layers: tuple[Layer, ...] = ()
    # The refresh bot's table, validated by pinrepro.refresh (which owns its keys).
    refresh: Mapping[str, Any] = field(default_factory=dict)
    apt: AptSettings = field(default_factory=AptSettings)
    verify: VerifyOptions = field(default_factory=VerifyOptions)
    # `pinrepro check`'s table, validated by pinrepro.check.settings (which owns its keys).
    check: Mapping[str, Any] = field(default_factory=dict)
    # Where the file came from, for error messages.
    source: str = "defaults"
    deploy_files: tuple[str, ...] = DEFAULT_DEPLOY_GLOBS
    pin: str = "dockerfile"
    # The source policy's table ([tool.pinrepro.policy]), validated by pinrepro.policy (which owns its keys).
    policy: Mapping[str, Any] = field(default_factory=dict)
    add_max_bytes: int = DEFAULT_ADD_MAX_BYTES
    # Whether lock may add "# syntax=docker/dockerfile:1" to a Dockerfile that needs it for ADD --checksum.
    syntax_directive: bool = False

    @property
    def lock_path(self) -> Path:
        return self.root / self.lockfile


_TOP_KEYS = {
    "dockerfiles", "platforms", "lockfile", "python", "hashes", "resolver", "index_url",
    "extra_index_urls", "find_links", "mirrors", "insecure_registries", "layers", "refresh",
    "deploy_files", "pin", "policy", "add_max_bytes", "syntax_directive", "index_timeout",
    "verify", "apt", "check",
}
_VERIFY_KEYS = {"ignore"}
_LAYER_KEYS = {
    "name", "requirements", "lock", "constraints", "python", "hashes", "resolver", "index_url",
    "extra_index_urls", "find_links", "index_timeout",
}


def load(root: Path) -> Config:
    """Read the configuration of the project at ``root`` (pinrepro.toml wins over pyproject.toml)."""
    root = root.resolve()
    if root.exists() and not root.is_dir():
        raise ConfigError(f"project directory {root} is a file, not a directory",
                          fix="pass the folder that holds the project to -C")
    if not root.is_dir():
        raise ConfigError(f"project directory {root} does not exist", fix="pass an existing directory to -C")
    standalone = root / "pinrepro.toml"
    pyproject = root / "pyproject.toml"
    if standalone.is_file():
        return parse(_read_toml(standalone), root=root, source="pinrepro.toml")
    if pyproject.is_file():
        data = _read_toml(pyproject)
        tool = data.get("tool", {})
        if not isinstance(tool, dict):
            raise ConfigError("[tool] must be a table", where="pyproject.toml", fix="write [tool.pinrepro] sections")
        section = tool.get("pinrepro", {})
        if not isinstance(section, dict):
            raise ConfigError("[tool.pinrepro] must be a table", where="pyproject.toml")
        return parse(section, root=root, source="pyproject.toml [tool.pinrepro]")
    return Config(root=root)


def find_project_root(start: Path) -> Path:
    """The nearest directory from ``start`` upward that holds pinrepro.toml, a pyproject.toml with
    [tool.pinrepro], or pinrepro.lock - as git and uv find theirs; ``start`` itself when none does."""
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / "pinrepro.toml").is_file() or (directory / DEFAULT_LOCKFILE).is_file():
            return directory
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            try:
                with pyproject.open("rb") as handle:
                    if "pinrepro" in tomllib.load(handle).get("tool", {}):
                        return directory
            except (OSError, ValueError, AttributeError, TypeError):  # ValueError: TOML or UTF-8 errors
                continue  # not ours to judge: a broken pyproject.toml elsewhere is not this project
    return start


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data: dict[str, Any] = tomllib.load(handle)
            return data
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=path.name, fix="fix the syntax error it names") from None
    except UnicodeDecodeError as exc:
        # tomllib decodes the bytes itself (TOML files are UTF-8); bytes are counted from 1, as editors do.
        raise ConfigError(f"is not UTF-8 text (byte {exc.start + 1} cannot be read)", where=path.name,
                          fix="save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read it: {exc.strerror}", where=path.name) from None


def parse(data: dict[str, Any], *, root: Path, source: str = "pinrepro.toml") -> Config:
    """Validate the raw table and build a Config; every error names the key and the file."""
    file, section = locate(source)
    table = Table(data, known=_TOP_KEYS, file=file, section=section, where=source)
    index = _index_options(table, IndexOptions())
    python = table.string("python")
    hashes = table.boolean("hashes", True)
    resolver = _resolver(table, "pip-compile")
    mirrors = table.get("mirrors", {})
    if not isinstance(mirrors, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in mirrors.items()
    ):
        raise ConfigError("'mirrors' must map registry hosts to mirror hosts", where=source,
                          fix='write e.g. mirrors = { "docker.io" = "mirror.internal:5000" }')
    layers = _layers(table.get("layers", []), source, python, hashes, resolver, index, root)
    refresh = _subtable(table, "refresh", source)
    dockerfiles = table.strings("dockerfiles", DEFAULT_DOCKERFILE_GLOBS)
    for pattern in dockerfiles:
        _inside(root, pattern, "dockerfiles", source)
    lockfile = _inside(root, table.string("lockfile") or DEFAULT_LOCKFILE, "lockfile", source)
    pin = table.string("pin") or "dockerfile"
    if pin not in PIN_MODES:
        raise ConfigError(f"pin '{pin}' is not known", where=source, fix=f"use one of: {', '.join(PIN_MODES)}")
    return Config(
        root=root,
        dockerfiles=dockerfiles,
        platforms=_platforms(table),
        lockfile=lockfile,
        python=python,
        hashes=hashes,
        resolver=resolver,
        index=index,
        mirrors={canonical_registry(k): v for k, v in mirrors.items()},
        insecure_registries=table.strings("insecure_registries"),
        layers=layers,
        refresh=refresh,
        apt=parse_settings(table.get("apt"), where=source),
        verify=_verify_options(table.get("verify", {}), source),
        check=table.get("check", {}),
        source=source,
        deploy_files=table.strings("deploy_files", DEFAULT_DEPLOY_GLOBS),
        pin=pin,
        policy=_subtable(table, "policy", source),
        add_max_bytes=table.positive_int("add_max_bytes", DEFAULT_ADD_MAX_BYTES),
        syntax_directive=table.boolean("syntax_directive", False),
    )


def _subtable(table: Table, key: str, source: str) -> Mapping[str, Any]:
    """A table another module validates (it owns its keys): here only checked to be a table."""
    value = table.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"'{key}' must be a table", where=source,
                          fix=f"write it as [{key}] / [tool.pinrepro.{key}]")
    return value


def _inside(root: Path, value: str, key: str, where: str) -> str:
    """A project-relative path: pinrepro reads and writes inside the project only (no absolute, no '..')."""
    pure = PurePosixPath(value.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or "\0" in value:
        raise ConfigError(f"'{key}' = '{_short(value)}' points outside the project", where=where,
                          fix="use a path relative to the project root, without '..'")
    real = (root / value).resolve() if "*" not in value and "?" not in value and "[" not in value else root
    if not real.is_relative_to(root):
        raise ConfigError(f"'{key}' = '{_short(value)}' leads outside the project through a symlink",
                          where=where, fix="point it at a file inside the project")
    return value


def _short(value: str) -> str:
    return value if len(value) <= 80 else value[:77] + "..."


def _verify_options(raw: Any, source: str) -> VerifyOptions:
    if not isinstance(raw, dict):
        raise ConfigError("'verify' must be a table", where=source,
                          fix="write it as [verify] / [tool.pinrepro.verify]")
    file, section = locate(source, "verify")
    table = Table(raw, known=_VERIFY_KEYS, file=file, section=section, where=f"{source} verify")
    ignore = table.strings("ignore")
    bad = check_rule_ids(ignore)
    if bad is not None:
        raise ConfigError(f"'{bad}' in 'ignore' is not a rule id", where=table.where,
                          fix="use the id in [brackets] after a finding, e.g. ignore = [\"platform-absent\"]")
    return VerifyOptions(ignore=ignore)


def _layers(raw: Any, source: str, python: str | None, hashes: bool, resolver: str,
            index: IndexOptions, root: Path) -> tuple[Layer, ...]:
    if not isinstance(raw, list):
        raise ConfigError("'layers' must be an array of tables", where=source, fix="use [[tool.pinrepro.layers]]")
    layers: list[Layer] = []
    file, layers_section = locate(source, "layers")
    for position, item in enumerate(raw, start=1):
        where = f"{source} layers[{position}]"
        if not isinstance(item, dict):
            raise ConfigError("each layer must be a table", where=where)
        table = Table(item, known=_LAYER_KEYS, file=file, where=where, section=f"[{layers_section}] #{position}")
        name = table.string("name")
        requirements = table.string("requirements")
        if not name or not requirements:
            raise ConfigError("a layer needs 'name' and 'requirements'", where=where,
                              fix='add name = "base" and requirements = "requirements-base.in"')
        lock = table.string("lock") or _default_lock(requirements)
        _inside(root, requirements, "requirements", where)
        _inside(root, lock, "lock", where)
        layers.append(Layer(
            name=name,
            requirements=requirements,
            lock=lock,
            constraints=table.strings("constraints"),
            python=table.string("python") or python,
            hashes=table.boolean("hashes", hashes),
            resolver=_resolver(table, resolver),
            index=_index_options(table, index),
        ))
    _check_layer_graph(layers, source)
    return tuple(layers)


def _default_lock(requirements: str) -> str:
    stem = requirements[: -len(".in")] if requirements.endswith(".in") else requirements
    return stem + ".lock"


def _check_layer_graph(layers: list[Layer], source: str) -> None:
    names = [layer.name for layer in layers]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"layer name '{duplicates[0]}' is used twice", where=source)
    by_name = {layer.name: layer for layer in layers}
    for layer in layers:
        for dep in layer.constraints:
            if dep not in by_name:
                raise ConfigError(f"layer '{layer.name}' is constrained by unknown layer '{dep}'", where=source,
                                  fix=f"known layers: {', '.join(names)}")
    ordered(layers, source)  # refuses a cycle, naming it


def _index_options(table: Table, inherited: IndexOptions) -> IndexOptions:
    options = IndexOptions(
        index_url=table.string("index_url") or inherited.index_url,
        extra_index_urls=table.strings("extra_index_urls", inherited.extra_index_urls),
        find_links=table.strings("find_links", inherited.find_links),
        timeout=_seconds(table, "index_timeout", inherited.timeout),
    )
    # Read from the values as validated: `extra_index_urls = "https://..."` (one string) is a list of one.
    for url in [options.index_url or "", *options.extra_index_urls]:
        with contextlib.suppress(ValueError):
            password = urlsplit(url).password
            # An index URL's password is scrubbed from every message; a ${VAR} placeholder is no secret.
            if password and "$" not in password:
                remember(password)
    return options


def _seconds(table: Table, key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
        raise ConfigError(f"'{key}' must be a number of seconds between 0 and 3600", where=table.where,
                          fix=f"write e.g. {key} = 60")
    return float(value)


def _resolver(table: Table, default: str) -> str:
    value = table.string("resolver") or default
    if value not in RESOLVERS:
        raise ConfigError(f"resolver '{value}' is not known", where=table.where,
                          fix=f"use one of: {', '.join(RESOLVERS)}")
    return value


def _platforms(table: Table) -> tuple[str, ...]:
    platforms = table.strings("platforms", DEFAULT_PLATFORMS)
    for platform in platforms:
        parts = platform.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ConfigError(f"platform '{platform}' is not os/arch[/variant]", where=table.where,
                              fix='write e.g. platforms = ["linux/amd64", "linux/arm64"]')
    if not platforms:
        raise ConfigError("'platforms' is empty", where=table.where, fix='list at least one, e.g. ["linux/amd64"]')
    return platforms
