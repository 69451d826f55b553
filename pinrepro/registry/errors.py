"""Registry errors in the user's words: which host, which repository, what to do - never a header or a token.

Split out of transport.py (#14): the functions that turn a status, an error body or a requests exception into
one PinreproError line. Error bodies are read with a cap (ERROR_BODY_LIMIT) and their JSON with bounded
nesting; server-provided text is scrubbed of credentials by PinreproError.line().
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import requests
import urllib3

from pinrepro.errors import AuthError, NotFoundError, RegistryError, RepositoryNotFoundError
from pinrepro.reference import DOCKER_HUB, DOCKER_HUB_API_HOST
from pinrepro.registry.body import loads

ERROR_BODY_LIMIT = 64 << 10


def host_label(api_host: str, upstream: str | None) -> str:
    return f"{api_host} (mirror of {upstream})" if upstream and upstream != api_host else api_host


def registry_name(api_host: str, upstream: str | None) -> str:
    """How the user names the registry: docker.io rather than registry-1.docker.io."""
    if upstream and upstream != api_host:
        return api_host
    return DOCKER_HUB if api_host == DOCKER_HUB_API_HOST else api_host


def login_command(api_host: str) -> str:
    return "`docker login`" if api_host == DOCKER_HUB_API_HOST else f"`docker login {api_host}`"


def auth_error(status: int, api_host: str, repository: str, sent: bool, *, upstream: str | None = None,
                token_endpoint: str | None = None) -> AuthError:
    host = host_label(api_host, upstream)
    source = f"{status} from {token_endpoint} (token service of {host})" if token_endpoint else f"{status} from {host}"
    subject = f"{source} for {repository}" if repository else source
    login = login_command(api_host)
    if not sent:
        return AuthError(f"{subject}: no credentials found (the repository is private or does not exist)",
                         fix=f"log in with {login}, and check the repository name")
    if status == 403:
        return AuthError(f"{subject}: credentials were sent but do not allow pulling {repository or 'from it'}",
                         fix=f"check the account's access, or log in as another user with {login}")
    return AuthError(f"{subject}: wrong username or password (credentials were sent and rejected)",
                     fix=f"log in again with {login} (use a token where the registry needs one)")


def not_found(api_host: str, repository: str, path: str, codes: list[str], upstream: str | None) -> NotFoundError:
    name = f"{registry_name(api_host, upstream)}/{repository}"
    suffix = f" (mirror of {upstream})" if upstream and upstream != api_host else ""
    reference = path.rsplit("/manifests/", 1)[1] if "/manifests/" in path else None
    blob = path.rsplit("/blobs/", 1)[1] if "/blobs/" in path else None
    if "NAME_UNKNOWN" in codes:
        return RepositoryNotFoundError(f"repository {name} not found{suffix}",
                             fix="check the image name (and log in if it is private)")
    if blob is not None:
        return NotFoundError(f"blob {blob} not found in {name}{suffix}",
                             fix="the image may have been deleted; pin it again with `pinrepro lock --upgrade`")
    if reference is not None:
        if ":" in reference:
            return NotFoundError(f"manifest {reference} not found in {name}{suffix}",
                                 fix="the digest may have been deleted; pin the tag again with "
                                     "`pinrepro lock --upgrade`")
        return NotFoundError(f"tag '{reference}' not found in {name}{suffix}",
                             fix="check the tag (the registry's tag list shows what exists)")
    return NotFoundError(f"{path or '/v2/'} not found on {host_label(api_host, upstream)} for {repository}",
                         fix="check the registry name")


def error_codes(response: requests.Response, method: str) -> tuple[list[str], list[str]]:
    """Registry error codes and messages from a ``{"errors": [{code, message}]}`` body (not for HEAD)."""
    if method == "HEAD":
        return [], []
    try:
        raw = b""
        # iter_content works for streamed and already-read bodies alike; the limit guards against huge pages.
        for chunk in response.iter_content(8192):
            raw += chunk
            if len(raw) >= ERROR_BODY_LIMIT:
                break
        body: Any = loads(raw or b"null")
    except (ValueError, OSError, requests.exceptions.RequestException, urllib3.exceptions.HTTPError):
        return [], []
    codes: list[str] = []
    messages: list[str] = []
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        for item in body["errors"]:
            if isinstance(item, dict):
                codes.append(str(item.get("code", "")))
                message = str(item.get("message", ""))[:200]
                messages.append(f"{item.get('code', '')}: {message}" if message else str(item.get("code", "")))
    return codes, messages


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds: an integer, or an HTTP date (RFC 9110 section 10.2.3)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def for_suffix(repository: str) -> str:
    return f" (for {repository})" if repository else ""


def for_repository(error: RegistryError, repository: str) -> RegistryError:
    """The same failure, saying which repository was being looked up (the user must learn which image failed)."""
    if not repository or not error.what.startswith("cannot reach "):
        return error
    return RegistryError(f"{error.what}{for_suffix(repository)}", where=error.where, fix=error.fix)


def unreachable(netloc: str, exc: requests.exceptions.RequestException, timeout: float) -> RegistryError:
    """Name the failure (refused, DNS, TLS, timeout) without the raw exception's URL soup."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        reason = "certificate verify failed" if "CERTIFICATE_VERIFY_FAILED" in text else "TLS handshake failed"
        return RegistryError(f"cannot reach {netloc}: {reason}",
                             fix="install the registry's CA certificate (REQUESTS_CA_BUNDLE), or list the "
                                 "registry under insecure_registries if it has no valid certificate")
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)) or \
            "IncompleteRead" in text or "InvalidChunkLength" in text:
        return RegistryError(f"the answer from {netloc} broke off (bad chunked encoding, or shorter than its "
                             f"Content-Length)", fix="try again; check the network or proxy")
    if isinstance(exc, requests.exceptions.Timeout):
        return RegistryError(f"cannot reach {netloc}: no answer within {timeout:g}s",
                             fix="check the network and proxy settings (HTTPS_PROXY), or try again later")
    lowered = text.lower()
    if "refused" in lowered:
        return RegistryError(f"cannot reach {netloc}: connection refused",
                             fix="check that the registry is running and the host and port are right")
    if any(marker in lowered for marker in ("name or service not known", "nodename nor servname", "getaddrinfo",
                                            "name resolution", "no address associated", "failed to resolve")):
        return RegistryError(f"cannot reach {netloc}: the host name does not resolve (DNS)",
                             fix="check the registry name, your DNS and proxy settings")
    return RegistryError(f"cannot reach {netloc}: connection failed ({type(exc).__name__})",
                         fix="check the network and proxy settings, then try again")
