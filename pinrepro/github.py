"""Pull requests over the GitHub REST API (github.com and GitHub Enterprise Server).

One bot pull request per branch: find it by ``head=owner:branch``, update it in place, open it only when none
is open. "It" is checked in the client, on every page of the answer: head repository, head branch and state must
all be ours, so a fork's pull request from a branch of the same name, or a closed one, is never edited (#16).
The token goes only to the API of the host the git remote names (:func:`pinrepro.githost.api_url_for_remote`).
Every API failure becomes one GitHubError line saying what GitHub refused and what to change.
The token only ever travels in the ``Authorization`` header: it is not kept in reprs, never formatted into a
message, and requests' exceptions (which name URLs, never headers) are reduced to their class and host.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import requests

from pinrepro import __version__
from pinrepro.errors import GitHubError
from pinrepro.githost import DEFAULT_API_URL, Repository
from pinrepro.registry import deadline
from pinrepro.registry.body import loads
from pinrepro.scrub import remember

API_VERSION = "2022-11-28"
TIMEOUT = 30.0

# Pull request lists are paged (30 a page by default, 100 at most); a bot branch has one open pull request, so a
# few pages are plenty, and a bound keeps a misbehaving server from looping us.
_PER_PAGE = "100"
_MAX_PAGES = 20


@dataclass(frozen=True)
class PullRequest:
    number: int
    html_url: str
    head_ref: str
    base_ref: str
    title: str
    body: str
    state: str
    head_repo: str | None = None  # owner/name the head branch lives in; None when that fork was deleted

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PullRequest:
        try:
            return cls(
                number=int(data["number"]),
                html_url=str(data["html_url"]),
                head_ref=str(data["head"]["ref"]),
                base_ref=str(data["base"]["ref"]),
                title=str(data.get("title") or ""),
                body=str(data.get("body") or ""),
                state=str(data.get("state") or ""),
                head_repo=_full_name(data["head"].get("repo")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise GitHubError(f"GitHub answered a pull request without {exc}", where="GitHub API",
                              fix="check that GITHUB_API_URL points at the REST API (…/api/v3 on GHES)") from None

    def is_open_from(self, repo: Repository, branch: str) -> bool:
        """The bot's own: open, from ``branch`` of ``repo`` itself (not of a fork that has a branch of that name)."""
        return (self.state == "open" and self.head_ref == branch
                and (self.head_repo or "").lower() == str(repo).lower())


def _full_name(repo: Any) -> str | None:
    return str(repo["full_name"]) if isinstance(repo, Mapping) and repo.get("full_name") else None


@dataclass(frozen=True)
class PullOutcome:
    """What happened to the bot's pull request."""

    action: Literal["created", "updated", "unchanged"]
    pull: PullRequest


