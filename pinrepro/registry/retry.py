"""When a registry request is sent again, and how long pinrepro waits first: urllib3's ``Retry`` is the policy.

``urllib3.util.Retry`` holds the rules (the statuses worth another try, how many tries, the tries made so far
in ``history``, ``Retry-After`` parsing, RFC 9110 section 10.2.3); ``Transport`` asks it after each attempt.
The policy is not mounted on the HTTPAdapter because each attempt must get its own deadline (deadline.py), a
retried error body must be closed rather than drained whole (urllib3 reads it to the end), and tests inject
the sleep. https://urllib3.readthedocs.io/en/stable/reference/urllib3.util.html#urllib3.util.Retry

Waits: ``PINREPRO_BACKOFF_S`` (default 0.5) doubling per retry, times a random factor in [0.5, 1] so parallel
workers do not retry in lock step; a ``Retry-After`` the server sends replaces it. The total wait is capped
(``max_retry_wait``): a ``Retry-After`` beyond what is left is not waited for, the answer is reported at once.
The test suite sets ``PINREPRO_BACKOFF_S`` very low (tests/conftest.py) so a registry that is down costs no
seconds there.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from typing import TYPE_CHECKING

import requests
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

if TYPE_CHECKING:
    from urllib3.response import BaseHTTPResponse  # urllib3 2; 1.26 has HTTPResponse only

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_BACKOFF_S = 0.5


class Policy(Retry):
    """Retry with pinrepro's backoff: ``backoff_factor * 2**(retries made - 1)``, jittered by [0.5, 1]."""

    def get_backoff_time(self) -> float:
        made = len(self.history)
        if made == 0:
            return 0.0
        return float(self.backoff_factor * (2 ** (made - 1)) * random.uniform(0.5, 1.0))

    def wait_before_next(self, response: BaseHTTPResponse | None) -> float:
        """The server's ``Retry-After`` when it sent a readable one, else the backoff."""
        header = response.headers.get("Retry-After") if response is not None else None
        if header and header.strip():
            try:
                return float(self.parse_retry_after(header.strip()))
            except (Urllib3Error, ValueError, OverflowError):
                pass  # not a number nor an HTTP date: back off as if it were not there
        return self.get_backoff_time()


def policy(max_retries: int, backoff_s: float, statuses: Collection[int] = RETRY_STATUSES) -> Policy:
    """Up to ``max_retries`` more attempts after 408/429/5xx or a connection failure, for every method.

    POST is included: the only POST is the OAuth2 token request, which changes nothing on the server.
    """
    return Policy(total=max_retries, connect=None, read=None, redirect=False, status=None, other=None,
                  status_forcelist=sorted(statuses), allowed_methods=None, backoff_factor=backoff_s,
                  respect_retry_after_header=True, raise_on_status=False)


def transient(exc: requests.exceptions.RequestException) -> bool:
    """A failure another attempt may not meet: the connection broke or timed out (TLS failures are final)."""
    return isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)) and \
        not isinstance(exc, requests.exceptions.SSLError)


def next_attempt(retry: Policy, method: str, url: str, *, waited: float, budget: float,
                 response: BaseHTTPResponse | None = None,
                 error: Exception | None = None) -> tuple[Policy, float] | None:
    """The policy for the next attempt and the wait before it; None when the attempts or the wait budget are
    used up (then the last answer or error is the one reported)."""
    try:
        following = retry.increment(method, url, response=response, error=error)
    except MaxRetryError:
        return None
    wait = following.wait_before_next(response)
    if waited + wait > budget:
        return None
    return following, wait
