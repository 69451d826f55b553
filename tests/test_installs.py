"""RUN commands that install Python packages around the locks (pinrepro.installs), read by the one Dockerfile
reader: BuildKit's continuations, parser directives and heredocs, and its shell lexer for the words."""

from __future__ import annotations

from pathlib import Path

from pinrepro.config import Config
from pinrepro.installs import check_dockerfile_installs
from tests.support.layers import make_project

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "requirements"
UNLOCKED = ("install-unlocked", "installs {} from the index, outside the locks (versions and hashes decided when "
            "the image is built) - add it to a layer's requirements and install its lock")


def layered(root: Path) -> Config:
    """Two requirement layers, base and app (app compiled under base)."""
    return make_project(root, "file:///nowhere/simple", {"base": "alpha\n", "app": "beta\n"})


def found(text: str, config: Config) -> list[tuple[int | None, str, str]]:
    return [(f.line, f.code, f.message) for f in check_dockerfile_installs(text, "Dockerfile", config)]


def unlocked(line: int, packages: str) -> tuple[int, str, str]:
    return (line, UNLOCKED[0], UNLOCKED[1].format(packages))


def test_dockerfile_install_lines(tmp_path: Path) -> None:
    config = layered(tmp_path)
    text = (FIXTURES / "Dockerfile.installs").read_text()
    findings = check_dockerfile_installs(text, "docker/Dockerfile", config)

    def loose(line: int, packages: str, them: str = "it") -> tuple[int, str, str, str]:
        return (line, "error", "install-unlocked", f"installs {packages} from the index, outside the locks "
                f"(versions and hashes decided when the image is built) - add {them} to a layer's requirements "
                "and install its lock")

    def layer_input(line: int, value: str, layer: str) -> tuple[int, str, str, str]:
        lock = f"requirements-{layer}.lock"
        return (line, "error", "install-input", f"installs {value}, the input of layer '{layer}', instead of its "
                f"lock {lock} - use `pip install --require-hashes --no-deps -r {lock}`")

    uv_install = "use `uv pip install --require-hashes --no-deps -r requirements-app.lock`"
    assert [(f.line, f.level, f.code, f.message) for f in findings] == [
        layer_input(5, "requirements-base.in", "base"),
        loose(8, "numpy, fastapi>=0.100, httpx==0.27.0", "them"),
        layer_input(12, "/src/requirements-app.in", "app"),
        loose(15, "uvicorn"),
        (15, "error", "install-no-hashes", "installs the lock requirements-app.lock without --require-hashes, so a "
                                           f"requirement without a hash would be installed unchecked - {uv_install}"),
        (15, "error", "install-with-deps", "installs the layered lock requirements-app.lock without --no-deps, so a "
                                           f"dependency another layer pins may be resolved again - {uv_install}"),
        (16, "error", "install-not-a-lock", "installs extra.in, which is not a lock pinrepro writes - add it as a "
                                            "requirement layer ([[tool.pinrepro.layers]]) and install its lock"),
        loose(20, "pandas"),
        loose(22, "torch"),
        loose(24, "pip==24.0, setuptools==70.0.0", "them"),
        loose(25, "scipy"),
        loose(27, "rich"),
    ]
    assert {f.path for f in findings} == {"docker/Dockerfile"}


# BuildKit stops looking for parser directives at the first line that is not one - a blank line included
# (https://docs.docker.com/reference/dockerfile/#parser-directives; moby/buildkit
# frontend/dockerfile/parser/directives.go, DirectiveParser.ParseLine). The FROM parser's side of it is
# tests/test_dockerfile_pin.py::test_a_directive_after_a_blank_line_is_a_comment_for_the_from_parser.


def test_a_directive_after_a_blank_line_is_a_comment_for_the_install_check(tmp_path: Path) -> None:
    config = layered(tmp_path)
    late = "\n# escape=`\nFROM python:3.11\nRUN echo ready \\\n    && pip install numpy\n"
    # The backslash continues the RUN, as BuildKit reads it: the install is found, on its own line.
    assert found(late, config) == [unlocked(5, "numpy")]
    # The same directive at the top makes the backtick the escape: the backslash line ends the RUN and
    # "&& pip install numpy" is no instruction (BuildKit would reject it; it installs nothing).
    assert found(late.lstrip("\n"), config) == []
    assert found(late.lstrip("\n").replace("\\\n", "`\n"), config) == [unlocked(4, "numpy")]


def test_install_check_reads_commands_as_the_shell_does(tmp_path: Path) -> None:
    config = layered(tmp_path)
    text = (
        "FROM python:3.11\n"
        "RUN pip install --require-hashes --no-deps -r requirements-base.lock > /tmp/pip.log 2>&1\n"
        'RUN python3 - <<EOF\nimport subprocess\nsubprocess.run(["pip", "install", "x"])\nEOF\n'
        "RUN --mount=type=cache,target=/root/.cache \\\n"
        "    --network=default \\\n"
        "    pip install $(cat names.txt) rich\n"
    )
    # A redirection's target is no package; a Python heredoc body is no shell script; flags over several
    # lines still put the command on its own line.
    assert found(text, config) == [unlocked(9, "rich")]


def test_install_inside_a_substitution_is_found(tmp_path: Path) -> None:
    config = layered(tmp_path)
    text = "FROM python:3.11\nRUN echo \\\n    \"$(pip install numpy)\" '$(pip install literal)'\n"
    assert found(text, config) == [unlocked(3, "numpy")]


def test_a_file_the_reader_refuses_has_no_install_findings(tmp_path: Path) -> None:
    # verify reports the file itself where it parses it; the install check adds nothing to that.
    assert found("FROM python:3.11\nRUN pip install numpy <<EOF\nnever closed\n", layered(tmp_path)) == []


def test_wrappers_with_options_or_a_directory_still_run_the_install(tmp_path: Path) -> None:
    # verify reads the program past wrappers as check does (Command.words): `sudo -E pip install` installs too.
    config = layered(tmp_path)
    text = ("FROM python:3.11\nRUN sudo -E pip install numpy\nRUN /usr/bin/env -i A=1 pip install rich\n"
            "RUN stdbuf -oL python -m pip install httpx\n")
    assert found(text, config) == [unlocked(2, "numpy"), unlocked(3, "rich"), unlocked(4, "httpx")]
