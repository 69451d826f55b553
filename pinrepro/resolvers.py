"""The one place that runs a resolver: pip-compile (pip-tools) or ``uv pip compile``, as subprocesses.

Isolation from the machine is the point of this module. A lock file must be a function of the project alone, so
the resolver never sees:

* pip's configuration files or ``PIP_*`` variables (index URLs, find-links, constraint files - this is how a
  developer's private mirror or ``/opt/wheels`` would leak into a committed lock): ``PIP_CONFIG_FILE=os.devnull``
  is pip's documented switch that loads no configuration file at all, and every ``PIP_*`` variable except a few
  that only tune the transport (certificates, timeouts, retries, cache) is dropped;
* pip-tools' own ``[tool.pip-tools]`` / ``.pip-tools.toml`` (``--no-config``), uv's ``uv.toml`` / ``[tool.uv]``
  (``--no-config``) and ``UV_*`` variables other than transport/cache ones;
* the paths of this machine: the compile runs in a scratch copy of the project's relevant files, with relative
  paths, and ``--no-emit-index-url`` / ``--no-emit-find-links`` / ``--no-emit-trusted-host`` keep the
  resolver's index options out of the output (pinrepro writes the configured ones itself, as configured:
  pinrepro.pyindex, which also keeps ``${VAR}`` credentials from being expanded into a lock).

pip-compile resolves for the interpreter and machine it runs on (markers such as ``python_version`` and
``platform_machine`` are evaluated there), so it is run under an interpreter of the target Python, on a host
of the image's platform, or not at all. uv can resolve for any target (``--python-version``,
``--python-platform``), which is why the errors here point to ``resolver = "uv"``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pinrepro.config import IndexOptions
from pinrepro.errors import ResolverError
from pinrepro.pyindex import Secrets
from pinrepro.registry.platform import host_platform, same_platform
from pinrepro.reqfile import COMPILE_COMMAND
from pinrepro.resolverfailure import failure, skipped_index

__all__ = ["CompileRequest", "ResolverRunner", "compile_layer"]

# PIP_* / UV_* variables kept: they change how packages are fetched, never which ones or from where.
_PIP_KEEP = frozenset({
    "PIP_CERT", "PIP_CLIENT_CERT", "PIP_DEFAULT_TIMEOUT", "PIP_TIMEOUT", "PIP_RETRIES", "PIP_PROXY",
    "PIP_CACHE_DIR", "PIP_NO_CACHE_DIR", "PIP_TOOLS_CACHE_DIR",
})
_UV_KEEP = frozenset({
    "UV_CACHE_DIR", "UV_NO_CACHE", "UV_HTTP_TIMEOUT", "UV_HTTP_RETRIES", "UV_NATIVE_TLS",
    "UV_CONCURRENT_DOWNLOADS", "UV_CONCURRENT_BUILDS",
})

# Docker platform -> uv target. manylinux_2_28 (glibc 2.28) is the floor of every current CUDA and
# python:3.x image (Debian 10+, Ubuntu 20.04+, UBI 8+); a wheel needing a newer glibc would not install there.
UV_PLATFORMS = {
    "linux/amd64": "x86_64-manylinux_2_28",
    "linux/arm64": "aarch64-manylinux_2_28",
    "linux/arm64/v8": "aarch64-manylinux_2_28",
}

_PROBE = (
    "import importlib.metadata as m, importlib.util as u, json, sys\n"
    "v = None\n"
    "if u.find_spec('piptools') is not None:\n"
    "    try:\n"
    "        v = m.version('pip-tools')\n"
    "    except Exception:\n"
    "        v = 'unknown'\n"
    "print(json.dumps({'python': '%d.%d.%d' % sys.version_info[:3], 'pip_tools': v}))\n"
)


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str  # e.g. "3.11.9"
    pip_tools: str | None  # pip-tools version importable there, None when missing


@dataclass(frozen=True)
class CompileRequest:
    """One layer's compile, with every path relative to ``workdir`` (the scratch copy of the project)."""

    layer: str
    requirements: str
    output: str
    constraints: tuple[str, ...]
    python: str
    platform: str
    hashes: bool
    # find_links already absolute (they are not emitted, so they cannot leak); out of the repr, since an
    # index URL may carry a password.
    index: IndexOptions = field(repr=False)
    upgrade: bool = False
    upgrade_packages: tuple[str, ...] = ()
    reuse_hashes: bool = False  # True only when the existing output is byte for byte the lock pinrepro wrote
    # Turns the expanded ${VAR} credentials in ``index`` and the resolver's output back into their written form.
    secrets: Secrets = field(default_factory=lambda: Secrets({}), repr=False)


