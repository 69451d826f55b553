"""Deployment files end to end: lock / verify / --online / --upgrade / manifest through the CLI, real registry.

The project is written as real projects write these files: anchors, flow style, quoted and plain scalars, CRLF,
multi-document manifests, comments next to the image line. skopeo's view of each tag is the digest oracle.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinrepro import lockfile
from tests.support import images as im
from tests.support import pushing
from tests.support.cliproject import run
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.realregistry

CUDA_LAYER: im.LayerSpec = {
    "etc/os-release": b"ID=ubuntu\nVERSION_ID=22.04\n",
    "usr/local/cuda/version.json": b'{"cuda": {"name": "CUDA SDK", "version": "12.4.1"}}',
}


@pytest.fixture
def fresh_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    with RegistryServer(tmp_path / "registry") as server:
        yield server


def push(layout: Path, server: RegistryServer, repo: str, tag: str, marker: bytes, cuda: bool = False) -> str:
    name = f"{repo.replace('/', '-')}-{tag}-{marker.decode()}"
    layers: list[im.LayerSpec] = [CUDA_LAYER if cuda else {"etc/os-release": b"ID=alpine\n"}, {"m": marker}]
    env = ["CUDA_VERSION=12.4.1", "NVIDIA_REQUIRE_CUDA=cuda>=12.4"] if cuda else ["A=1"]
    im.build_image(layout, name, layers, env=env)
    digest = pushing.push(layout, name, server.host, repo, tag)
    assert digest == pushing.skopeo_digest(server.host, repo, tag)
    return digest


def write(root: Path, name: str, text: str) -> None:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_bytes(text.encode())


COMPOSE = (
    "x-cache: &cache\r\n"
    "  image: \"{h}/lib/redis:7-alpine\"   # keep in step with prod\r\n"
    "services:\r\n"
    "  cache:\r\n"
    "    <<: *cache\r\n"
    "  triton:\r\n"
    "    image: ${{TRITON_IMAGE:-{h}/nvidia/tritonserver:24.05-py3}}\r\n"
    "  api:\r\n"
    "    build: .\r\n"
    "    image: me/api:dev\r\n"
    "  env-only:\r\n"
    "    image: $CUSTOM\r\n"
)
K8S = (
    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: api}}\nspec:\n  template:\n    spec:\n"
    "      initContainers:\n      - name: init\n        image: '{h}/lib/redis:7-alpine'\n"
    "      containers:\n      - {{name: api, image: {h}/nvidia/tritonserver:24.05-py3}}  # sidecar\n"
    "---\n"
    "apiVersion: batch/v1\nkind: CronJob\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n"
    "          containers:\n          - name: job\n            image: {h}/lib/redis:7-alpine\n"
    "---\napiVersion: v1\nkind: ConfigMap\ndata:\n  image: not/an-image-field:1\n"
)
VALUES = (
    "image:\n  repository: {h}/lib/redis\n  tag: \"7-alpine\" # the tag stays\n  pullPolicy: IfNotPresent\n"
    "metrics:\n  image: {h}/lib/redis:7-alpine\n"
)
WORKFLOW = (
    "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    container: {h}/nvidia/tritonserver:24.05-py3\n"
    "    services:\n      redis:\n        image: {h}/lib/redis:7-alpine\n"
    "    steps:\n      - run: echo ${{{{ github.sha }}}}\n"
)
DEVCONTAINER = '{{\n  // the dev image\n  "image": "{h}/lib/redis:7-alpine",\n}}\n'
KUSTOMIZATION = "resources: [app.yaml]\nimages:\n- name: redis\n  newName: {h}/lib/redis\n  newTag: 7-alpine\n"
TEMPLATE = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  image: {{{{ .Values.image.repository }}}}\n"


def test_deployment_files_lock_verify_upgrade(tmp_path: Path, fresh_registry: RegistryServer) -> None:
    h = fresh_registry.host
    layout = tmp_path / "layout"
    redis = push(layout, fresh_registry, "lib/redis", "7-alpine", b"r1")
    triton = push(layout, fresh_registry, "nvidia/tritonserver", "24.05-py3", b"t1", cuda=True)
    project = tmp_path / "project"
    files = {
        "compose.yaml": COMPOSE, "k8s/app.yaml": K8S, "charts/api/values.yaml": VALUES,
        ".github/workflows/ci.yml": WORKFLOW, ".devcontainer/devcontainer.json": DEVCONTAINER,
        "deploy/kustomization.yaml": KUSTOMIZATION, "deploy/chart/templates/deployment.yaml": TEMPLATE,
    }
    for name, text in files.items():
        write(project, name, text.format(h=h))
    write(project, "Dockerfile", "FROM scratch\n")

    result = run(project, "lock")
    assert result.exit_code == 0, result.stderr
    r, t = f"{h}/lib/redis:7-alpine@{redis}", f"{h}/nvidia/tritonserver:24.05-py3@{triton}"
    expected = {
        "compose.yaml": COMPOSE.format(h=h).replace(f"{h}/lib/redis:7-alpine", r)
        .replace(f"{h}/nvidia/tritonserver:24.05-py3", t),
        "k8s/app.yaml": K8S.format(h=h).replace(f"{h}/lib/redis:7-alpine", r)
        .replace(f"{h}/nvidia/tritonserver:24.05-py3", t),
        "charts/api/values.yaml": VALUES.format(h=h).replace(
            '"7-alpine" # the tag stays\n', f'"7-alpine" # the tag stays\n  digest: {redis}\n')
        .replace(f"image: {h}/lib/redis:7-alpine", f"image: {r}"),
        ".github/workflows/ci.yml": WORKFLOW.format(h=h).replace(f"{h}/lib/redis:7-alpine", r)
        .replace(f"{h}/nvidia/tritonserver:24.05-py3", t),
        ".devcontainer/devcontainer.json": DEVCONTAINER.format(h=h).replace(f"{h}/lib/redis:7-alpine", r),
        "deploy/kustomization.yaml": KUSTOMIZATION.format(h=h) + f"  digest: {redis}\n",
        "deploy/chart/templates/deployment.yaml": TEMPLATE.format(h=h),
    }
    for name, text in expected.items():
        assert (project / name).read_bytes() == text.encode(), name
    assert "compose.yaml:12: warning: cannot pin services.env-only.image '$CUSTOM'" in result.stderr
    assert "deploy/chart/templates/deployment.yaml: note: skipped: a template" in result.stderr

    lock = lockfile.read(project / "pinrepro.lock")
    assert lock is not None
    assert lock.images[f"{h}/lib/redis:7-alpine"].digest == redis
    assert "compose.yaml:2" in lock.images[f"{h}/lib/redis:7-alpine"].sites
    assert "k8s/app.yaml:11" in lock.images[f"{h}/nvidia/tritonserver:24.05-py3"].sites
    assert set(lock.images) == {f"{h}/lib/redis:7-alpine", f"{h}/nvidia/tritonserver:24.05-py3"}
    # The sidecar's CUDA shows in the manifest like a base image's.
    manifest = json.loads(run(project, "manifest", "--format", "json").stdout)
    cuda = {image["ref"]: image["platforms"]["linux/amd64"]["cuda"] for image in manifest["images"]}
    assert cuda[f"{h}/nvidia/tritonserver:24.05-py3"]["version"] == "12.4.1"
    assert cuda[f"{h}/lib/redis:7-alpine"] is None

    assert run(project, "verify").exit_code == 0
    snapshot = {n: (project / n).read_bytes() for n in files}
    again = run(project, "lock")
    assert again.exit_code == 0
    assert {n: (project / n).read_bytes() for n in files} == snapshot

    # A hand edit that drops a pin, and one that pins elsewhere: verify names the file and line.
    write(project, "k8s/app.yaml", expected["k8s/app.yaml"].replace(f"redis:7-alpine@{redis}\n---\napiVersion: v1",
                                                                     "redis:7-alpine\n---\napiVersion: v1"))
    other = "sha256:" + "1" * 64
    write(project, ".devcontainer/devcontainer.json", expected[".devcontainer/devcontainer.json"].replace(redis, other))
    drift = run(project, "verify")
    assert drift.exit_code == 1
    assert f"k8s/app.yaml:22: error: {h}/lib/redis:7-alpine is not pinned by digest" in drift.stdout
    assert ".devcontainer/devcontainer.json:3: error:" in drift.stdout and "[drift]" in drift.stdout
    write(project, "k8s/app.yaml", expected["k8s/app.yaml"])
    write(project, ".devcontainer/devcontainer.json", expected[".devcontainer/devcontainer.json"])

    # The tag moves: --online reports it, lock --upgrade moves every file that names it.
    moved = push(layout, fresh_registry, "lib/redis", "7-alpine", b"r2")
    online = run(project, "verify", "--online")
    assert f"{h}/lib/redis:7-alpine now points to {moved[:19]}" in online.stdout
    summary = run(project, "refresh", "--dry-run")
    assert summary.exit_code == 0, summary.stderr
    deployment = summary.stdout.split("### Deployment images")[1]
    assert f"| `{h}/lib/redis:7-alpine` |" in deployment and "### Base images" not in summary.stdout
    assert run(project, "lock", "--upgrade").exit_code == 0
    for name in expected:
        if "redis" in expected[name] and "templates" not in name:
            assert redis not in (project / name).read_text(), name
            assert moved in (project / name).read_text(), name
    assert run(project, "verify", "--online").exit_code == 0


def test_broken_deployment_file_is_one_line_and_changes_nothing(tmp_path: Path, fresh_registry: RegistryServer) -> None:
    layout = tmp_path / "layout"
    push(layout, fresh_registry, "lib/redis", "7", b"x")
    project = tmp_path / "project"
    write(project, "Dockerfile", f"FROM {fresh_registry.host}/lib/redis:7\n")
    write(project, "compose.yaml", "services:\n  a:\n    image: [unclosed\n")
    result = run(project, "lock")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: compose.yaml:4: not valid YAML")
    assert (project / "Dockerfile").read_text() == f"FROM {fresh_registry.host}/lib/redis:7\n"
    assert not (project / "pinrepro.lock").exists()
    write(project, "compose.yaml", "services:\n  a:\n    image: Upper/Case:1\n")
    bad = run(project, "lock")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: compose.yaml:3: invalid image reference 'Upper/Case:1'")
