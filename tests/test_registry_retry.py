"""registry/retry.py: urllib3's Retry as the policy, pinrepro's backoff and wait budget (no sleeping here)."""

from __future__ import annotations

import email.utils
import time

import pytest
import requests
from urllib3.exceptions import MaxRetryError
from urllib3.response import HTTPResponse

from pinrepro.registry import retry
from pinrepro.registry.authn import AnonymousKeychain
from pinrepro.registry.transport import Transport


def _answer(status: int, headers: dict[str, str] | None = None) -> HTTPResponse:
    return HTTPResponse(body=b"", status=status, headers=headers or {}, preload_content=False)


def test_the_default_backoff_doubles_with_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PINREPRO_BACKOFF_S")
    transport = Transport(AnonymousKeychain())
    policy = retry.policy(transport.max_retries, transport._backoff_base)
    assert policy.get_backoff_time() == 0.0  # nothing failed yet
    waits = []
    for _ in range(4):
        policy = policy.increment("GET", "https://r.example/v2/", response=_answer(503))
        waits.append(policy.get_backoff_time())
    for made, wait in enumerate(waits):
        assert 0.25 * 2**made <= wait <= 0.5 * 2**made
    with pytest.raises(MaxRetryError):  # four retries made: the fifth failure is the last
        policy.increment("GET", "https://r.example/v2/", response=_answer(503))


def test_the_suite_runs_with_short_backoff() -> None:
    transport = Transport(AnonymousKeychain())
    assert transport._backoff_base == 0.001  # tests/conftest.py


def test_statuses_and_methods_retried() -> None:
    policy = retry.policy(2, 0.5)
    assert all(policy.is_retry(method, status) for method in ("GET", "HEAD", "POST")
               for status in (408, 429, 500, 502, 503, 504))
    assert not any(policy.is_retry("GET", status) for status in (200, 301, 400, 401, 403, 404, 405))


def test_retry_after_replaces_the_backoff() -> None:
    policy = retry.policy(3, 0.5)
    found = retry.next_attempt(policy, "GET", "u", waited=0.0, budget=30.0, response=_answer(429, {"Retry-After": "7"}))
    assert found is not None and found[1] == 7.0
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    found = retry.next_attempt(policy, "GET", "u", waited=0.0, budget=30.0,
                               response=_answer(503, {"Retry-After": when}))
    assert found is not None and 15.0 <= found[1] <= 20.0
    # unreadable: the backoff
    found = retry.next_attempt(policy, "GET", "u", waited=0.0, budget=30.0,
                               response=_answer(503, {"Retry-After": "soon"}))
    assert found is not None and 0.25 <= found[1] <= 0.5


def test_the_wait_budget_caps_retry_after() -> None:
    policy = retry.policy(3, 0.5)
    assert retry.next_attempt(policy, "GET", "u", waited=0.0, budget=30.0,
                              response=_answer(429, {"Retry-After": "3600"})) is None
    assert retry.next_attempt(policy, "GET", "u", waited=28.0, budget=30.0,
                              response=_answer(429, {"Retry-After": "4"})) is None


def test_attempts_are_counted_in_the_history() -> None:
    policy = retry.policy(1, 0.5)
    found = retry.next_attempt(policy, "GET", "u", waited=0.0, budget=30.0,
                               error=requests.exceptions.ConnectionError("reset"))
    assert found is not None
    following, _ = found
    assert len(following.history) == 1
    assert retry.next_attempt(following, "GET", "u", waited=0.0, budget=30.0, response=_answer(503)) is None


def test_which_failures_are_transient() -> None:
    assert retry.transient(requests.exceptions.ConnectionError("refused"))
    assert retry.transient(requests.exceptions.ReadTimeout("slow"))
    assert not retry.transient(requests.exceptions.SSLError("bad certificate"))
    assert not retry.transient(requests.exceptions.InvalidURL("no"))
