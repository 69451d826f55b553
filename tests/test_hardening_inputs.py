"""Bad project files and bad image contents (issue #14 items 4, 10, 11, 13, 14, and item 3 for GitHub), through
the CLI: one line, exit 2, the right words, every file as it was.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses
from click.testing import CliRunner, Result

from pinrepro.cli import cli
from tests.support import images as im
from tests.support import pushing
from tests.support.cliproject import snapshot
from tests.support.gitrepos import Repos
from tests.support.refresh import (  # noqa: F401 - fixtures used by name
    ENV,
    PULLS,
    TOKEN,
    FakeLock,
    api,
    assert_token_hidden,
    cli_refresh,
    list_open,
    project,
    remote_branch,
    upstream,
)
from tests.support.registry import RegistryServer


def invoke(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*(args or ("lock",)), "-C", str(root)], catch_exceptions=False)


def one_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "internal error" not in lines[0]
    return lines[0]


# -- item 14: the reference grammar is ASCII --------------------------------------------------------------------

@pytest.mark.parametrize("image", ["host.example/app:１.０", "host.example/app:v²é", "ｕbuntu:22.04",
                                   "host.example/app:1٣"])
def test_non_ascii_reference_is_refused_not_pinned(tmp_path: Path, image: str) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {image}\n", encoding="utf-8")
    before = snapshot(tmp_path)
    line = one_line(invoke(tmp_path))
    assert "non-ASCII" in line and "Dockerfile:1" in line
    assert snapshot(tmp_path) == before


# -- item 10: ARG expansion depth, long lines --------------------------------------------------------------------

def test_deeply_nested_arg_expansion_is_bounded(tmp_path: Path) -> None:
    nested = "${A:-" * 5000 + "ubuntu:22.04" + "}" * 5000
    (tmp_path / "Dockerfile").write_text(f"ARG IMAGE={nested}\nFROM $IMAGE\n")
    result = invoke(tmp_path, "verify")
    assert "internal error" not in result.stderr and "RecursionError" not in result.stderr
    assert "nested more than 32 levels" in result.stdout


def test_deeply_nested_from_expansion_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM " + "${A:-" * 5000 + "ubuntu" + "}" * 5000 + "\n")
    before = snapshot(tmp_path)
    result = invoke(tmp_path, "verify")
    assert "internal error" not in result.stderr and "RecursionError" not in result.stderr
    assert len(max(result.stderr.splitlines(), key=len)) < 1000
    for command in ("verify", "lock"):
        line = one_line(invoke(tmp_path, command))
        assert line.startswith("error: Dockerfile:1: FROM image '") and "characters cut" in line
        assert "nested more than 32 levels deep" in line
    assert snapshot(tmp_path) == before


def test_huge_from_line_error_is_cut(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM ubuntu:22.04 " + "x " * 500_000 + "\n")
    line = one_line(invoke(tmp_path))
    assert len(line) < 1000 and "characters cut" in line


# -- item 11: linear parsing keeps behaviour (speed is measured in bench/parse.py) -------------------------------

def test_hundred_thousand_line_run_still_parses_and_pins_the_right_line(tmp_path: Path) -> None:
    from pinrepro.dockerfile import parse, rewrite

    text = ("FROM ubuntu:22.04 AS build\nRUN echo a \\\n" + "  && echo b \\\n" * 100_000 + "  && true\n"
            "FROM \\\n" + "  \\\n" * 1000 + "  debian:12\n")
    dockerfile = parse(text)
    assert [(s.image, s.line) for s in dockerfile.sites] == [("ubuntu:22.04", 1), ("debian:12", 100_004)]
    pinned = rewrite(dockerfile, lambda site: "sha256:" + "a" * 64)
    assert pinned.count("@sha256:" + "a" * 64) == 2
    assert pinned.endswith("  debian:12@sha256:" + "a" * 64 + "\n")


# -- item 4: requirement includes stay inside the project ----------------------------------------------------------

@pytest.mark.parametrize("include", ["-r /etc/passwd", "-c ../outside.txt", "--requirement=/etc/hostname"])
def test_requirement_include_outside_the_project_is_refused_without_quoting_it(tmp_path: Path,
                                                                               include: str) -> None:
    project_dir = tmp_path / "project"
    project_dir.mkdir()
    (tmp_path / "outside.txt").write_text("root:x:0:0:secret-line\n")
    (project_dir / "pinrepro.toml").write_text('[[layers]]\nname = "base"\nrequirements = "base.in"\n')
    (project_dir / "base.in").write_text(f"{include}\nrequests\n")
    before = snapshot(project_dir)
    line = one_line(invoke(project_dir))
    assert "base.in:1" in line and "is outside the project" in line
    assert "root:x" not in line and "secret-line" not in line
    assert snapshot(project_dir) == before


# -- item 10: decompression bombs -----------------------------------------------------------------------------------

@pytest.mark.realregistry
@pytest.mark.parametrize(("setting", "words"), [
    ({"PINREPRO_MAX_LAYER_BYTES": str(16 << 20)}, "inflates to more than 16777216 bytes"),
    ({"PINREPRO_MAX_LAYER_BYTES": str(64 << 20), "PINREPRO_MAX_LAYER_RATIO": "50"},
     "inflates more than 50 times its compressed size"),
])
def test_layer_that_inflates_past_the_cap_is_refused(tmp_path: Path, registry: RegistryServer,
                                                      monkeypatch: pytest.MonkeyPatch, setting: dict[str, str],
                                                      words: str) -> None:
    layout = tmp_path / "layout"
    zeros = bytes(48 << 20)  # gzip shrinks it about 1000 times: a (small) decompression bomb
    image = im.build_image(layout, None, [{"etc/os-release": b"ID=debian\n", "opt/zeros": zeros}])
    im.build_index(layout, "bomb", [image])
    repo = f"bomb/{tmp_path.name.lower()}"
    pushing.push(layout, "bomb", registry.host, repo, "1")
    root = tmp_path / "project"
    root.mkdir()
    (root / "Dockerfile").write_text(f"FROM {registry.host}/{repo}:1\n")
    for key, value in setting.items():
        monkeypatch.setenv(key, value)
    before = snapshot(root)
    line = one_line(invoke(root))
    assert words in line
    assert snapshot(root) == before


# -- item 13: a rejected push says why; item 3: GitHub's echo of the token ----------------------------------------

def test_rejected_push_includes_the_remotes_answer(project: Repos, api: responses.RequestsMock,  # noqa: F811
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    hook = project.bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'error: GH006: Protected branch update failed for refs/heads/x' >&2\n"
                    "echo 'error: Changes must be made through a pull request.' >&2\nexit 1\n")
    hook.chmod(0o755)
    target, old, new = upstream(1)
    monkeypatch.setattr("pinrepro.lock.run_lock", FakeLock(target, old, new))
    result = cli_refresh(project, "--open-pr")
    assert result.exit_code == 2
    line = result.stderr.strip().splitlines()[-1]
    assert "`git push` failed" in line
    assert "remote: error: GH006: Protected branch update failed" in line
    assert "Changes must be made through a pull request" in line
    assert "pre-receive hook declined" in line
    assert_token_hidden(result, project)
    assert remote_branch(project) is None
    assert len(api.calls) == 0  # the push failed first: GitHub was never asked, no pull request opened


def test_github_401_echoing_the_authorization_header_is_scrubbed(project: Repos,  # noqa: F811
                                                                 api: responses.RequestsMock,  # noqa: F811
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    target, old, new = upstream(1)
    monkeypatch.setattr("pinrepro.lock.run_lock", FakeLock(target, old, new))
    import base64
    api.get(PULLS, status=401, json={"message": f"Bad credentials: Authorization: Bearer {TOKEN} "
                                                f"(b64 {base64.b64encode(TOKEN.encode()).decode()})"})
    result = cli_refresh(project, "--open-pr")
    assert result.exit_code == 2
    assert "GitHub rejected the token (401 Bad credentials" in result.stderr
    assert_token_hidden(result, project)
    assert base64.b64encode(TOKEN.encode()).decode()[4:30] not in result.stderr


@pytest.fixture(autouse=True)
def _no_index_env() -> Iterator[None]:
    # The include test must fail on the include, before any resolver starts.
    saved = {k: os.environ.pop(k) for k in ("PIP_INDEX_URL", "UV_INDEX_URL") if k in os.environ}
    yield
    os.environ.update(saved)


def test_a_megabyte_unresolved_from_gives_a_short_finding(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("ARG X\nFROM ${X}" + "a" * 1_000_000 + "\n")
    for command in ("verify", "lock"):
        result = invoke(tmp_path, command)
        assert max(len(line) for line in (result.stdout + result.stderr).splitlines()) < 1100
        assert "characters cut" in result.stdout + result.stderr
