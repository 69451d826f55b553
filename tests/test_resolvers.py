"""resolvers.py: finding an interpreter or uv, the isolated environment, the argument lists, and running one
resolver process under a timeout. Fake interpreters are shell scripts on a PATH of the test's own; what a real
pip-compile or uv writes is covered by tests/test_layers_compile.py."""

from __future__ import annotations

import os
import platform as stdlib_platform
import stat
import sys
from pathlib import Path

import pytest

from pinrepro import resolvers
from pinrepro.config import IndexOptions
from pinrepro.errors import ResolverError
from pinrepro.pyindex import Secrets
from pinrepro.resolverfailure import failure, skipped_index
from pinrepro.resolvers import CompileRequest, ResolverRunner, check_target
from pinrepro.scrub import redact


def request(**changes: object) -> CompileRequest:
    fields: dict[str, object] = {
        "layer": "base", "requirements": "requirements-base.in", "output": "requirements-base.lock",
        "constraints": ("requirements-sys.lock",), "python": "3.11", "platform": "linux/amd64", "hashes": True,
        "index": IndexOptions(index_url="https://idx.example/simple", extra_index_urls=("https://x.example/s",),
                              find_links=("/wheels",)),
    }
    return CompileRequest(**(fields | changes))  # type: ignore[arg-type]