class ResolverRunner:
    """Runs resolvers as subprocesses; counts resolver runs in ``invocations`` (probes are not counted).

    ``environ`` and ``search_path`` default to this process's environment and PATH; tests pass their own.
    """

    def __init__(self, *, environ: Mapping[str, str] | None = None, search_path: str | None = None,
                 timeout: float = 1800.0, echo: Callable[[str], None] | None = None) -> None:
        self.echo = echo  # gets each line of the resolver's output as it comes (``-v``), credentials scrubbed
        # Index URLs (expanded) already found answering this run; None skips the check altogether.
        self.probed: set[str] | None = set()
        self.invocations = 0
        self.calls: list[tuple[str, ...]] = []
        self._environ = environ
        self._search_path = search_path
        self._timeout = timeout
        self._interpreters: dict[str, Interpreter | None] = {}
        self._uv: tuple[str, str] | None = None

    # -- environment -------------------------------------------------------------------------------

    def variables(self) -> Mapping[str, str]:
        """The environment ``${VAR}`` references in index URLs and requirement files are expanded from."""
        return os.environ if self._environ is None else self._environ

    def environment(self) -> dict[str, str]:
        """The ambient environment minus everything that could steer resolution."""
        source = os.environ if self._environ is None else self._environ
        env = {
            key: value for key, value in source.items()
            if not (key.startswith("PIP_") and key not in _PIP_KEEP)
            and not (key.startswith("UV_") and key not in _UV_KEEP)
            and key not in {"CUSTOM_COMPILE_COMMAND", "PYTHONHOME"}
        }
        if self._search_path is not None:
            env["PATH"] = self._search_path
        env["PIP_CONFIG_FILE"] = os.devnull
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        env["PIP_NO_INPUT"] = "1"
        env["PIP_REQUIRE_VIRTUALENV"] = "0"
        # pip-tools 7.6 takes the header's command line only from this variable.
        env["CUSTOM_COMPILE_COMMAND"] = COMPILE_COMMAND
        env["UV_PYTHON_DOWNLOADS"] = "never"
        env["NO_COLOR"] = "1"
        return env

    def _which(self, name: str) -> str | None:
        path = self._search_path if self._search_path is not None else (
            (self._environ or os.environ).get("PATH", os.defpath))
        return shutil.which(name, path=path)

    # -- discovery ---------------------------------------------------------------------------------

    def find_python(self, target: str) -> Interpreter:
        """An interpreter whose major.minor is ``target`` (the running one first, then pythonX.Y on PATH)."""
        if target in self._interpreters:
            found = self._interpreters[target]
        else:
            found = self._search_python(target)
            self._interpreters[target] = found
        if found is None:
            raise ResolverError(
                f"no Python {target} interpreter found to run pip-compile for the target Python {target} "
                f"(this is Python {sys.version_info.major}.{sys.version_info.minor}, and python{_minor(target)} "
                "is not on PATH)",
                fix=f"install Python {target} with pip-tools (python{_minor(target)} -m pip install pip-tools), "
                    'or set resolver = "uv", which locks for any Python version',
            )
        return found

    def _search_python(self, target: str) -> Interpreter | None:
        # "3.11" matches any 3.11.x; "3.11.4" only 3.11.4 (python_full_version markers would differ otherwise).
        minor = _minor(target)
        candidates: list[str] = []
        if _matches(".".join(map(str, sys.version_info[:3])), target):
            candidates.append(sys.executable)
        for name in (f"python{minor}", "python3"):
            path = self._which(name)
            if path and path not in candidates:
                candidates.append(path)
        found_without_tools: Interpreter | None = None
        for path in candidates:
            info = self._probe(path)
            if info is None or not _matches(info.version, target):
                continue
            if info.pip_tools is not None:
                return info
            found_without_tools = found_without_tools or info
        if found_without_tools is not None:
            raise ResolverError(
                f"pip-tools is not installed for {found_without_tools.path} (Python {found_without_tools.version}), "
                f"which pinrepro needs to compile for Python {target}",
                fix=f"run `{found_without_tools.path} -m pip install pip-tools`, or set resolver = \"uv\"",
            )
        return None

    def _probe(self, path: str) -> Interpreter | None:
        try:
            done = subprocess.run([path, "-c", _PROBE], capture_output=True, text=True, timeout=60,
                                  env=self.environment(), check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode != 0:
            return None  # e.g. a pyenv shim for a version that is not selected
        try:
            data = json.loads(done.stdout.strip().splitlines()[-1])
            return Interpreter(path=path, version=str(data["python"]), pip_tools=data["pip_tools"])
        except (ValueError, KeyError, IndexError, TypeError):
            return None

    def find_uv(self) -> tuple[str, str]:
        """(path, version) of uv: the ``uv`` Python package's binary first, then ``uv`` on PATH."""
        if self._uv is None:
            path: str | None = None
            try:
                import uv  # type: ignore[import-not-found,unused-ignore]

                path = str(uv.find_uv_bin())
            except (ImportError, FileNotFoundError, AttributeError):
                path = self._which("uv")
            if not path:
                raise ResolverError(
                    "uv is not installed (the layer sets resolver = \"uv\")",
                    fix="pip install 'pinrepro[uv]', or set resolver = \"pip-compile\"",
                )
            try:
                done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60,
                                      env=self.environment(), check=False)
            except OSError as exc:
                raise ResolverError(f"cannot run uv at {path}: {exc.strerror}",
                                    fix="pip install --force-reinstall 'pinrepro[uv]'") from None
            words = done.stdout.split()
            if done.returncode != 0 or len(words) < 2:
                raise ResolverError(f"{path} --version failed", fix="pip install --force-reinstall 'pinrepro[uv]'")
            self._uv = (path, words[1])
        return self._uv

    # -- running -----------------------------------------------------------------------------------

    def resolve(self, argv: Sequence[str], *, cwd: Path, index_timeout: float = 60.0,
                secrets: Secrets | None = None) -> subprocess.CompletedProcess[str]:
        """Run one resolver command; the only place a resolver process starts."""
        self.invocations += 1
        self.calls.append(tuple((secrets or Secrets({})).scrub(arg) for arg in argv))
        env = self.environment()
        # Each request to an index is bounded: an index that hangs fails the lock instead of stalling it.
        if not any(name in env for name in ("PIP_TIMEOUT", "PIP_DEFAULT_TIMEOUT")):
            env["PIP_DEFAULT_TIMEOUT"] = f"{index_timeout:g}"
        env.setdefault("PIP_RETRIES", "2")
        env.setdefault("UV_HTTP_TIMEOUT", f"{max(1, round(index_timeout))}")
        try:
            # One stream: pip's explanation (stdout) and its errors (stderr) stay in the order they were written.
            with subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True) as process:
                killed = threading.Event()

                def stop() -> None:
                    killed.set()
                    process.kill()

                timer = threading.Timer(self._timeout, stop)
                timer.start()
                try:
                    assert process.stdout is not None
                    lines: list[str] = []
                    for line in process.stdout:
                        lines.append(line)
                        if self.echo is not None:
                            self.echo((secrets or Secrets({})).scrub(line.rstrip("\n")))
                    returncode = process.wait()
                finally:
                    timer.cancel()
                if killed.is_set():
                    raise subprocess.TimeoutExpired(argv, self._timeout)
            return subprocess.CompletedProcess(list(argv), returncode, "".join(lines), None)
        except OSError as exc:
            raise ResolverError(f"cannot run {argv[0]}: {exc.strerror}") from None
        except subprocess.TimeoutExpired:
            raise ResolverError(f"the resolver ran longer than {self._timeout:.0f} s and was stopped",
                                fix="check the network, or narrow the requirements") from None


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _matches(version: str, target: str) -> bool:
    wanted = target.split(".")
    return version.split(".")[: len(wanted)] == wanted


