"""Issue #16, items 3 and 8 end to end: the real `lock` through symbolic links, and text from outside - image
labels and ENV, ``created``, dpkg names and versions, registry and GitHub error bodies, directory names - printed
to a terminal, to a workflow log and into a pull request, with the real distribution registry and real git.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import responses
from click.testing import CliRunner, Result

from pinrepro.cli import cli
from tests.support import images as im
from tests.support import pushing
from tests.support.github import pull_json
from tests.support.gitrepos import isolated_git as isolated_git  # autouse fixture: no machine git configuration
from tests.support.gitrepos import make_repos, sh
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.realregistry

TOKEN = "ghs_HostileT3xtTokenThatMustNeverLeak0001"
API = "https://api.github.com"
PULLS = f"{API}/repos/octo-org/octo-repo/pulls"
ENV = {"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": "octo-org/octo-repo", "GITHUB_API_URL": None}
# Every trick of the issue in one value: an OSC 8 link and BEL, a mention and an issue reference, HTML that closes
# the fold, a javascript: link, a table cell break, a CR/LF and three workflow commands.
HOSTILE = ("\x1b]8;;https://evil.example\x07ok\x1b]8;;\x07 @octocat #123 </details><img src=x onerror=alert(1)> "
           "[x](javascript:alert(1)) | cell \x9b31m\r\n::error::forged\n::add-mask::x\n::stop-commands::t\n##[error]y")
BASE_LAYER = {"etc/os-release": b"ID=ubuntu\nVERSION_ID=22.04\n"}
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def run(root: Path, *args: str, env: Mapping[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, [*args, "-C", str(root)], env=env, catch_exceptions=False)


def assert_terminal_safe(text: str) -> None:
    """Nothing a terminal runs, no line a workflow runner reads as a command."""
    assert not _CONTROL.search(text), repr(text)
    for line in text.split("\n"):
        assert not line.lstrip().startswith("::"), line
        assert "##[" not in line, line


def assert_markdown_safe(body: str) -> None:
    assert_terminal_safe(body)
    assert body.count("</details>") == body.count("<details>") <= 1
    for raw in ("<img", "@octocat", "#123", "javascript:", "](", "\r"):
        assert raw not in body, raw
    # Table rows keep their cells: every unescaped pipe is a border, as many as in the row under the header.
    lines = body.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("| ---"):
            width = line.count("|")
            for row in lines[index + 1:]:
                if not row.startswith("|"):
                    break
                assert len(re.findall(r"(?<!\\)\|", row)) == width, row


def _dpkg_status(packages: Mapping[str, str]) -> bytes:
    return b"".join(f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n\n"
                    .encode() for name, version in packages.items())


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


# -- 3. symbolic links stay links, with the real lock ----------------------------------------------------------


def test_lock_writes_through_a_symlinked_dockerfile(tmp_path: Path, registry: RegistryServer) -> None:
    layout = tmp_path / "layout"
    built = im.build_image(layout, "one", [BASE_LAYER])
    pushing.push(layout, "one", registry.host, "hostile/sym", "1")
    project = tmp_path / "project"
    (project / "docker").mkdir(parents=True)
    (project / "docker" / "app.Dockerfile").write_text(f"FROM {registry.host}/hostile/sym:1\n")
    os.symlink("docker/app.Dockerfile", project / "Dockerfile")
    result = run(project, "lock")
    assert result.exit_code == 0, result.stderr
    assert (project / "Dockerfile").is_symlink()
    assert os.readlink(project / "Dockerfile") == "docker/app.Dockerfile"
    assert (project / "docker" / "app.Dockerfile").read_text() == \
        f"FROM {registry.host}/hostile/sym:1@{built.digest}\n"
    assert run(project, "verify").exit_code == 0


def test_lock_refuses_a_link_out_of_the_project(tmp_path: Path, registry: RegistryServer) -> None:
    layout = tmp_path / "layout"
    im.build_image(layout, "one", [BASE_LAYER])
    pushing.push(layout, "one", registry.host, "hostile/out", "1")
    outside = tmp_path / "elsewhere.Dockerfile"
    outside.write_text(f"FROM {registry.host}/hostile/out:1\n")
    project = tmp_path / "project"
    project.mkdir()
    os.symlink(outside, project / "Dockerfile")
    result = run(project, "lock")
    assert result.exit_code == 2
    assert re.fullmatch(r"error: Dockerfile: Dockerfile is a symbolic link to \S+, outside the project - point the "
                        r"link at a file inside the project, or replace it with the file\n", result.stderr)
    assert outside.read_text() == f"FROM {registry.host}/hostile/out:1\n"
    assert (project / "Dockerfile").is_symlink() and not (project / "pinrepro.lock").exists()


def test_the_bot_commits_a_symlinked_dockerfile_as_a_link(tmp_path: Path, registry: RegistryServer,
                                                         api: responses.RequestsMock) -> None:
    api.add_passthru(registry.url)
    layout = tmp_path / "layout"
    im.build_image(layout, "v1", [BASE_LAYER])
    pushing.push(layout, "v1", registry.host, "hostile/bot", "1")
    seed = tmp_path / "seed"
    (seed / "docker").mkdir(parents=True)
    (seed / "docker" / "app.Dockerfile").write_text(f"FROM {registry.host}/hostile/bot:1\n")
    assert run(seed, "lock").exit_code == 0
    (tmp_path / "git").mkdir()
    repos = make_repos(tmp_path / "git", {"docker/app.Dockerfile": (seed / "docker/app.Dockerfile").read_bytes(),
                                          "pinrepro.lock": (seed / "pinrepro.lock").read_bytes()})
    os.symlink("docker/app.Dockerfile", repos.work / "Dockerfile")
    sh(repos.work, "add", "Dockerfile")
    sh(repos.work, "commit", "--quiet", "-m", "a link")
    sh(repos.work, "push", "--quiet", "origin", "main")
    v2 = im.build_image(layout, "v2", [BASE_LAYER, {"marker": b"2"}])
    pushing.push(layout, "v2", registry.host, "hostile/bot", "1")
    api.get(PULLS, json=[])
    api.post(PULLS, status=201, json=pull_json(2))
    result = run(repos.work, "refresh", "--open-pr", env=ENV)
    assert result.exit_code == 0, result.stderr
    assert (repos.work / "Dockerfile").is_symlink()
    tip = sh(repos.bare, "rev-parse", "refs/heads/pinrepro/refresh")
    assert sh(repos.bare, "ls-tree", tip, "Dockerfile").split()[0] == "120000"
    assert sh(repos.bare, "cat-file", "-p", f"{tip}:Dockerfile") == "docker/app.Dockerfile"
    assert v2.digest in sh(repos.bare, "show", f"{tip}:docker/app.Dockerfile")


# -- 8. text from an image ------------------------------------------------------------------------------------


def test_image_labels_env_and_dpkg_are_printed_escaped(tmp_path: Path, registry: RegistryServer,
                                                       api: responses.RequestsMock) -> None:
    api.add_passthru(registry.url)
    layout = tmp_path / "layout"
    plain = {"etc/os-release": b"ID=ubuntu\nVERSION_ID=22.04\n", "var/lib/dpkg/status": _dpkg_status({"libc6": "2.35"})}
    im.build_image(layout, "v1", [plain], env=["CUDA_VERSION=12.4.1"], created="2024-05-01T00:00:00Z")
    pushing.push(layout, "v1", registry.host, "hostile/image", "1")
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "Dockerfile").write_text(f"FROM {registry.host}/hostile/image:1\n")
    assert run(seed, "lock").exit_code == 0
    (tmp_path / "git").mkdir()
    repos = make_repos(tmp_path / "git", {name: (seed / name).read_bytes() for name in ("Dockerfile", "pinrepro.lock")})

    hostile_os = b"ID=ubuntu\nVERSION_ID=22.04\nPRETTY_NAME=\"" + HOSTILE.replace("\n", " ").encode() + b"\"\n"
    layer = {"etc/os-release": hostile_os,
             "var/lib/dpkg/status": _dpkg_status({"libc6": "2.36" + HOSTILE.replace("\n", " "),
                                                  "evil-pkg": "1.0~" + HOSTILE.replace("\n", "")})}
    im.build_image(layout, "v2", [layer], created="2024-06-01T00:00:00Z" + HOSTILE,
                   env=[f"CUDA_VERSION=12.6.3{HOSTILE}", f"NV_CUDNN_VERSION={HOSTILE}", f"PYTHON_VERSION={HOSTILE}"],
                   labels={"org.opencontainers.image.title": HOSTILE, "com.nvidia.cudnn.version": HOSTILE,
                           "maintainer": HOSTILE})
    pushing.push(layout, "v2", registry.host, "hostile/image", "1")

    dry = run(repos.work, "refresh", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert_terminal_safe(dry.stdout)
    assert_terminal_safe(dry.stderr)
    assert_markdown_safe(dry.stdout)
    assert "evil" in dry.stdout  # the package is listed, escaped

    api.get(PULLS, json=[])
    api.post(PULLS, status=201, json=pull_json(3, body="x" * 10))
    published = run(repos.work, "refresh", "--open-pr", env=ENV)
    assert published.exit_code == 0, published.stderr
    assert_terminal_safe(published.output)
    body = json.loads(next(c for c in api.calls if c.request.method == "POST").request.body)["body"]
    assert_markdown_safe(body)

    for args in (("manifest",), ("manifest", "--packages"), ("manifest", "--format", "json"),
                 ("manifest", "--diff", str(seed / "pinrepro.lock")), ("verify",), ("verify", "--format", "github"),
                 ("doctor",)):
        result = run(repos.work, *args)
        assert result.exit_code in (0, 1), (args, result.output)
        if args[-1] != "github":  # annotations are workflow commands on purpose; their values are escaped
            assert_terminal_safe(result.stdout)
        assert not _CONTROL.search(result.output), (args, result.output)
        for line in result.output.split("\n"):
            assert not line.lstrip().startswith(("::add-mask", "::stop-commands", "::error::forged")), (args, line)
