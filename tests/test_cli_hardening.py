"""Issue #16 through the command line: credentials only where they belong, and nothing printed unescaped.

The refresh bot's own attacks (wrong branch, dirty files, symlinks, repository configuration, foreign pull
requests) are in tests/test_refresh_safety.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import responses
from click.testing import CliRunner

from pinrepro.cli import cli
from tests.conftest import DockerConfigFactory

PASSWORD = "s3cret-Basic-passw0rd-never-in-clear"


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.mark.parametrize("host", ["127.evil.example", "127.0.0.1.nip.io"])
def test_a_host_named_like_loopback_gets_no_plain_http(tmp_path: Path, api: responses.RequestsMock,
                                                       docker_config: DockerConfigFactory, host: str) -> None:
    # HTTPS fails (a TLS error is never retried); a loopback registry would now be tried over plain HTTP, where
    # this one asks for Basic credentials: the password must never travel in clear text to a name.
    docker_config(auths={host: ("ci", PASSWORD)})
    api.get(f"https://{host}/v2/", body=requests.exceptions.SSLError("certificate verify failed"))
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
