"""githost.py: which GitHub repository and API a git remote names, and the token from the environment (no network)."""

from __future__ import annotations

import pytest

from pinrepro.errors import GitHubError
from pinrepro.githost import Repository, api_url_for_remote, api_url_from_env, token_from_env

TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
REPO = Repository("octo-org", "octo-repo")


def test_api_url_default() -> None:
    assert api_url_from_env({}) == "https://api.github.com"


@pytest.mark.parametrize(("remote", "api"), [
    ("https://github.com/octo-org/octo-repo.git", "https://api.github.com"),
    ("git@github.com:octo-org/octo-repo.git", "https://api.github.com"),
    ("https://acme.ghe.com/octo-org/octo-repo.git", "https://api.acme.ghe.com"),
    ("https://ghe.example:8443/octo-org/octo-repo.git", "https://ghe.example:8443/api/v3"),
    ("ssh://git@ghe.example:2222/octo-org/octo-repo.git", "https://ghe.example/api/v3"),
    ("/srv/git/repo.git", "https://api.github.com"),
])
def test_the_api_is_the_one_of_the_remotes_host(remote: str, api: str) -> None:
    assert api_url_for_remote(remote, {}) == api


def test_github_api_url_must_name_the_remotes_host() -> None:
    assert api_url_for_remote("https://ghe.example/o/r.git", {"GITHUB_API_URL": "https://ghe.example/api/v3/"}) == (
        "https://ghe.example/api/v3")
    with pytest.raises(GitHubError) as info:
        api_url_for_remote("https://github.com/o/r.git", {"GITHUB_API_URL": "https://evil.example/api/v3"})
    assert info.value.what == ("GITHUB_API_URL points at evil.example, not at the API of github.com where the git "
                               "remote is: the token would go to another server")
    with pytest.raises(GitHubError, match="the token would go to another server"):  # http, not https
        api_url_for_remote("https://github.com/o/r.git", {"GITHUB_API_URL": "http://api.github.com"})


def test_an_ssh_alias_needs_github_api_url() -> None:
    with pytest.raises(GitHubError, match=r"cannot tell which GitHub API serves the git remote's host 'github-work'"):
        api_url_for_remote("git@github-work:octo-org/octo-repo.git", {})
    assert api_url_for_remote("git@github-work:o/r.git", {"GITHUB_API_URL": "https://api.github.com"}) == (
        "https://api.github.com")


# -- the token from the environment -----------------------------------------------------------------------


def test_token_from_env() -> None:
    assert token_from_env("GITHUB_TOKEN", {"GITHUB_TOKEN": f" {TOKEN}\n"}) == TOKEN
    assert token_from_env("BOT_TOKEN", {"BOT_TOKEN": TOKEN}) == TOKEN
    with pytest.raises(GitHubError) as info:
        token_from_env("BOT_TOKEN", {"GITHUB_TOKEN": TOKEN})
    assert str(info.value) == (
        "--open-pr: environment variable BOT_TOKEN is not set - pass a token with pull-requests: write in BOT_TOKEN "
        "(in Actions: env: BOT_TOKEN: ${{ secrets.GITHUB_TOKEN }}), or name another with --token-env")


@pytest.mark.parametrize("url", [
    "https://github.com/octo-org/octo-repo.git",
    "https://github.com/octo-org/octo-repo",
    "https://github.com/octo-org/octo-repo/",
    f"https://x-access-token:{TOKEN}@github.com/octo-org/octo-repo.git",
    "git@github.com:octo-org/octo-repo.git",
    "github.com:octo-org/octo-repo",
    "ssh://git@github.com/octo-org/octo-repo.git",
    "ssh://git@ghe.example:2222/octo-org/octo-repo.git",
    "https://ghe.example/octo-org/octo-repo.git",
])
def test_repository_from_remote_url(url: str) -> None:
    assert Repository.from_remote_url(url) == REPO


@pytest.mark.parametrize("url", ["/srv/git/repo.git", f"https://{TOKEN}@github.com/", "file:///tmp/x/y.git",
                                 "https://github.com/octo org/x"])
def test_repository_from_bad_remote_url(url: str) -> None:
    with pytest.raises(GitHubError) as info:
        Repository.from_remote_url(url)
    assert str(info.value) == ("git remote: cannot tell the GitHub repository from the git remote URL - "
                               "set GITHUB_REPOSITORY=owner/name")


@pytest.mark.parametrize(("text", "ok"), [("octo-org/octo-repo", True), ("octo-org", False), ("a/b/c", False),
                                          ("/x", False), ("a b/c", False)])
def test_repository_parse(text: str, ok: bool) -> None:
    if ok:
        assert Repository.parse(text) == REPO
        assert str(REPO) == text
    else:
        with pytest.raises(GitHubError, match="is not owner/name"):
            Repository.parse(text)