def host_platform_name() -> str | None:
    """This machine as a Docker platform (linux/amd64, linux/arm64), or None when it is none of those."""
    if not sys.platform.startswith("linux"):
        return None
    host = host_platform()
    return host if host in ("linux/amd64", "linux/arm64") else None


def check_target(resolver: str, platform: str, layer: str, platforms: Sequence[str] = ()) -> None:
    """Refuse, before anything runs, a platform this resolver cannot resolve for from this machine."""
    if resolver == "uv":
        if platform not in UV_PLATFORMS:
            raise ResolverError(
                f"uv cannot target the platform {platform}", where=f"layer '{layer}'",
                fix=f"use one of {', '.join(sorted(UV_PLATFORMS))}, or resolver = \"pip-compile\" on a "
                    f"{platform} machine",
            )
        return
    host = host_platform_name()
    if host is None or not same_platform(host, platform):
        also = len(platforms) > 1
        raise ResolverError(
            f"pip-compile resolves for the machine it runs on ({host or sys.platform}), "
            f"not for the image's platform {platform}",
            where=f"layer '{layer}'",
            fix='set resolver = "uv", which resolves for every configured platform' if also else
                f'set resolver = "uv" (it can target {platform}), or lock on a {platform} machine',
        )


def compile_layer(runner: ResolverRunner, resolver: str, request: CompileRequest, workdir: Path) -> str:
    """Compile ``request`` inside ``workdir`` (writing ``request.output`` there); return the resolver version."""
    check_target(resolver, request.platform, request.layer)
    if resolver == "uv":
        uv_path, version = runner.find_uv()
        argv = _uv_argv(uv_path, request)
    else:
        interpreter = runner.find_python(request.python)
        version = interpreter.pip_tools or "unknown"
        argv = _pip_compile_argv(interpreter.path, request)
    done = runner.resolve(argv, cwd=workdir, index_timeout=request.index.timeout, secrets=request.secrets)
    if done.returncode != 0 or not (workdir / request.output).is_file():
        raise failure(resolver, request, done.stdout, program=argv[0])
    skipped = skipped_index(done.stdout)
    if skipped is not None:
        # pip skips a page it cannot fetch and resolves from the rest: the lock would not be what was asked.
        raise ResolverError(
            f"the package index failed during resolution ({request.secrets.scrub(skipped)})",
            where=f"layer '{request.layer}' ({request.requirements})",
            fix="check the network and the index; the layer was not locked from the other indexes alone",
        )
    return version


