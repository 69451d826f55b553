"""scrub.py: the one redact (URL user-info and known secrets) and the process-wide scrubber."""

from __future__ import annotations

import pytest

from pinrepro.scrub import literal_credentials, redact, remember, scrub


@pytest.mark.parametrize(("text", "expected"), [
    ("https://u:p@idx.example:8443/simple", "https://***@idx.example:8443/simple"),
    ("see https://tok@github.com/x/y.git, a@b", "see https://***@github.com/x/y.git, a@b"),
    # a password holding '@': the user-info runs to the last '@' of the authority
    ("https://a@b:p@ss@host.example/x", "https://***@host.example/x"),
    # an '@' after the authority is not user-info
    ("https://host.example/path@v1?q=a@b", "https://host.example/path@v1?q=a@b"),
    ("https://host.example?x=a@b", "https://host.example?x=a@b"),
    # ${VAR} forms are no secret
    ("https://${USER}:${TOKEN}@idx.example/simple", "https://${USER}:${TOKEN}@idx.example/simple"),
    ("ssh://git@github.com/o/r.git", "ssh://***@github.com/o/r.git"),
])
def test_redact_masks_url_user_info(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_replaces_given_secrets() -> None:
    assert redact("token s3cr3t-value here", ["s3cr3t-value", ""]) == "token *** here"


def test_literal_credentials() -> None:
    assert literal_credentials("https://u:p@idx.example/simple")
    assert not literal_credentials("https://${U}:${P}@idx.example/simple")
    assert not literal_credentials("https://idx.example/simple")


def test_remembered_secrets_are_scrubbed_in_every_form() -> None:
    remember("pa ss/word")
    assert scrub("echo pa ss/word and pa%20ss%2Fword") == "echo *** and ***"