class GitHub:
    """A small client for the pull-request endpoints the refresh bot needs."""

    def __init__(self, token: str, *, api_url: str = DEFAULT_API_URL, session: requests.Session | None = None,
                 timeout: float = TIMEOUT) -> None:
        self.api_url = api_url.rstrip("/")
        self._token = token
        remember(token)  # GitHub may quote the Authorization header back in a 401's message
        self._session = session or deadline.watched_session()
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"GitHub(api_url={self.api_url!r})"

    # -- endpoints -----------------------------------------------------------------------------------------

    def default_branch(self, repo: Repository) -> str:
        data = self._request("GET", f"/repos/{repo}", what=f"read repository {repo}")
        branch = data.get("default_branch") if isinstance(data, dict) else None
        if not isinstance(branch, str) or not branch:
            raise GitHubError(f"GitHub did not say which branch is the default of {repo}", where=self.api_url,
                              fix="set [tool.pinrepro.refresh] base = \"main\"")
        return branch

    def find_open_pull(self, repo: Repository, branch: str) -> PullRequest | None:
        """The open pull request from ``branch`` of ``repo`` itself, if there is one.

        ``head=`` and ``state=`` are hints: a proxy, an older GHES or a changed API may ignore them and answer every
        pull request, page by page. So each one is checked here, and every ``rel="next"`` page is read.
        """
        what = f"list pull requests of {repo}"
        url: str | None = f"{self.api_url}/repos/{repo}/pulls"
        params: Mapping[str, str] | None = {"head": f"{repo.owner}:{branch}", "state": "open", "per_page": _PER_PAGE}
        mine: list[PullRequest] = []
        for _ in range(_MAX_PAGES):
            if url is None:
                break
            response = self._exchange("GET", url, what=what, params=params)
            data = self._json(response, what=what, url=url)
            if not isinstance(data, list):
                raise GitHubError("GitHub answered the pull-request list with something that is not a list",
                                  where=self.api_url, fix="check GITHUB_API_URL")
            mine += [pull for pull in map(PullRequest.from_json, data) if pull.is_open_from(repo, branch)]
            url, params = self._next_page(response), None
        return min(mine, key=lambda pull: pull.number) if mine else None

    def _next_page(self, response: requests.Response) -> str | None:
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        if not str(link).startswith(self.api_url + "/"):
            # The token goes with every page: never to a host the answer names.
            raise GitHubError("GitHub's next page of pull requests is on another server", where=self.api_url,
                              fix="check GITHUB_API_URL and any proxy in front of the API")
        return str(link)

    def create_pull(self, repo: Repository, *, head: str, base: str, title: str, body: str) -> PullRequest:
        data = self._request("POST", f"/repos/{repo}/pulls", what=f"open a pull request in {repo}",
                             json={"title": title, "head": head, "base": base, "body": body,
                                   "maintainer_can_modify": True})
        return PullRequest.from_json(data)

    def update_pull(self, repo: Repository, number: int, *, title: str, body: str) -> PullRequest:
        data = self._request("PATCH", f"/repos/{repo}/pulls/{number}", what=f"update pull request #{number}",
                             json={"title": title, "body": body})
        return PullRequest.from_json(data)

    def add_labels(self, repo: Repository, number: int, labels: Sequence[str]) -> None:
        # Pull requests are issues for labels: there is no /pulls/{n}/labels endpoint.
        self._request("POST", f"/repos/{repo}/issues/{number}/labels", what=f"label pull request #{number}",
                      json={"labels": list(labels)})

    def request_reviewers(self, repo: Repository, number: int, *, reviewers: Sequence[str] = (),
                          team_reviewers: Sequence[str] = ()) -> None:
        body: dict[str, list[str]] = {"reviewers": list(reviewers)}
        if team_reviewers:
            body["team_reviewers"] = list(team_reviewers)
        self._request("POST", f"/repos/{repo}/pulls/{number}/requested_reviewers",
                      what=f"request reviewers on pull request #{number}", json=body)

    # -- the bot's one operation ---------------------------------------------------------------------------

    def open_or_update_pull(self, repo: Repository, *, branch: str, base: str, title: str, body: str,
                            labels: Sequence[str] = (), reviewers: Sequence[str] = (),
                            team_reviewers: Sequence[str] = ()) -> PullOutcome:
        """Update the bot's open pull request from ``branch``, or open it; never a second one."""
        existing = self.find_open_pull(repo, branch)
        if existing is None:
            try:
                pull = self.create_pull(repo, head=branch, base=base, title=title, body=body)
            except _PullExists:
                # Lost a race with another run (or the list was stale): the PR exists, so update it instead.
                existing = self.find_open_pull(repo, branch)
                if existing is None:
                    raise GitHubError(
                        f"GitHub says a pull request from {branch} already exists but lists none open",
                        where=f"{self.api_url} {repo}", fix="look for it on GitHub and close or reopen it") from None
            else:
                self._decorate(repo, pull.number, labels, reviewers, team_reviewers)
                return PullOutcome("created", pull)
        # Labels and reviewers only go on a new pull request: re-requesting reviews on every weekly update
        # would ping people who already reviewed, and someone may have removed a label on purpose.
        if existing.title == title and existing.body == body:
            return PullOutcome("unchanged", existing)
        return PullOutcome("updated", self.update_pull(repo, existing.number, title=title, body=body))

    def _decorate(self, repo: Repository, number: int, labels: Sequence[str], reviewers: Sequence[str],
                  team_reviewers: Sequence[str]) -> None:
        if labels:
            self.add_labels(repo, number, labels)
        if reviewers or team_reviewers:
            self.request_reviewers(repo, number, reviewers=reviewers, team_reviewers=team_reviewers)

    # -- transport -----------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, what: str, params: Mapping[str, str] | None = None,
                 json: Any = None) -> Any:
        url = self.api_url + path
        return self._json(self._exchange(method, url, what=what, params=params, json=json), what=what, url=url)

    def _exchange(self, method: str, url: str, *, what: str, params: Mapping[str, str] | None = None,
                  json: Any = None) -> requests.Response:
        path = url.removeprefix(self.api_url).split("?", 1)[0]
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "Authorization": f"Bearer {self._token}",
            "User-Agent": f"pinrepro/{__version__}",
        }
        seconds = deadline.setting("PINREPRO_HTTP_DEADLINE", 120.0)
        try:
            # A total deadline per request, body included (#14); the body is read inside the scope.
            with deadline.scope(seconds) as limit:
                response = self._session.request(method, url, headers=headers, params=params, json=json,
                                                 timeout=self._timeout, allow_redirects=False)
        except requests.RequestException as exc:
            if limit.fired:
                raise GitHubError(f"the GitHub API did not answer within {seconds:g}s to {what}", where=self.api_url,
                                  fix="try again later, or raise PINREPRO_HTTP_DEADLINE") from None
            # str(exc) could carry a URL or a proxy address; the class name and our own API URL are enough.
            raise GitHubError(f"cannot reach the GitHub API to {what} ({type(exc).__name__})",
                              where=self.api_url,
                              fix="check the network, or GITHUB_API_URL on GitHub Enterprise "
                                  "(https://HOST/api/v3)") from None
        if response.status_code >= 300:
            _raise_for(response, what=what, where=f"{self.api_url} {method} {path}")
        return response

    @staticmethod
    def _json(response: requests.Response, *, what: str, url: str) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return loads(response.content)
        except ValueError:
            raise GitHubError(f"GitHub answered {what} with something that is not JSON", where=url,
                              fix="check that GITHUB_API_URL points at the REST API (…/api/v3 on GHES)") from None