def _resolution_args(request: CompileRequest) -> list[str]:
    """Index, constraint and upgrade options: pip-compile and uv spell them alike, so both get the same list."""
    args: list[str] = []
    if request.index.index_url:
        args += ["--index-url", request.index.index_url]
    for url in request.index.extra_index_urls:
        args += ["--extra-index-url", url]
    for link in request.index.find_links:
        args += ["--find-links", link]
    for constraint in request.constraints:
        args += ["--constraint", constraint]
    if request.upgrade:
        args.append("--upgrade")
    for name in request.upgrade_packages:
        args += ["--upgrade-package", name]
    return args


def _pip_compile_argv(python: str, request: CompileRequest) -> list[str]:
    argv = [
        python, "-m", "piptools", "compile",
        # -v: only verbose output carries pip's "The conflict is caused by:" explanation.
        "--verbose", "--no-config", "--no-color", "--newline", "lf",
        "--strip-extras", "--allow-unsafe",
        "--no-emit-index-url", "--no-emit-find-links", "--no-emit-trusted-host",
        "--annotation-style", "split",
        "--output-file", request.output,
    ]
    if request.hashes:
        # Reusing the existing lock's hashes saves pip-tools most of its time (it fetches every file's hash
        # anew otherwise), but only a lock that pinrepro wrote is trusted: a hand-edited hash must not survive.
        argv += ["--generate-hashes", "--reuse-hashes" if request.reuse_hashes else "--no-reuse-hashes"]
    return [*argv, *_resolution_args(request), "--", request.requirements]


def _uv_argv(uv: str, request: CompileRequest) -> list[str]:
    target = UV_PLATFORMS[request.platform]
    argv = [
        uv, "pip", "compile", "--no-config", "--no-progress", "--color", "never",
        "--python", sys.executable, "--python-version", request.python, "--python-platform", target,
        "--custom-compile-command", COMPILE_COMMAND, "--annotation-style", "split",
        # pip looks at every index and takes the best version; uv's default stops at the first index that has
        # the package. Same index semantics as pip-compile, so that switching resolvers changes no pin.
        "--index-strategy", "unsafe-best-match",
        "--output-file", request.output,
    ]
    if request.hashes:
        argv.append("--generate-hashes")
    return [*argv, *_resolution_args(request), request.requirements]
