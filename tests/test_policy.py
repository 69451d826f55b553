"""BuildKit source policy from the lock (pinrepro.policy): identifiers, rules, schema, and how BuildKit reads it."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pinrepro.config import parse
from pinrepro.errors import ConfigError
from pinrepro.lockfile import ImageLock, Lock
from pinrepro.policy import build_policy, identifier, load_settings, render
from pinrepro.reference import ImageRef

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "fixtures/buildkit/source-policy.schema.json")
                    .read_text())
A, B, C = ("sha256:" + c * 64 for c in "abc")


@pytest.mark.parametrize(("written", "expected"), [
    ("alpine", "docker-image://docker.io/library/alpine:latest"),
    ("alpine:3.19", "docker-image://docker.io/library/alpine:3.19"),
    ("docker.io/alpine:3.19", "docker-image://docker.io/library/alpine:3.19"),
    ("index.docker.io/library/python:3.11-slim", "docker-image://docker.io/library/python:3.11-slim"),
    ("pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime", "docker-image://docker.io/pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime"),
    ("nvcr.io/nvidia/tritonserver:24.05-py3", "docker-image://nvcr.io/nvidia/tritonserver:24.05-py3"),
    ("localhost:5000/team/app:1.0", "docker-image://localhost:5000/team/app:1.0"),
    ("127.0.0.1:5000/app", "docker-image://127.0.0.1:5000/app:latest"),
    (f"ghcr.io/o/app:1@{A}", f"docker-image://ghcr.io/o/app:1@{A}"),
    (f"ghcr.io/o/app@{A}", f"docker-image://ghcr.io/o/app@{A}"),
])
def test_identifier_is_what_buildkit_computes(written: str, expected: str) -> None:
    assert identifier(ImageRef.parse(written)) == expected


def _lock() -> Lock:
    return Lock(images={
        "docker.io/library/python:3.11-slim": ImageLock(digest=A, media_type="", sites=("Dockerfile:1",)),
        "localhost:5000/ml/cuda:12.4": ImageLock(digest=B, media_type="", sites=("Dockerfile:3",)),
        f"ghcr.io/o/tool@{C}": ImageLock(digest=C, media_type="", sites=("Dockerfile:5",)),
    })


def evaluate(policy: dict[str, Any], source: str) -> str | None:
    """A model of BuildKit's sourcepolicy engine: rules in order; a matching CONVERT rewrites the identifier and
    evaluation starts over; among ALLOW / DENY the last match wins. Returns the identifier pulled, None if denied."""
    for _ in range(20):
        denied = False
        for rule in policy["rules"]:
            pattern = rule["selector"]["identifier"]
            if not fnmatch.fnmatchcase(source, pattern):
                continue
            if rule["action"] == "DENY":
                denied = True
            elif rule["action"] == "ALLOW":
                denied = False
            elif "identifier" in rule["updates"] and rule["updates"]["identifier"] != source:
                source = rule["updates"]["identifier"]
                break
        else:
            return None if denied else source
    raise AssertionError("conversion loop")


def test_policy_converts_every_locked_tag_and_denies_only_when_asked() -> None:
    plain = build_policy(_lock())
    deny = build_policy(_lock(), deny_unlocked=True)
    for policy in (plain, deny):
        jsonschema.validate(policy, SCHEMA)
    assert [r["action"] for r in plain["rules"]] == ["CONVERT", "CONVERT"]
    assert plain["rules"][0] == {
        "action": "CONVERT", "selector": {"identifier": "docker-image://docker.io/library/python:3.11-slim"},
        "updates": {"identifier": f"docker-image://docker.io/library/python:3.11-slim@{A}"}}
    assert deny["rules"][0] == {"action": "DENY", "selector": {"identifier": "docker-image://*"}}
    assert not any(r["action"] == "DENY" for r in plain["rules"])

    python = "docker-image://docker.io/library/python:3.11-slim"
    for policy in (plain, deny):
        assert evaluate(policy, python) == f"{python}@{A}"
        assert evaluate(policy, "docker-image://localhost:5000/ml/cuda:12.4") == f"docker-image://localhost:5000/ml/cuda:12.4@{B}"
        assert evaluate(policy, f"docker-image://ghcr.io/o/tool@{C}") == f"docker-image://ghcr.io/o/tool@{C}"
    # --build-arg CUDA_VERSION=12.6 names an image nobody locked: pulled as is, or refused with --deny-unlocked.
    assert evaluate(plain, "docker-image://localhost:5000/ml/cuda:12.6") == "docker-image://localhost:5000/ml/cuda:12.6"
    assert evaluate(deny, "docker-image://localhost:5000/ml/cuda:12.6") is None
    # Non-image sources (git, http, local) are not touched by the image deny rule.
    assert evaluate(deny, "https://example.invalid/tool.tar.gz") == "https://example.invalid/tool.tar.gz"


def test_schema_rejects_what_buildkit_does_not_define() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"rules": [{"action": "PIN", "selector": {"identifier": "x"}}]}, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"rules": [{"action": "CONVERT", "selector": {"identifier": "x"}}]}, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"rules": [], "extra": 1}, SCHEMA)


def test_render_is_stable_json() -> None:
    text = render(build_policy(_lock(), deny_unlocked=True))
    assert text.endswith("}\n") and json.loads(text) == build_policy(_lock(), deny_unlocked=True)
    assert render(build_policy(_lock(), deny_unlocked=True)) == text


@pytest.mark.parametrize(("table", "message"), [
    ({"fle": "x"}, "unknown key 'fle'"),
    ({"file": ""}, "'file' must be a non-empty string"),
    ({"deny_unlocked": "yes"}, "'deny_unlocked' must be true or false"),
])
def test_settings_are_validated(tmp_path: Path, table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(parse({"policy": table}, root=tmp_path))
    with pytest.raises(ConfigError, match="pin 'dockerfiles' is not known"):
        parse({"pin": "dockerfiles"}, root=tmp_path)
    assert load_settings(parse({"policy": {"deny_unlocked": True}}, root=tmp_path)).deny_unlocked
