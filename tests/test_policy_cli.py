"""`pinrepro policy` and `pin = "policy" | "both"` through the CLI against the real registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from tests.support import images as im
from tests.support import pushing
from tests.support.cliproject import run
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.realregistry
SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "fixtures/buildkit/source-policy.schema.json")
                    .read_text())


@pytest.fixture
def fresh_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    with RegistryServer(tmp_path / "registry") as server:
        yield server


def push(layout: Path, server: RegistryServer, repo: str, tag: str) -> str:
    im.build_image(layout, f"{repo}-{tag}", [{"etc/os-release": b"ID=debian\n", "t": tag.encode()}])
    return pushing.push(layout, f"{repo}-{tag}", server.host, repo, tag)


def test_policy_mode_leaves_dockerfiles_alone(tmp_path: Path, fresh_registry: RegistryServer) -> None:
    h = fresh_registry.host
    cuda = push(tmp_path / "layout", fresh_registry, "cuda", "12.4")
    project = tmp_path / "project"
    project.mkdir()
    dockerfile = f"ARG CUDA_VERSION=12.4\nFROM {h}/cuda:${{CUDA_VERSION}}\n"
    (project / "Dockerfile").write_text(dockerfile)
    (project / "pinrepro.toml").write_text('pin = "policy"\n[policy]\ndeny_unlocked = true\n')

    result = run(project, "lock")
    assert result.exit_code == 0, result.stderr
    assert (project / "Dockerfile").read_text() == dockerfile
    policy = json.loads((project / "pinrepro.policy.json").read_text())
    jsonschema.validate(policy, SCHEMA)
    assert policy["rules"] == [
        {"action": "DENY", "selector": {"identifier": "docker-image://*"}},
        {"action": "CONVERT", "selector": {"identifier": f"docker-image://{h}/cuda:12.4"},
         "updates": {"identifier": f"docker-image://{h}/cuda:12.4@{cuda}"}},
        {"action": "ALLOW", "selector": {"identifier": f"docker-image://{h}/cuda:12.4@{cuda}"}},
    ]
    assert run(project, "verify").exit_code == 0

    # The policy file edited by hand (or stale): verify says so and how to fix it.
    (project / "pinrepro.policy.json").write_text(json.dumps({"rules": []}))
    stale = run(project, "verify")
    assert stale.exit_code == 1
    assert "pinrepro.policy.json: error: pinrepro.policy.json does not match pinrepro.lock" in stale.stdout
    (project / "pinrepro.policy.json").unlink()
    assert "[policy-missing]" in run(project, "verify").stdout
    assert run(project, "lock").exit_code == 0
    assert run(project, "verify").exit_code == 0

    # `pinrepro policy` writes the same file; -o - prints; without --deny-unlocked there is no DENY rule.
    printed = run(project, "policy", "-o", "-")
    assert printed.exit_code == 0
    assert json.loads(printed.stdout) == policy
    dry = run(project, "policy", "-o", "plain.json", "--no-deny-unlocked", "--dry-run")
    assert dry.exit_code == 0 and "+++ b/plain.json" in dry.stdout and not (project / "plain.json").exists()
    assert run(project, "policy", "-o", "plain.json", "--no-deny-unlocked").exit_code == 0
    plain = json.loads((project / "plain.json").read_text())
    assert [r["action"] for r in plain["rules"]] == ["CONVERT"]


def test_both_pins_dockerfile_and_writes_policy(tmp_path: Path, fresh_registry: RegistryServer) -> None:
    h = fresh_registry.host
    digest = push(tmp_path / "layout", fresh_registry, "app", "1")
    project = tmp_path / "project"
    project.mkdir()
    (project / "Dockerfile").write_text(f"FROM {h}/app:1\n")
    (project / "pinrepro.toml").write_text('pin = "both"\n')
    assert run(project, "lock").exit_code == 0
    assert (project / "Dockerfile").read_text() == f"FROM {h}/app:1@{digest}\n"
    policy = json.loads((project / "pinrepro.policy.json").read_text())
    assert [r["action"] for r in policy["rules"]] == ["CONVERT"]
    assert run(project, "verify").exit_code == 0
    (project / "Dockerfile").write_text(f"FROM {h}/app:1\n")
    unpinned = run(project, "verify")
    assert unpinned.exit_code == 1 and "[unpinned]" in unpinned.stdout


def test_policy_needs_a_lock(tmp_path: Path) -> None:
    result = run(tmp_path, "policy")
    assert result.exit_code == 2
    assert result.stderr == "error: pinrepro.lock: does not exist - run `pinrepro lock` first\n"
