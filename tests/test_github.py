"""github.py against the GitHub REST API, mocked with `responses` in GitHub's own answer shapes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from pinrepro.errors import GitHubError
from pinrepro.githost import Repository, api_url_from_env
from pinrepro.github import GitHub, PullOutcome, PullRequest
from tests.support.github import pull_json

TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
API = "https://api.github.com"
GHES = "https://ghe.example/api/v3"
REPO = Repository("octo-org", "octo-repo")
BRANCH = "pinrepro/refresh"
PULLS = f"{API}/repos/octo-org/octo-repo/pulls"
HEADERS = {
    "Accept": "application/vnd.github+json",
    "X-GitHub-Api-Version": "2022-11-28",
    "Authorization": f"Bearer {TOKEN}",
}


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    # Every registered call must happen, and any unregistered call fails the test (ConnectionError).
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def client(api_url: str = API) -> GitHub:
    return GitHub(TOKEN, api_url=api_url)


def list_open(mock: responses.RequestsMock, answer: list[dict[str, Any]], base: str = PULLS) -> None:
    mock.get(base, json=answer, match=[
        matchers.query_param_matcher({"head": f"octo-org:{BRANCH}", "state": "open", "per_page": "100"}),
        matchers.header_matcher(HEADERS),
    ])


def sent_json(call: Any) -> Any:
    return json.loads(call.request.body)


# -- the happy paths ------------------------------------------------------------------------------------------


def test_create_when_none_is_open(api: responses.RequestsMock) -> None:
    list_open(api, [])
    api.post(PULLS, status=201, json=pull_json(7, title="T", body="B"), match=[matchers.header_matcher(HEADERS)])
    api.post(f"{API}/repos/octo-org/octo-repo/issues/7/labels", json=[{"name": "dependencies"}])
    api.post(f"{PULLS}/7/requested_reviewers", status=201, json=pull_json(7, title="T", body="B"))

    outcome = client().open_or_update_pull(REPO, branch=BRANCH, base="main", title="T", body="B",
                                           labels=["dependencies"], reviewers=["octocat"], team_reviewers=["ml"])

    assert outcome == PullOutcome("created", PullRequest(7, "https://github.com/octo-org/octo-repo/pull/7",
                                                         BRANCH, "main", "T", "B", "open", "octo-org/octo-repo"))
    assert sent_json(api.calls[1]) == {"title": "T", "head": BRANCH, "base": "main", "body": "B",
                                       "maintainer_can_modify": True}
    assert sent_json(api.calls[2]) == {"labels": ["dependencies"]}
    assert sent_json(api.calls[3]) == {"reviewers": ["octocat"], "team_reviewers": ["ml"]}
    for call in api.calls:
        assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert call.request.headers["X-GitHub-Api-Version"] == "2022-11-28"
        assert call.request.headers["Accept"] == "application/vnd.github+json"


def test_update_the_open_one_never_a_second(api: responses.RequestsMock) -> None:
    list_open(api, [pull_json(42)])
    api.patch(f"{PULLS}/42", json=pull_json(42, title="new title", body="new body"),
              match=[matchers.header_matcher(HEADERS)])

    outcome = client().open_or_update_pull(REPO, branch=BRANCH, base="main", title="new title", body="new body",
                                           labels=["dependencies"], reviewers=["octocat"])

    assert outcome.action == "updated"
    assert outcome.pull.number == 42
    assert sent_json(api.calls[1]) == {"title": "new title", "body": "new body"}
    # No POST /pulls, no labels, no re-requested reviews: the fixture fails on any unregistered call.
    assert [c.request.method for c in api.calls] == ["GET", "PATCH"]


def test_unchanged_pull_is_not_patched(api: responses.RequestsMock) -> None:
    list_open(api, [pull_json(42, title="same", body="same body")])
    outcome = client().open_or_update_pull(REPO, branch=BRANCH, base="main", title="same", body="same body")
    assert outcome.action == "unchanged"
    assert len(api.calls) == 1


def test_list_ignores_other_heads(api: responses.RequestsMock) -> None:
    list_open(api, [pull_json(3, head="someone-else")])
    assert client().find_open_pull(REPO, BRANCH) is None


def test_422_already_exists_finds_and_updates(api: responses.RequestsMock) -> None:
    list_open(api, [])
    api.post(PULLS, status=422, json={
        "message": "Validation Failed",
        "errors": [{"resource": "PullRequest", "code": "custom",
                    "message": f"A pull request already exists for octo-org:{BRANCH}."}],
        "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
        "status": "422",
    })
    list_open(api, [pull_json(42)])
    api.patch(f"{PULLS}/42", json=pull_json(42, title="T", body="B"))

    outcome = client().open_or_update_pull(REPO, branch=BRANCH, base="main", title="T", body="B")

    assert outcome.action == "updated"
    assert outcome.pull.number == 42
    assert [c.request.method for c in api.calls] == ["GET", "POST", "GET", "PATCH"]


def test_ghes_base_url(api: responses.RequestsMock) -> None:
    base = api_url_from_env({"GITHUB_API_URL": GHES + "/"})
    assert base == GHES
    list_open(api, [], base=f"{GHES}/repos/octo-org/octo-repo/pulls")
    api.post(f"{GHES}/repos/octo-org/octo-repo/pulls", status=201, json=pull_json(5, api=GHES))
    outcome = client(base).open_or_update_pull(REPO, branch=BRANCH, base="main", title="old title",
                                               body="old body")
    assert outcome.pull.html_url == "https://ghe.example/octo-org/octo-repo/pull/5"


def test_default_branch(api: responses.RequestsMock) -> None:
    api.get(f"{API}/repos/octo-org/octo-repo", json={"full_name": "octo-org/octo-repo", "default_branch": "trunk"})
    assert client().default_branch(REPO) == "trunk"


# -- errors: one actionable line each, never the token --------------------------------------------------------


def _error(api: responses.RequestsMock, status: int, body: dict[str, Any], headers: dict[str, str] | None = None,
           ) -> str:
    api.get(PULLS, status=status, json=body, headers=headers or {})
    with pytest.raises(GitHubError) as info:
        client().find_open_pull(REPO, BRANCH)
    text = str(info.value)
    assert TOKEN not in text and TOKEN not in repr(info.value)
    assert "\n" not in text
    return text


WHERE = f"{API} GET /repos/octo-org/octo-repo/pulls"


def test_401(api: responses.RequestsMock) -> None:
    text = _error(api, 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
    assert text == (f"{WHERE}: GitHub rejected the token (401 Bad credentials) when trying to list pull requests "
                    "of octo-org/octo-repo - check that the token variable holds a valid, unexpired token")


def test_403_secondary_rate_limit(api: responses.RequestsMock) -> None:
    text = _error(api, 403, {"message": "You have exceeded a secondary rate limit. Please wait a few minutes "
                                        "before you try again.",
                             "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"},
                  headers={"retry-after": "60"})
    assert text == (f"{WHERE}: GitHub's secondary rate limit stopped the request (403) to list pull requests of "
                    "octo-org/octo-repo - wait 60 seconds and run again; avoid running several bots at once")


def test_403_primary_rate_limit(api: responses.RequestsMock) -> None:
    text = _error(api, 403, {"message": "API rate limit exceeded for installation ID 1234."},
                  headers={"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0",
                           "x-ratelimit-reset": "1732520400", "x-ratelimit-resource": "core"})
    assert text == (f"{WHERE}: GitHub's API rate limit is used up (403) when trying to list pull requests of "
                    "octo-org/octo-repo - wait until 2024-11-25 07:40:00 UTC and run again, or use a token with "
                    "a higher limit")


def test_403_actions_may_not_open_prs(api: responses.RequestsMock) -> None:
    text = _error(api, 403, {"message": "GitHub Actions is not permitted to create or approve pull requests."})
    assert "Allow GitHub Actions to create and approve pull requests" in text


def test_403_missing_permission(api: responses.RequestsMock) -> None:
    text = _error(api, 403, {"message": "Resource not accessible by integration"})
    assert text == (f"{WHERE}: GitHub refused to list pull requests of octo-org/octo-repo (403 Resource not "
                    "accessible by integration) - give the token contents: write and pull-requests: write "
                    "(workflow `permissions:`)")


def test_404(api: responses.RequestsMock) -> None:
    text = _error(api, 404, {"message": "Not Found"})
    assert text == (f"{WHERE}: GitHub answered 404 when trying to list pull requests of octo-org/octo-repo - "
                    "check the repository name and that the token can see it (private repositories answer 404 "
                    "to tokens without access)")


def test_422_validation(api: responses.RequestsMock) -> None:
    api.post(PULLS, status=422, json={"message": "Validation Failed", "errors": [
        {"resource": "PullRequest", "field": "base", "code": "invalid"}]})
    with pytest.raises(GitHubError) as info:
        client().create_pull(REPO, head=BRANCH, base="nope", title="T", body="B")
    assert str(info.value) == (
        f"{API} POST /repos/octo-org/octo-repo/pulls: GitHub rejected the request to open a pull request in "
        "octo-org/octo-repo (422 PullRequest base invalid) - check the base branch, labels and reviewer names in "
        "[tool.pinrepro.refresh]")


def test_422_no_commits(api: responses.RequestsMock) -> None:
    api.post(PULLS, status=422, json={"message": "Validation Failed", "errors": [
        {"resource": "PullRequest", "code": "custom", "message": f"No commits between main and {BRANCH}"}]})
    with pytest.raises(GitHubError, match=f"No commits between main and {BRANCH} - the branch has nothing"):
        client().create_pull(REPO, head=BRANCH, base="main", title="T", body="B")


def test_500(api: responses.RequestsMock) -> None:
    text = _error(api, 502, {"message": "Server Error"})
    assert text == (f"{WHERE}: GitHub answered 502 Server Error when trying to list pull requests of "
                    "octo-org/octo-repo - run again later; if it persists, check https://www.githubstatus.com")


def test_unreachable(api: responses.RequestsMock) -> None:
    api.get(PULLS, body=requests.ConnectionError(f"https://x:{TOKEN}@proxy failed"))
    with pytest.raises(GitHubError) as info:
        client().find_open_pull(REPO, BRANCH)
    assert str(info.value) == (f"{API}: cannot reach the GitHub API to list pull requests of octo-org/octo-repo "
                               "(ConnectionError) - check the network, or GITHUB_API_URL on GitHub Enterprise "
                               "(https://HOST/api/v3)")


def test_not_json(api: responses.RequestsMock) -> None:
    api.get(PULLS, body="<html>login</html>", content_type="text/html")
    with pytest.raises(GitHubError, match="with something that is not JSON"):
        client().find_open_pull(REPO, BRANCH)


def test_pull_without_fields(api: responses.RequestsMock) -> None:
    api.get(PULLS, json=[{"number": 1}])
    with pytest.raises(GitHubError, match="GitHub answered a pull request without 'html_url'"):
        client().find_open_pull(REPO, BRANCH)


def test_token_not_in_repr() -> None:
    assert TOKEN not in repr(client())
    assert repr(client(GHES)) == "GitHub(api_url='https://ghe.example/api/v3')"