class _PullExists(GitHubError):
    """422 "A pull request already exists for owner:branch." - handled by updating that pull request."""


def _raise_for(response: requests.Response, *, what: str, where: str) -> None:
    status = response.status_code
    message, details = _error_text(response)
    if status == 401:
        raise GitHubError(f"GitHub rejected the token (401 {message or 'Bad credentials'}) when trying to {what}",
                          where=where, fix="check that the token variable holds a valid, unexpired token")
    if status in (403, 429):
        if response.headers.get("x-ratelimit-remaining") == "0":
            reset = _reset_time(response.headers.get("x-ratelimit-reset"))
            raise GitHubError(f"GitHub's API rate limit is used up ({status}) when trying to {what}", where=where,
                              fix=f"wait until {reset} and run again, or use a token with a higher limit")
        retry_after = response.headers.get("retry-after")
        if retry_after is not None or "secondary rate limit" in message.lower():
            wait = f"{retry_after} seconds" if retry_after else "a minute"
            raise GitHubError(f"GitHub's secondary rate limit stopped the request ({status}) to {what}",
                              where=where, fix=f"wait {wait} and run again; avoid running several bots at once")
        if "not permitted to create or approve pull requests" in message:
            raise GitHubError(f"GitHub Actions may not open pull requests in this repository (403) to {what}",
                              where=where, fix="enable Settings > Actions > General > 'Allow GitHub Actions "
                                               "to create and approve pull requests', or use a PAT/App token")
        raise GitHubError(f"GitHub refused to {what} (403 {message or 'Forbidden'})", where=where,
                          fix="give the token contents: write and pull-requests: write (workflow `permissions:`)")
    if status == 404:
        raise GitHubError(f"GitHub answered 404 when trying to {what}", where=where,
                          fix="check the repository name and that the token can see it (private repositories "
                              "answer 404 to tokens without access)")
    if status == 422:
        if any("pull request already exists" in text for text in details):
            raise _PullExists(f"a pull request already exists ({details[0]})", where=where)
        if any(text.startswith("No commits between") for text in details):
            raise GitHubError(f"cannot {what}: {details[0]}", where=where,
                              fix="the branch has nothing the base lacks; check the base branch setting")
        detail = "; ".join(details) or message or "Validation Failed"
        raise GitHubError(f"GitHub rejected the request to {what} (422 {detail})", where=where,
                          fix="check the base branch, labels and reviewer names in [tool.pinrepro.refresh]")
    if 300 <= status < 400:
        raise GitHubError(f"GitHub redirected the request to {what} ({status})", where=where,
                          fix="the repository may have moved or been renamed; update GITHUB_REPOSITORY/the remote")
    raise GitHubError(f"GitHub answered {status} {message or response.reason or ''} when trying to {what}".rstrip(),
                      where=where, fix="run again later; if it persists, check https://www.githubstatus.com")


def _error_text(response: requests.Response) -> tuple[str, list[str]]:
    """GitHub's ``message`` and the messages (or codes) of its ``errors`` list."""
    try:
        data = response.json()
    except ValueError:
        return "", []
    if not isinstance(data, dict):
        return "", []
    message = str(data.get("message") or "")
    details: list[str] = []
    for error in data.get("errors") or []:
        if isinstance(error, dict):
            text = error.get("message") or " ".join(
                str(error[key]) for key in ("resource", "field", "code") if error.get(key)
            )
            if text:
                details.append(str(text))
        elif isinstance(error, str):
            details.append(error)
    return message, details


def _reset_time(value: str | None) -> str:
    try:
        moment = dt.datetime.fromtimestamp(int(value or ""), tz=dt.UTC)
    except ValueError:
        return "the limit resets (about an hour)"
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
