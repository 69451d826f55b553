"""Registry errors in the user's words: which host, which repository, what to do - never a header or a token.

Split out of transport.py (#14): the functions that turn a status, an error body or a requests exception into
one PinreproError line. Error bodies are read with a cap (ERROR_BODY_LIMIT) and their JSON with bounded
nesting; server-provided text is scrubbed of credentials by PinreproError.line().
"""

from __future__ import annotations

from typing import Any

import requests
import urllib3

from pinrepro.errors import AuthError, NotFoundError, RegistryError, RegistryUnreachable, RepositoryNotFoundError
from pinrepro.reference import DOCKER_HUB, DOCKER_HUB_API_HOST, canonical_registry
from pinrepro.registry.body import framing_broken, loads

ERROR_BODY_LIMIT = 64 << 10


def host_label(api_host: str, upstream: str | None) -> str:
    return f"{api_host} (mirror of {upstream})" if upstream and upstream != api_host else api_host


def registry_name(api_host: str, upstream: str | None) -> str:
    """How the user names the registry: docker.io rather than registry-1.docker.io."""
    if upstream and upstream != api_host:
        return api_host
    return canonical_registry(api_host)


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


def for_suffix(repository: str) -> str:
    return f" (for {repository})" if repository else ""


def for_repository(error: RegistryError, repository: str) -> RegistryError:
    """The same failure, saying which repository was being looked up, when the registry could not be reached."""
    return error.for_repository(repository) if isinstance(error, RegistryUnreachable) else error


def unreachable(netloc: str, exc: requests.exceptions.RequestException, timeout: float) -> RegistryError:
    """Name the failure (refused, DNS, TLS, timeout) without the raw exception's URL soup."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        reason = "certificate verify failed" if "CERTIFICATE_VERIFY_FAILED" in text else "TLS handshake failed"
        return RegistryUnreachable(netloc, reason, cause="tls",
                                   fix="install the registry's CA certificate (REQUESTS_CA_BUNDLE), or list the "
                                       "registry under insecure_registries if it has no valid certificate")
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)) or \
            "IncompleteRead" in text or "InvalidChunkLength" in text:
        return framing_broken(netloc)
    if isinstance(exc, requests.exceptions.Timeout):
        return RegistryUnreachable(netloc, f"no answer within {timeout:g}s", cause="timeout",
                                   fix="check the network and proxy settings (HTTPS_PROXY), or try again later")
    lowered = text.lower()
    if "refused" in lowered:
        return RegistryUnreachable(netloc, "connection refused", cause="refused",
                                   fix="check that the registry is running and the host and port are right")
    if any(marker in lowered for marker in ("name or service not known", "nodename nor servname", "getaddrinfo",
                                            "name resolution", "no address associated", "failed to resolve")):
        return RegistryUnreachable(netloc, "the host name does not resolve (DNS)", cause="dns",
                                   fix="check the registry name, your DNS and proxy settings")
    return RegistryUnreachable(netloc, f"connection failed ({type(exc).__name__})", cause="other",
                               fix="check the network and proxy settings, then try again")


def status_error(response: requests.Response, method: str, api_host: str, repository: str, path: str,
                 upstream: str | None, *, sent: bool, what: str | None = None) -> RegistryError:
    """The one error for a registry's non-2xx answer: auth, not found, rate limit, server trouble, other.

    ``sent``: the user's credentials went out. ``what`` replaces the subject (a token request). The number of
    retries made comes from the Retry the transport left on the response (urllib3's ``HTTPResponse.retries``).
    """
    status = response.status_code
    codes, messages = error_codes(response, method)
    host = host_label(api_host, upstream)
    retries = retries_made(response)
    retried = f" after {retries} {'retry' if retries == 1 else 'retries'}"
    if what is None and status in (401, 403):
        return auth_error(status, api_host, repository, sent, upstream=upstream)
    if what is None and status == 404:
        return not_found(api_host, repository, path, codes, upstream)
    detail = f" ({'; '.join(messages)})" if messages else ""
    subject = what or f"{method} {path} on {host} failed"
    if status == 429:
        return _rate_limited(response, subject, retried, hub=api_host == DOCKER_HUB_API_HOST or upstream == DOCKER_HUB)
    if status >= 500 or status == 408:
        return RegistryError(f"{subject}: {status} {response.reason or ''}".rstrip() + f"{retried}{detail}",
                             fix="the registry is having trouble; try again later")
    return RegistryError(f"{subject}: {status} {response.reason or ''}".rstrip() + detail,
                         fix="check the image reference and the registry")


def _rate_limited(response: requests.Response, subject: str, retried: str, *, hub: bool) -> RegistryError:
    remaining = response.headers.get("ratelimit-remaining")
    limit = response.headers.get("ratelimit-limit")
    header = f"; ratelimit-remaining: {remaining}" if remaining is not None else ""
    header += f", ratelimit-limit: {limit}" if limit is not None else ""
    if response.headers.get("Retry-After"):
        header += f"; Retry-After: {response.headers['Retry-After']}"
    if hub:
        return RegistryError(f"{subject}: 429 Too Many Requests - Docker Hub's pull rate limit is used up{header}",
                             fix="wait until the limit resets (see the ratelimit-remaining header), log in with "
                                 "`docker login` for a higher limit, or use a mirror")
    return RegistryError(f"{subject}: 429 Too Many Requests{retried}{header}",
                         fix="wait and try again, or ask the registry's operators about its rate limit")


def retries_made(response: requests.Response) -> int:
    """How many times the request was sent again before this answer (urllib3 keeps it on the raw response)."""
    retry = getattr(response.raw, "retries", None)
    history = getattr(retry, "history", ())
    return len(history)


def digest_mismatch(kind: str, where: str, expected: str, actual: str) -> RegistryError:
    return RegistryError(f"digest mismatch for {kind} of {where}: expected {expected}, got {actual}",
                         fix="the registry or a proxy altered the content; try again, or report it")


def unknown_media_type(where: str, media_type: str) -> RegistryError:
    return RegistryError(f"unsupported manifest media type '{media_type or 'none'}' for {where}",
                         fix="pinrepro understands OCI and Docker v2 manifests and indexes; Docker schema 1 "
                             "images must be re-pushed with a current Docker or skopeo")


def too_big(what: str, size: int, limit: int, *, fix: str) -> RegistryError:
    return RegistryError(f"{what} is {size} bytes, over the {limit}-byte limit", fix=fix)
