"""The ``WWW-Authenticate`` challenge of a registry's 401, and the token scopes pinrepro asks for.

The one parser of ``WWW-Authenticate`` (RFC 9110 section 11.6.1; the registry's use of it:
https://distribution.github.io/distribution/spec/auth/token/#how-to-authenticate).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAM = re.compile(r'([A-Za-z][\w-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s"]*)')


@dataclass(frozen=True)
class Challenge:
    """What a 401's ``WWW-Authenticate`` asks for. ``scheme`` is ``bearer``, ``basic`` or ``none``."""

    scheme: str
    realm: str = ""
    service: str | None = None
    scope: str | None = None


ANONYMOUS = Challenge("none")


def parse_challenge(header: str | None) -> Challenge | None:
    """Parse ``WWW-Authenticate``; values may be quoted or not. Bearer wins when several are offered."""
    if not header or not header.strip():
        return None
    # Split "Basic realm=x, Bearer realm=y" into challenges: a scheme is a bare token followed by a space.
    pieces = re.split(r"(?:^|,)\s*(?=[A-Za-z][\w-]*\s+[A-Za-z][\w-]*\s*=)", header.strip())
    found: list[Challenge] = []
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        scheme, _, rest = piece.partition(" ")
        params: dict[str, str] = {}
        for match in _PARAM.finditer(rest):
            value = match.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params[match.group(1).lower()] = value
        found.append(Challenge(scheme.lower(), params.get("realm", ""), params.get("service") or None,
                               params.get("scope") or None))
    bearer = [c for c in found if c.scheme == "bearer"]
    if bearer:
        return bearer[0]
    return found[0] if found else None


def repository_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def scope_repositories(scope: str) -> list[str]:
    """Repository names in a scope string; a name may contain ':' (host:port), so split from the right."""
    names = []
    for item in scope.split():
        kind, _, rest = item.partition(":")
        if kind == "repository" and ":" in rest:
            names.append(rest.rsplit(":", 1)[0])
    return names


