"""BuildKit source policy from the lock (pinrepro.policy): identifiers, rules, schema, and how BuildKit reads it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pinrepro.config import parse
from pinrepro.errors import ConfigError
from pinrepro.lockfile import ImageLock, Lock, UrlLock
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


def _matches(selector: dict[str, Any], source: str) -> bool:
    """BuildKit's ``match`` (sourcepolicy/matcher.go): an equal identifier always matches; otherwise EXACT does
    not, and WILDCARD (the default) is util/wildcard: only ``*`` is special (any run of characters), the pattern
    is anchored at both ends, and ``**`` is an error that fails every build."""
    pattern = selector["identifier"]
    if pattern == source:
        return True
    if selector.get("match_type", "WILDCARD") == "EXACT":
        return False
    assert selector.get("match_type", "WILDCARD") == "WILDCARD"
    if "**" in pattern:
        raise AssertionError(f"BuildKit refuses the wildcard {pattern!r}")
    return re.fullmatch(re.escape(pattern).replace(r"\*", "(.*)"), source) is not None


def evaluate(policy: dict[str, Any], source: str,
             attrs: dict[str, str] | None = None) -> tuple[str, dict[str, str]] | None:
    """A model of BuildKit's sourcepolicy engine (moby/buildkit sourcepolicy/engine.go, ``Evaluate`` and
    ``evaluatePolicy``; ``mutate``): the rules in order, with ``deny`` false at the start of each pass; a matching
    ALLOW sets it false and a matching DENY sets it true (the last match wins); a matching CONVERT that changes
    the identifier or an attribute ends the pass, and the next pass evaluates the new source from the first
    rule; a pass that changes nothing ends evaluation, denied if ``deny`` is set. More than 20 passes is an
    error. Returns (identifier, attrs) of what BuildKit fetches, None when denied."""
    attrs = dict(attrs or {})
    for _ in range(21):
        deny = False
        mutated = False
        for rule in policy["rules"]:
            if not _matches(rule["selector"], source):
                continue
            if rule["action"] == "ALLOW":
                deny = False
            elif rule["action"] == "DENY":
                deny = True
            else:
                assert rule["action"] == "CONVERT"
                target = rule["updates"].get("identifier") or rule["selector"]["identifier"]
                assert "$" not in target  # a wildcard's $1 would be expanded; pinrepro writes none
                if target != source:
                    source, mutated = target, True
                for key, value in rule["updates"].get("attrs", {}).items():
                    if attrs.get(key) != value:
                        attrs[key], mutated = value, True
                if mutated:
                    break
        if not mutated:
            return None if deny else (source, attrs)
    raise AssertionError("too many mutations on a single source")


def pulled(policy: dict[str, Any], source: str) -> str | None:
    result = evaluate(policy, source)
    return None if result is None else result[0]


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
        assert pulled(policy, python) == f"{python}@{A}"
        assert pulled(policy, "docker-image://localhost:5000/ml/cuda:12.4") == f"docker-image://localhost:5000/ml/cuda:12.4@{B}"
        assert pulled(policy, f"docker-image://ghcr.io/o/tool@{C}") == f"docker-image://ghcr.io/o/tool@{C}"
    # --build-arg CUDA_VERSION=12.6 names an image nobody locked: pulled as is, or refused with --deny-unlocked.
    assert pulled(plain, "docker-image://localhost:5000/ml/cuda:12.6") == "docker-image://localhost:5000/ml/cuda:12.6"
    assert pulled(deny, "docker-image://localhost:5000/ml/cuda:12.6") is None
    # Non-image sources (git, http, local) are not touched by the image deny rule.
    assert pulled(deny, "https://example.invalid/tool.tar.gz") == "https://example.invalid/tool.tar.gz"


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
    ({"fle": "x"}, r"^pinrepro.toml: unknown key 'fle' in \[policy\]; known: deny_unlocked, file - "),
    ({"file": ""}, "^pinrepro.toml policy: 'file' must be a non-empty string$"),
    ({"file": 3}, "^pinrepro.toml policy: 'file' must be a non-empty string$"),
    ({"deny_unlocked": "yes"}, "^pinrepro.toml policy: 'deny_unlocked' must be true or false$"),
])
def test_settings_are_validated(tmp_path: Path, table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(parse({"policy": table}, root=tmp_path))
    with pytest.raises(ConfigError, match="pin 'dockerfiles' is not known"):
        parse({"pin": "dockerfiles"}, root=tmp_path)
    assert load_settings(parse({"policy": {"deny_unlocked": True}}, root=tmp_path)).deny_unlocked


def test_deny_unlocked_under_buildkits_exact_semantics() -> None:
    """Review of #12: the model used fnmatch, where ``[`` and ``?`` are special and ``**`` is fine; BuildKit's
    wildcard knows only ``*``. Under BuildKit's rules: a locked tag is converted and its ``@sha256`` identifier
    allowed, a digest written in the FROM line (pin = "both") is allowed, anything unlocked is denied."""
    lock = Lock(images={
        "docker.io/library/python:3.11-slim": ImageLock(digest=A, media_type="", sites=("Dockerfile:1",)),
        "[::1]:5000/ml/cuda:12.4": ImageLock(digest=B, media_type="", sites=("Dockerfile:3",)),
    }, urls={
        "https://example.invalid/get?file=a*b.tgz": UrlLock(checksum=C, sites=("Dockerfile:4",)),
        "https://example.invalid/tool.tgz": UrlLock(checksum=A, sites=("Dockerfile:5",)),
    })
    policy = build_policy(lock, deny_unlocked=True)
    jsonschema.validate(policy, SCHEMA)
    python = "docker-image://docker.io/library/python:3.11-slim"
    cuda = "docker-image://[::1]:5000/ml/cuda:12.4"
    assert pulled(policy, python) == f"{python}@{A}"
    assert pulled(policy, f"{python}@{A}") == f"{python}@{A}"  # the FROM line already pinned
    assert pulled(policy, cuda) == f"{cuda}@{B}"
    assert pulled(policy, f"{cuda}@{B}") == f"{cuda}@{B}"
    for unlocked in (f"{python}@{B}", "docker-image://docker.io/library/python:3.12-slim",
                     "docker-image://[::1]:5000/ml/cuda:12.6", "docker-image://docker.io/library/python:latest"):
        assert pulled(policy, unlocked) is None, unlocked
    # ADD URLs get their checksum; a '*' in a URL is a character, not a wildcard matching other URLs.
    assert evaluate(policy, "https://example.invalid/get?file=a*b.tgz") == (
        "https://example.invalid/get?file=a*b.tgz", {"http.checksum": C})
    assert evaluate(policy, "https://example.invalid/get?file=aXXb.tgz") == (
        "https://example.invalid/get?file=aXXb.tgz", {})
    assert evaluate(policy, "https://example.invalid/tool.tgz") == ("https://example.invalid/tool.tgz",
                                                                     {"http.checksum": A})
    # The frontend image of a `# syntax=` line is not in the lock: denied, even pinned by digest (README).
    assert pulled(policy, f"docker-image://docker.io/docker/dockerfile:1@{A}") is None
    # The rule order is what makes this work: with the DENY last, every image would be denied.
    reordered = {"rules": [*policy["rules"][1:], policy["rules"][0]]}
    assert pulled(reordered, python) is None


@pytest.mark.parametrize(("file", "link"), [("../outside.json", False), ("out/policy.json", True),
                                            ("{outside}/policy.json", False)])
def test_the_policy_command_writes_a_configured_file_inside_the_project_only(tmp_path: Path, file: str,
                                                                             link: bool) -> None:
    """`[policy] file` outside the project (`..`, absolute, or through a link out) is refused by `pinrepro policy`
    as by `lock`: one line, exit 2, nothing written anywhere."""
    from click.testing import CliRunner

    from pinrepro.cli import cli

    project, outside = tmp_path / "project", tmp_path / "elsewhere"
    file = file.format(outside=outside)  # an absolute path
    project.mkdir()
    outside.mkdir()
    if link:
        (project / "out").symlink_to(outside)
    (project / "pinrepro.lock").write_text("schema = 1\n")
    (project / "pinrepro.toml").write_text(f'[policy]\nfile = "{file}"\n')
    for args in (["policy"], ["policy", "--dry-run"]):
        result = CliRunner().invoke(cli, [*args, "-C", str(project)], catch_exceptions=False)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {file}: ") and "outside the project" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "project"]
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in project.iterdir()) == sorted(["pinrepro.lock", "pinrepro.toml", *(["out"] * link)])
    # -o is the user's own choice on the command line, as before
    result = CliRunner().invoke(cli, ["policy", "-o", str(outside / "mine.json"), "-C", str(project)])
    assert result.exit_code == 0 and (outside / "mine.json").read_text().startswith("{")
