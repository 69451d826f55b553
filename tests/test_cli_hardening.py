"""Issue #16 through the command line: credentials only where they belong, and nothing printed unescaped.

The refresh bot's own attacks (wrong branch, dirty files, symlinks, repository configuration, foreign pull
requests) are in tests/test_refresh_safety.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import responses
from click.testing import CliRunner

from pinrepro.cli import cli
from tests.support.dockerconfig import DockerConfigFactory

PASSWORD = "s3cret-Basic-passw0rd-never-in-clear"


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.mark.parametrize("host", ["127.evil.example", "127.0.0.1.nip.io"])
def test_a_host_named_like_loopback_gets_no_plain_http(tmp_path: Path, api: responses.RequestsMock,
                                                       docker_config: DockerConfigFactory, host: str) -> None:
    # HTTPS fails (a TLS error is never retried); a loopback registry would now be tried over plain HTTP, where
    # this one asks for Basic credentials: the password must never travel in clear text to a name.
    docker_config(auths={host: ("ci", PASSWORD)})
    api.get(f"https://{host}/v2/", body=requests.exceptions.SSLError("certificate verify failed"))
    # The plain-HTTP answers are traps, there to be asked for if pinrepro regresses (and then to ask for the
    # password): none may fire, which the assertion on ``api.calls`` below checks.
    api.assert_all_requests_are_fired = False
    api.get(f"http://{host}/v2/", status=401, headers={"WWW-Authenticate": 'Basic realm="r"'})
    api.head(f"http://{host}/v2/app/manifests/1", status=401, headers={"WWW-Authenticate": 'Basic realm="r"'})
    api.get(f"http://{host}/v2/app/manifests/1", status=401, headers={"WWW-Authenticate": 'Basic realm="r"'})
    (tmp_path / "Dockerfile").write_text(f"FROM {host}/app:1\n")

    result = CliRunner().invoke(cli, ["lock", "-C", str(tmp_path)], catch_exceptions=False)

    assert result.exit_code == 2, result.output
    assert [call.request.url for call in api.calls] == [f"https://{host}/v2/"]
    assert PASSWORD not in result.output
    assert (tmp_path / "Dockerfile").read_text() == f"FROM {host}/app:1\n"
    assert not (tmp_path / "pinrepro.lock").exists()


# -- 8. error texts and names from outside, printed one line and inert ----------------------------------------

HOSTILE = ("\x1b]8;;https://evil.example\x07ok\x1b]8;;\x07 @octocat #123 </details><img src=x> "
           "\x9b31m\r\n::error::forged\n::add-mask::x\n  ::stop-commands::t\n##[error]y")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def assert_inert(text: str) -> None:
    assert not _CONTROL.search(text), repr(text)
    for line in text.split("\n"):
        assert not line.lstrip().startswith("::"), line
        assert "##[" not in line, line


def test_a_registry_error_body_is_one_inert_line(tmp_path: Path, api: responses.RequestsMock) -> None:
    host = "registry.example.com"
    api.get(f"https://{host}/v2/", status=200)
    # A status pinrepro has no words of its own for: the registry's error text is quoted (a 5xx would be too,
    # after retries).
    body = {"errors": [{"code": "DENIED", "message": HOSTILE, "detail": HOSTILE}]}
    api.get(f"https://{host}/v2/app/manifests/1", status=400, json=body)
    (tmp_path / "Dockerfile").write_text(f"FROM {host}/app:1\n")
    result = CliRunner().invoke(cli, ["lock", "-C", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: ")
    assert "DENIED" in result.stderr
    assert_inert(result.stderr)
    assert [(call.request.method, call.request.url) for call in api.calls] == [
        ("GET", f"https://{host}/v2/"), ("GET", f"https://{host}/v2/app/manifests/1")]


def test_a_github_error_body_is_one_inert_line(tmp_path: Path, api: responses.RequestsMock,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.gitrepos import make_repos, sh
    from tests.support.refresh import PULLS, FakeLock, cli_refresh, upstream

    repos = make_repos(tmp_path, {"Dockerfile": b"FROM python:3.11-slim\n"})
    monkeypatch.setattr("pinrepro.lock.run_lock", FakeLock(*upstream(1)))
    api.get(PULLS, json=[])
    api.post(PULLS, status=422, json={"message": HOSTILE, "errors": [{"message": HOSTILE}, HOSTILE]})
    result = cli_refresh(repos, "--open-pr")
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: ")
    assert "GitHub rejected the request" in result.stderr
    assert_inert(result.output)
    # With -v the traceback quotes the same text: escaped too.
    sh(repos.work, "checkout", "--quiet", "--", ".")
    verbose = cli_refresh(repos, "--open-pr", "-v")
    assert verbose.exit_code == 2 and "Traceback" in verbose.stderr
    assert_inert(verbose.output)


WEIRD_DIR = "proj\n::error::forged\x1b[31m\x07"


def test_a_project_directory_named_with_a_newline_and_esc(tmp_path: Path) -> None:
    from tests.support.refresh import ENV

    missing = CliRunner().invoke(cli, ["lock", "-C", str(tmp_path / WEIRD_DIR)], catch_exceptions=False)
    assert missing.exit_code == 2
    assert len(missing.stderr.splitlines()) == 1
    assert_inert(missing.stderr)
    assert "proj\\n::error::forged\\x1b[31m\\x07" in missing.stderr  # shown, escaped

    project = tmp_path / WEIRD_DIR
    project.mkdir()
    (project / "Dockerfile").write_text("FROM python:3.11-slim\n")  # not pinned: verify reports it
    (project / "::warning::x.Dockerfile").write_text("FROM python:3.12\n")
    for args in (["verify"], ["verify", "--format", "github"], ["verify", "--format", "json"],
                 ["refresh", "--open-pr"]):
        result = CliRunner().invoke(cli, [*args, "-C", str(project)], env={**ENV, "GITHUB_WORKSPACE": str(tmp_path)},
                                    catch_exceptions=False)
        assert result.exit_code in (1, 2), (args, result.output)
        assert not _CONTROL.search(result.output), (args, result.output)
        if args[-1] == "github":
            # Our own annotations, one per finding; the directory and file names escaped inside their properties.
            lines = result.stdout.splitlines()
            assert len(lines) >= 2 and all(line.startswith(("::error ", "::warning ")) for line in lines), lines
            assert all("::" not in line.split(" ", 1)[1].split("::", 1)[0] for line in lines)
        else:
            assert_inert(result.output)
