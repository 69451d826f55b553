"""Pull requests over the GitHub REST API (github.com and GitHub Enterprise Server).

One bot pull request per branch: find it by ``head=owner:branch``, update it in place, open it only when none
is open. Every API failure becomes one GitHubError line saying what GitHub refused and what to change.
The token only ever travels in the ``Authorization`` header: it is not kept in reprs, never formatted into a
message, and requests' exceptions (which name URLs, never headers) are reduced to their class and host.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import requests

from pinrepro import __version__
from pinrepro.errors import GitHubError
from pinrepro.scrub import remember

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
TIMEOUT = 30.0

# git@github.com:owner/repo.git, ssh://git@host[:port]/owner/repo.git, https://[user@]host/owner/repo(.git)
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Repository:
    owner: str
    name: str

    @classmethod
    def parse(cls, text: str, *, where: str = "GITHUB_REPOSITORY") -> Repository:
        """``owner/name`` as GitHub Actions puts it in GITHUB_REPOSITORY."""
        owner, slash, name = text.strip().partition("/")
        if not slash or not _NAME.match(owner) or not _NAME.match(name):
            raise GitHubError(f"'{text}' is not owner/name", where=where, fix="set it like octo-org/octo-repo")
        return cls(owner, name)

    @classmethod
    def from_remote_url(cls, url: str) -> Repository:
        """The repository a git remote URL points at (https, ssh:// and scp-like ``git@host:o/r.git`` forms)."""
        path: str | None = None
        if "://" in url:
            parts = urlsplit(url)
            if parts.scheme in {"https", "http", "ssh", "git"}:
                path = parts.path
        else:
            match = _SCP_LIKE.match(url)
            if match:
                path = match["path"]
        segments = [s for s in (path or "").strip("/").split("/") if s]
        if len(segments) >= 2:
            name = segments[-1].removesuffix(".git")
            owner = segments[-2]
            if _NAME.match(owner) and _NAME.match(name):
                return cls(owner, name)
        # The URL may hold a token (https://x-access-token:...@github.com/...): name only its shape.
        raise GitHubError("cannot tell the GitHub repository from the git remote URL", where="git remote",
                          fix="set GITHUB_REPOSITORY=owner/name")

    def __str__(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True)
class PullRequest:
    number: int
    html_url: str
    head_ref: str
    base_ref: str
    title: str
    body: str
    state: str

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
                state=str(data.get("state") or "open"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise GitHubError(f"GitHub answered a pull request without {exc}", where="GitHub API",
                              fix="check that GITHUB_API_URL points at the REST API (…/api/v3 on GHES)") from None


@dataclass(frozen=True)
class PullOutcome:
    """What happened to the bot's pull request."""

    action: Literal["created", "updated", "unchanged"]
    pull: PullRequest


def api_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """GITHUB_API_URL (set by Actions, e.g. ``https://ghe.example/api/v3`` on GHES), else api.github.com."""
    env = os.environ if environ is None else environ
    return (env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")


def token_from_env(name: str = "GITHUB_TOKEN", environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    token = env.get(name, "").strip()
    if not token:
        raise GitHubError(f"environment variable {name} is not set", where="--open-pr",
                          fix=f"pass a token with pull-requests: write in {name} (in Actions: "
                              f"env: {name}: ${{{{ secrets.GITHUB_TOKEN }}}}), or name another with --token-env")
    return token


class GitHub:
    """A small client for the pull-request endpoints the refresh bot needs."""

    def __init__(self, token: str, *, api_url: str = DEFAULT_API_URL, session: requests.Session | None = None,
                 timeout: float = TIMEOUT) -> None:
        self.api_url = api_url.rstrip("/")
        self._token = token
        remember(token)  # GitHub may quote the Authorization header back in a 401's message
        self._session = session or requests.Session()
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
        """The open pull request from ``owner:branch``, if there is one."""
        data = self._request("GET", f"/repos/{repo}/pulls", what=f"list pull requests of {repo}",
                             params={"head": f"{repo.owner}:{branch}", "state": "open", "per_page": "10"})
        if not isinstance(data, list):
            raise GitHubError("GitHub answered the pull-request list with something that is not a list",
                              where=self.api_url, fix="check GITHUB_API_URL")
        pulls = [PullRequest.from_json(item) for item in data]
        # The head filter is exact on GitHub; checking again keeps a permissive proxy or GHES from misleading us.
        mine = [pull for pull in pulls if pull.head_ref == branch]
        return min(mine, key=lambda pull: pull.number) if mine else None

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
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "Authorization": f"Bearer {self._token}",
            "User-Agent": f"pinrepro/{__version__}",
        }
        url = self.api_url + path
        try:
            response = self._session.request(method, url, headers=headers, params=params, json=json,
                                             timeout=self._timeout, allow_redirects=False)
        except requests.RequestException as exc:
            # str(exc) could carry a URL or a proxy address; the class name and our own API URL are enough.
            raise GitHubError(f"cannot reach the GitHub API to {what} ({type(exc).__name__})",
                              where=self.api_url,
                              fix="check the network, or GITHUB_API_URL on GitHub Enterprise "
                                  "(https://HOST/api/v3)") from None
        if response.status_code >= 300:
            _raise_for(response, what=what, where=f"{self.api_url} {method} {path}")
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
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
