"""Which GitHub repository and which API a git remote names, and the token from the environment.

The refresh bot sends its token only to the API of the host the git remote names: github.com, GitHub Enterprise
Cloud with data residency (``*.ghe.com``) or a GitHub Enterprise Server, whose REST API URLs GitHub documents at
https://docs.github.com/en/rest. Nothing here talks to a network.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from pinrepro.errors import GitHubError
from pinrepro.reference import is_loopback_host

DEFAULT_API_URL = "https://api.github.com"

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


def api_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """GITHUB_API_URL (set by Actions, e.g. ``https://ghe.example/api/v3`` on GHES), else api.github.com."""
    env = os.environ if environ is None else environ
    return (env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")


def api_url_for_remote(remote_url: str, environ: Mapping[str, str] | None = None) -> str:
    """The API the token may be sent to: the one of the host the git remote names.

    github.com -> https://api.github.com; ``*.ghe.com`` (GitHub Enterprise Cloud with data residency) ->
    https://api.HOST; any other host is GitHub Enterprise Server -> https://HOST/api/v3. GITHUB_API_URL, when set,
    must point at that same host (Actions sets it so). A remote that is a local path names no host: then
    GITHUB_API_URL, else api.github.com, as before.
    """
    env = os.environ if environ is None else environ
    explicit = (env.get("GITHUB_API_URL") or "").strip().rstrip("/")
    located = _remote_host(remote_url)
    if located is None:
        return explicit or DEFAULT_API_URL
    host, port = located
    if "." not in host and ":" not in host:
        # An SSH alias from ~/.ssh/config (git@github-work:org/repo.git) names no server the token could go to.
        if explicit:
            return explicit
        raise GitHubError(f"cannot tell which GitHub API serves the git remote's host '{host}' (an SSH alias?)",
                          where="--open-pr", fix="set GITHUB_API_URL (https://api.github.com, or "
                                                 "https://HOST/api/v3 for GitHub Enterprise Server)")
    if host == "github.com":
        expected, allowed = DEFAULT_API_URL, {"api.github.com"}
    elif host.endswith(".ghe.com"):
        expected, allowed = f"https://api.{host}", {f"api.{host}"}
    else:
        expected, allowed = f"https://{host}{port}/api/v3", {host}
    if not explicit:
        return expected
    parts = urlsplit(explicit)
    if (parts.hostname or "").lower() not in allowed or not (
            parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.netloc))):
        # Name the hosts only: GITHUB_API_URL is the user's, but a URL could carry user-info.
        raise GitHubError(f"GITHUB_API_URL points at {parts.hostname or '(no host)'}, not at the API of {host} "
                          "where the git remote is: the token would go to another server", where="--open-pr",
                          fix=f"unset GITHUB_API_URL (pinrepro then uses {expected}) or set it to that API")
    return explicit


def _remote_host(url: str) -> tuple[str, str] | None:
    """(host, ":port" or "") of a network remote URL; None for a local path, a file:// URL or a remote helper's
    ``transport::address`` (git itself decides whether that may run: never ``ext::``, see pinrepro.git)."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*::", url):
        return None
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme in {"https", "http", "ssh", "git", "git+ssh", "ssh+git"} and parts.hostname:
            try:
                port = f":{parts.port}" if parts.port and parts.scheme == "https" else ""
            except ValueError:
                port = ""
            return parts.hostname.lower(), port
        return None
    match = _SCP_LIKE.match(url)
    if match and not url.startswith(("/", ".")) and len(match["host"]) > 1:  # "C:\..." is a Windows path
        return match["host"].lower(), ""
    return None


def token_from_env(name: str = "GITHUB_TOKEN", environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    token = env.get(name, "").strip()
    if not token:
        raise GitHubError(f"environment variable {name} is not set", where="--open-pr",
                          fix=f"pass a token with pull-requests: write in {name} (in Actions: "
                              f"env: {name}: ${{{{ secrets.GITHUB_TOKEN }}}}), or name another with --token-env")
    return token
