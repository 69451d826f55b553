"""The first request to a registry host, ``GET /v2/`` (distribution's API version check,
https://distribution.github.io/distribution/spec/api/#api-version-check): which scheme the host speaks and how it
wants to be authenticated (the challenge of its 401).

https first; plain HTTP only for loopback hosts (as Docker does) and hosts the user listed as insecure. For those
both are asked at once: a plain-HTTP registry then answers without first waiting for https to fail (a round trip,
two with the TCP handshake; issue #15), and https still wins when it answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pinrepro.errors import RegistryError, RegistryUnreachable
from pinrepro.reference import is_loopback_host
from pinrepro.registry import retry, session
from pinrepro.registry.challenge import ANONYMOUS, parse_challenge
from pinrepro.registry.errors import for_repository, status_error

if TYPE_CHECKING:
    import requests

    from pinrepro.registry.transport import Transport, _HostState


def first_answer(transport: Transport, api_host: str, repository: str, state: _HostState) -> _HostState:
    """Ping ``api_host`` and record its scheme and challenge in ``state`` (the caller holds ``state.lock``)."""
    insecure = api_host.lower() in transport.insecure_registries
    schemes = ["https", "http"] if insecure or is_loopback_host(api_host) else ["https"]
    # The plain-HTTP ping is sent once, without retrying a failed connection: https may win. When it does not, a
    # connection that failed is retried then, as a last scheme always was.
    plain = session.Early(f"http://{api_host}/v2/", lambda url, tally: transport._send_with_retries(
        "GET", url, {}, False, retry_connection_errors=False, tally=tally),
        transport._counted) if len(schemes) == 2 else None
    try:
        return _first_of(transport, api_host, repository, state, schemes, plain)
    finally:
        if plain is not None:
            plain.discard()


def _first_of(transport: Transport, api_host: str, repository: str, state: _HostState, schemes: list[str],
              plain: session.Early | None) -> _HostState:
    first_error: RegistryError | None = None
    for index, scheme in enumerate(schemes):
        last = index == len(schemes) - 1
        try:
            response = _adopt(transport, plain) if plain is not None and scheme == "http" else \
                transport._send_with_retries("GET", f"{scheme}://{api_host}/v2/", {}, False,
                                             retry_connection_errors=last)
        except RegistryError as exc:
            # Plain HTTP got further than TLS (something answered): its failure is the real cause.
            refused = isinstance(exc, RegistryUnreachable) and exc.cause == "refused"
            first_error = exc if first_error is None or (last and not refused) else first_error
            if last:
                state.unreachable = first_error
                raise for_repository(first_error, repository) from None
            continue
        status = response.status_code
        response.close()
        if scheme == "http" and status in retry.RETRY_STATUSES:
            # The server answered: its own error is the cause, not the failed https attempt before it.
            raise status_error(response, "GET", api_host, "", "/v2/", None, sent=False)
        if scheme == "http" and status not in (200, 401):
            # A TLS server answering plain HTTP with 400: the https error is the real one.
            state.unreachable = first_error or RegistryUnreachable(
                api_host, f"/v2/ answered {status}", cause="status", fix="check the registry name and port")
            raise for_repository(state.unreachable, repository)
        state.scheme = scheme
        if status == 401:
            challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
            state.challenge = challenge if challenge and challenge.scheme in ("bearer", "basic") else ANONYMOUS
        elif status in retry.RETRY_STATUSES:
            raise status_error(response, "GET", api_host, "", "/v2/", None, sent=False)
        else:
            # 200, or a registry with an unusual /v2/: the real request's answer will tell.
            state.challenge = ANONYMOUS
        return state
    raise AssertionError("unreachable")  # pragma: no cover


def _adopt(transport: Transport, early: session.Early) -> requests.Response:
    try:
        return early.adopt()
    except RegistryUnreachable:  # sent once: now with the retries a last scheme gets
        return transport._send_with_retries("GET", early.url, {}, False)