def fake_python(bindir: Path, name: str, version: str, pip_tools: str | None) -> Path:
    """A ``pythonX.Y`` that answers pinrepro's probe as an interpreter of ``version`` would."""
    bindir.mkdir(exist_ok=True)
    tools = f'"{pip_tools}"' if pip_tools else "null"
    script = bindir / name
    script.write_text(f"#!/bin/sh\necho '{{\"python\": \"{version}\", \"pip_tools\": {tools}}}'\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


# A Python version other than the running one, so only the fake interpreters on the search path can answer.
OTHER = f"3.{sys.version_info.minor - 1}"


# -- the environment --------------------------------------------------------------------------------------


def test_runner_environment_keeps_only_transport_settings() -> None:
    runner = ResolverRunner(environ={
        "PATH": "/bin", "PIP_INDEX_URL": "x", "PIP_FIND_LINKS": "x", "PIP_CERT": "/ca.pem", "PIP_RETRIES": "1",
        "UV_INDEX_URL": "x", "UV_CACHE_DIR": "/c", "CUSTOM_COMPILE_COMMAND": "make", "HOME": "/h",
    })
    assert runner.environment() == {
        "PATH": "/bin", "PIP_CERT": "/ca.pem", "PIP_RETRIES": "1", "UV_CACHE_DIR": "/c", "HOME": "/h",
        "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1",
        "PIP_REQUIRE_VIRTUALENV": "0", "CUSTOM_COMPILE_COMMAND": "pinrepro lock", "UV_PYTHON_DOWNLOADS": "never",
        "NO_COLOR": "1",
    }


def test_search_path_replaces_path_and_pythonhome_is_dropped() -> None:
    env = ResolverRunner(environ={"PATH": "/usr/bin", "PYTHONHOME": "/opt/py"}, search_path="/mine").environment()
    assert env["PATH"] == "/mine" and "PYTHONHOME" not in env


def test_index_credentials_stay_out_of_messages_and_reprs() -> None:
    assert redact("https://u:p@idx.example:8443/simple") == "https://***@idx.example:8443/simple"
    assert redact("https://idx.example/simple") == "https://idx.example/simple"
    assert redact("from https://__token__:pypi-AgE@idx.example/s and git+https://tok@github.com/x/y.git, a@b") == (
        "from https://***@idx.example/s and git+https://***@github.com/x/y.git, a@b")
    secret = request(index=IndexOptions(index_url="https://u:s3cret@idx.example/simple"))
    assert "s3cret" not in repr(secret)


# -- finding an interpreter ------------------------------------------------------------------------------


def test_the_python_of_the_target_version_with_pip_tools_is_found(tmp_path: Path) -> None:
    wanted = fake_python(tmp_path / "bin", f"python{OTHER}", f"{OTHER}.14", "7.4.1")
    fake_python(tmp_path / "bin", "python3", "3.99.1", "7.4.1")
    runner = ResolverRunner(search_path=str(tmp_path / "bin"))
    found = runner.find_python(OTHER)
    assert (found.path, found.version, found.pip_tools) == (str(wanted), f"{OTHER}.14", "7.4.1")
    assert runner.invocations == 0  # probes are not resolver runs


def test_a_patch_level_target_needs_that_exact_interpreter(tmp_path: Path) -> None:
    fake_python(tmp_path / "bin", f"python{OTHER}", f"{OTHER}.14", "7.4.1")
    runner = ResolverRunner(search_path=str(tmp_path / "bin"))
    assert runner.find_python(f"{OTHER}.14").version == f"{OTHER}.14"
    with pytest.raises(ResolverError, match=rf"no Python {OTHER}\.2 interpreter found"):
        runner.find_python(f"{OTHER}.2")


def test_an_interpreter_without_pip_tools_says_how_to_install_it(tmp_path: Path) -> None:
    python = fake_python(tmp_path / "bin", f"python{OTHER}", f"{OTHER}.14", None)
    with pytest.raises(ResolverError) as caught:
        ResolverRunner(search_path=str(tmp_path / "bin")).find_python(OTHER)
    assert caught.value.what == (f"pip-tools is not installed for {python} (Python {OTHER}.14), which pinrepro "
                                 f"needs to compile for Python {OTHER}")
    assert caught.value.fix == f'run `{python} -m pip install pip-tools`, or set resolver = "uv"'


def test_no_interpreter_points_to_uv(tmp_path: Path) -> None:
    broken = tmp_path / "bin" / f"python{OTHER}"
    broken.parent.mkdir()
    broken.write_text("#!/bin/sh\necho 'pyenv: version is not installed' >&2\nexit 127\n")  # a shim
    broken.chmod(0o755)
    with pytest.raises(ResolverError) as caught:
        ResolverRunner(search_path=str(tmp_path / "bin")).find_python(OTHER)
    assert caught.value.what.startswith(f"no Python {OTHER} interpreter found to run pip-compile")
    assert 'set resolver = "uv"' in (caught.value.fix or "")


# -- which platforms a resolver can target --------------------------------------------------------------------


def test_uv_targets_the_platforms_it_knows() -> None:
    check_target("uv", "linux/arm64/v8", "base")
    with pytest.raises(ResolverError) as caught:
        check_target("uv", "linux/s390x", "base")
    assert (caught.value.what, caught.value.where) == ("uv cannot target the platform linux/s390x", "layer 'base'")


@pytest.mark.parametrize(("machine", "platform", "ok"), [
    ("x86_64", "linux/amd64", True), ("aarch64", "linux/arm64/v8", True), ("arm64", "linux/arm64", True),
    ("x86_64", "linux/arm64", False), ("riscv64", "linux/amd64", False),
])
def test_pip_compile_targets_only_the_machine_it_runs_on(monkeypatch: pytest.MonkeyPatch, machine: str,
                                                          platform: str, ok: bool) -> None:
    monkeypatch.setattr(stdlib_platform, "machine", lambda: machine)
    if ok:
        check_target("pip-compile", platform, "base")
        return
    with pytest.raises(ResolverError) as one:
        check_target("pip-compile", platform, "base", [platform])
    assert one.value.what.endswith(f"not for the image's platform {platform}")
    assert one.value.fix == f'set resolver = "uv" (it can target {platform}), or lock on a {platform} machine'
    with pytest.raises(ResolverError) as several:
        check_target("pip-compile", platform, "base", ["linux/amd64", "linux/arm64"])
    assert several.value.fix == 'set resolver = "uv", which resolves for every configured platform'


# -- the argument lists -------------------------------------------------------------------------------------


def test_pip_compile_arguments_keep_the_machine_out_and_end_with_the_input() -> None:
    argv = resolvers._pip_compile_argv("/py", request(reuse_hashes=True, upgrade_packages=("numpy",)))
    assert argv[:4] == ["/py", "-m", "piptools", "compile"]
    for flag in ("--no-config", "--no-emit-index-url", "--no-emit-find-links", "--no-emit-trusted-host",
                 "--generate-hashes", "--reuse-hashes"):
        assert flag in argv
    assert argv[argv.index("--output-file") + 1] == "requirements-base.lock"
    assert argv[-2:] == ["--", "requirements-base.in"]
    assert argv[argv.index("--generate-hashes") + 2:-2] == [
        "--index-url", "https://idx.example/simple", "--extra-index-url", "https://x.example/s",
        "--find-links", "/wheels", "--constraint", "requirements-sys.lock", "--upgrade-package", "numpy"]
    assert "--no-reuse-hashes" in resolvers._pip_compile_argv("/py", request())
    assert "--generate-hashes" not in resolvers._pip_compile_argv("/py", request(hashes=False))


def test_uv_arguments_target_the_layers_python_and_platform() -> None:
    argv = resolvers._uv_argv("/uv", request(platform="linux/arm64", upgrade=True))
    assert argv[:3] == ["/uv", "pip", "compile"]
    assert argv[argv.index("--python") + 1] == sys.executable
    assert argv[argv.index("--python-version") + 1] == "3.11"
    assert argv[argv.index("--python-platform") + 1] == "aarch64-manylinux_2_28"
    assert argv[argv.index("--index-strategy") + 1] == "unsafe-best-match"
    assert "--upgrade" in argv and argv[-1] == "requirements-base.in"


# -- running a resolver ---------------------------------------------------------------------------------------


def test_resolve_streams_scrubbed_lines_and_bounds_each_index_request(tmp_path: Path) -> None:
    secrets = Secrets({"TOKEN": "tok-9c1f"})
    secrets.expand("https://u:${TOKEN}@idx.example/simple", where="pinrepro.toml")
    seen: list[str] = []
    runner = ResolverRunner(environ={"PATH": os.defpath}, echo=seen.append)
    done = runner.resolve(["/bin/sh", "-c", 'echo "fetching https://u:tok-9c1f@idx.example/simple" && '
                           'echo "timeout $PIP_DEFAULT_TIMEOUT retries $PIP_RETRIES uv $UV_HTTP_TIMEOUT" >&2',
                           "https://u:tok-9c1f@idx.example/simple"],
                          cwd=tmp_path, index_timeout=7.5, secrets=secrets)
    assert done.returncode == 0
    assert done.stdout == "fetching https://u:tok-9c1f@idx.example/simple\ntimeout 7.5 retries 2 uv 8\n"
    # Shown to the user (and kept in ``calls``) without the token, and with no credentials at all in a URL.
    assert seen == ["fetching https://***@idx.example/simple", "timeout 7.5 retries 2 uv 8"]
    assert runner.calls[0][-1] == "https://***@idx.example/simple"
    assert runner.invocations == 1


def test_a_resolver_that_runs_too_long_is_stopped(tmp_path: Path) -> None:
    runner = ResolverRunner(environ={"PATH": os.defpath}, timeout=1)
    with pytest.raises(ResolverError) as caught:
        runner.resolve(["/bin/sh", "-c", "exec sleep 30"], cwd=tmp_path)
    assert caught.value.what == "the resolver ran longer than 1 s and was stopped"


def test_a_resolver_that_cannot_start_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(ResolverError, match=r"cannot run /no/such/pip-compile: No such file or directory"):
        ResolverRunner(environ={"PATH": os.defpath}).resolve(["/no/such/pip-compile"], cwd=tmp_path)


# -- what a failed run says -----------------------------------------------------------------------------------


def test_a_failed_index_is_named_as_written_with_its_variables() -> None:
    """The resolver saw the expanded URL; the error names it as configured (${VAR}), never with the token, and a
    URL with written-out credentials in the resolver's output is masked."""
    secrets = Secrets({"IDX_USER": "robot", "IDX_TOKEN": "tok-9c1f"})
    expanded = secrets.expand("https://${IDX_USER}:${IDX_TOKEN}@idx.example/simple", where="pinrepro.toml")
    index = IndexOptions(index_url=expanded, extra_index_urls=("https://x.example/s",))
    fetch = (f"Could not fetch URL {expanded}/alpha/: connection error: Max retries exceeded - skipping\n"
             "ERROR: No matching distribution found for alpha (https://v:pass-w0rd@other.example/simple)\n")
    named = failure("pip-compile", request(index=index, secrets=secrets), fetch, program="/py")
    assert named.line() == (
        "layer 'base' (requirements-base.in): the package index https://${IDX_USER}:${IDX_TOKEN}@idx.example/simple "
        "failed during resolution: No matching distribution found for alpha (https://***@other.example/simple) - "
        "check the index; the layer was not locked from the other indexes alone")
    unnamed = failure("uv", request(index=index, secrets=secrets), "error: dns error\n", program="/uv")
    assert unnamed.line() == (
        "layer 'base' (requirements-base.in): cannot reach the package index "
        "(https://${IDX_USER}:${IDX_TOKEN}@idx.example/simple, https://x.example/s) - check the network or proxy, "
        "and index_url / extra_index_urls in the configuration")
    assert skipped_index(fetch) == f"{expanded}/alpha/: connection error: Max retries exceeded"
    assert skipped_index("Could not fetch URL https://idx.example/simple/nope/: 404 Client Error - skipping\n") is None
