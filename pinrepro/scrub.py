"""Credentials never reach the user's screen, even when a server repeats them back in its error text.

Every credential pinrepro comes to hold (registry passwords and tokens, identity tokens, bearer tokens it
was issued, the GitHub token, passwords in index URLs) is remembered here; ``scrub`` replaces each one in
plain, URL-encoded and base64 form (at every alignment, so ``Basic base64(user:password)`` is caught too).
``PinreproError.line`` scrubs every error line, so a server echoing ``DENIED: bad robot:PASSWORD`` or a
401 body quoting the Authorization header prints ``***`` instead. ``redact`` masks the user-info of every URL
in a text (what a subprocess or a user's file may show), whether or not pinrepro knows it as a secret.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

_MIN_LENGTH = 6  # shorter strings would blank out ordinary words; real credentials are longer
_LOCK = threading.Lock()
_FORMS: dict[str, None] = {}
MASK = "***"
# ``${NAME}``: an environment variable written in place of a credential (no secret in the text itself).
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)\}")
URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)
# The authority's user-info runs to its last '@' (a password may hold one; RFC 3986 section 3.2).
_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)([^/?#]*)@", re.IGNORECASE)


def remember(secret: str | None) -> None:
    """Add ``secret`` (and its encoded forms) to what ``scrub`` removes."""
    if not secret or len(secret) < _MIN_LENGTH:
        return
    forms = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
    raw = secret.encode("utf-8", "surrogatepass")
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw).decode("ascii")
        urlsafe = base64.urlsafe_b64encode(b"\0" * pad + raw).decode("ascii")
        # Drop the characters that depend on what comes before and after the secret.
        start = (pad * 4 + 2) // 3
        end = len(encoded) - (4 if (pad + len(raw)) % 3 else 0)
        for text in (encoded, urlsafe):
            core = text[start:end].rstrip("=")
            if len(core) >= 8:
                forms.add(core)
    with _LOCK:
        for form in sorted(forms, key=len, reverse=True):
            if len(form) >= _MIN_LENGTH:
                _FORMS[form] = None


def scrub(text: str) -> str:
    with _LOCK:
        forms = sorted(_FORMS, key=len, reverse=True)
    for form in forms:
        if form in text:
            text = text.replace(form, MASK)
    return text


def forget_all() -> None:
    """For tests: start from an empty set."""
    with _LOCK:
        _FORMS.clear()


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with the ``user:password@`` of every URL in it masked (``${VAR}`` forms are kept: no secret), and
    every one of ``secrets`` replaced by ``***``."""

    def mask(match: re.Match[str]) -> str:
        url = match.group(0)
        found = _USERINFO.match(url)
        if found is None or _only_variables(found.group(2)):
            return url
        return f"{found.group(1)}{MASK}@{url[found.end():]}"

    text = URL.sub(mask, text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def without_userinfo(text: str) -> str:
    """``text`` with the ``user:password@`` of every URL in it left out: how a message quotes a line of the user's
    own files (an apt source, an ADD URL), where even a mask would only say what the user wrote."""

    def drop(match: re.Match[str]) -> str:
        url = match.group(0)
        found = _USERINFO.match(url)
        return url if found is None else f"{found.group(1)}{url[found.end():]}"

    return URL.sub(drop, text)


def _only_variables(userinfo: str) -> bool:
    return not re.sub(r"[:]", "", VARIABLE.sub("", userinfo))


def literal_credentials(url: str) -> bool:
    """True when ``url`` carries a user or password written out (not as ``${VAR}``)."""
    found = _USERINFO.match(url.strip())
    return found is not None and not _only_variables(found.group(2))
