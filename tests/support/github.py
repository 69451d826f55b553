"""GitHub's REST API answers as tests need them (shapes from https://docs.github.com/en/rest/pulls/pulls)."""

from __future__ import annotations

from typing import Any

API = "https://api.github.com"
BRANCH = "pinrepro/refresh"


def pull_json(number: int = 42, *, title: str = "old title", body: str = "old body", head: str = BRANCH,
              base: str = "main", api: str = API) -> dict[str, Any]:
    """A pull request as GET /repos/{owner}/{repo}/pulls/{n} answers it (trimmed to realistic fields)."""
    web = api.replace("/api/v3", "").replace("api.github.com", "github.com")
    return {
        "url": f"{api}/repos/octo-org/octo-repo/pulls/{number}",
        "id": 1296269,
        "node_id": "MDExOlB1bGxSZXF1ZXN0MQ==",
        "html_url": f"{web}/octo-org/octo-repo/pull/{number}",
        "number": number,
        "state": "open",
        "locked": False,
        "title": title,
        "user": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"},
        "body": body,
        "labels": [],
        "draft": False,
        "head": {"label": f"octo-org:{head}", "ref": head, "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e",
                 "repo": {"full_name": "octo-org/octo-repo"}},
        "base": {"label": "octo-org:main", "ref": base, "sha": "e5bd3914e2e596debea16f433f57875b5b90bcd6",
                 "repo": {"full_name": "octo-org/octo-repo"}},
        "created_at": "2024-11-25T06:00:12Z",
        "updated_at": "2024-11-25T06:00:12Z",
    }
