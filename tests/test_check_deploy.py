"""Checklist item 10 through the CLI: compose services and Kubernetes containers that run a locked image set a
memory limit, and a GPU request when the image is a CUDA image; deployment files come from pinrepro.deploy."""

from __future__ import annotations

from pathlib import Path

from tests.support.check import DIGEST_B, GOOD, project, run_check

RUNTIME = f"nvidia/cuda:12.4.1-runtime-ubuntu22.04@{DIGEST_B}"

COMPOSE_BAD = """\
services:
  api:
    build: .
    ports: ["8000:8000"]
  redis:
    image: redis:7-alpine
"""

COMPOSE_GOOD = """\
services:
  api:
    build:
      context: .
      dockerfile: Dockerfile
    deploy:
      resources:
        limits:
          memory: 16g
        reservations:
          devices:
            - driver: nvidia
              count: 1
              capabilities: [gpu]
"""

K8S = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: server
spec:
  template:
    spec:
      initContainers:
        - name: warmup
          image: {RUNTIME}
          resources:
            limits:
              memory: 1Gi
              nvidia.com/gpu: 1
      containers:
        - name: server
          image: {RUNTIME}
          resources:
            limits:
              cpu: "4"
---
apiVersion: v1
kind: Service
metadata:
  name: server
"""


def test_compose_service_built_here_without_limits(tmp_path: Path) -> None:
    project(tmp_path, {"Dockerfile": GOOD, "compose.yaml": COMPOSE_BAD})
    result = run_check(tmp_path)
    found = [(f["rule"], f["path"], f["line"]) for f in result.findings if f["rule"].startswith("deploy-")]
    # redis is not a locked image: nothing is asked of it.
    assert found == [("deploy-no-gpu-request", "compose.yaml", 2), ("deploy-no-memory-limit", "compose.yaml", 2)]
    assert "service 'api' (built from Dockerfile)" in result.of("deploy-no-memory-limit")[0]["message"]
    assert result.data["notes"] == []


def test_compose_service_with_limits_and_gpu(tmp_path: Path) -> None:
    project(tmp_path, {"Dockerfile": GOOD, "compose.yaml": COMPOSE_GOOD})
    result = run_check(tmp_path, "--strict")
    assert (result.exit_code, result.findings) == (0, [])


def test_compose_gpus_shorthand_and_mem_limit(tmp_path: Path) -> None:
    compose = "services:\n  api:\n    build: .\n    gpus: all\n    mem_limit: 8g\n"
    project(tmp_path, {"Dockerfile": GOOD, "docker-compose.yml": compose})
    assert not [f for f in run_check(tmp_path).rules() if f.startswith("deploy-")]


def test_kubernetes_containers(tmp_path: Path) -> None:
    project(tmp_path, {"Dockerfile": GOOD, "k8s/server.yaml": K8S})
    found = [(f["rule"], f["line"]) for f in run_check(tmp_path).findings if f["rule"].startswith("deploy-")]
    # The init container has both; the server container has a CPU limit only.
    assert found == [("deploy-no-gpu-request", 16), ("deploy-no-memory-limit", 16)]


def test_kubernetes_container_with_limits(tmp_path: Path) -> None:
    fixed = K8S.replace('              cpu: "4"', '              memory: 24Gi\n              nvidia.com/gpu: 1')
    project(tmp_path, {"Dockerfile": GOOD, "k8s/server.yaml": fixed})
    assert not [f for f in run_check(tmp_path).rules() if f.startswith("deploy-")]


def test_helm_values(tmp_path: Path) -> None:
    values = ("image:\n  repository: nvidia/cuda\n  tag: 12.4.1-runtime-ubuntu22.04\n  digest: " + DIGEST_B +
              "\nresources:\n  limits:\n    memory: 8Gi\n")
    project(tmp_path, {"Dockerfile": GOOD, "charts/server/values.yaml": values})
    found = [(f["rule"], f["path"], f["line"]) for f in run_check(tmp_path).findings if f["rule"].startswith("deploy-")]
    assert found == [("deploy-no-gpu-request", "charts/server/values.yaml", 1)]


def test_no_deployment_files_is_a_note_not_a_failure(tmp_path: Path) -> None:
    project(tmp_path, {"Dockerfile": GOOD})
    result = run_check(tmp_path, fmt="text")
    assert result.exit_code == 0
    assert "info: no compose or Kubernetes files found (deploy_files): resource limits (item 10) not checked" in \
        result.stderr


def test_deploy_files_setting(tmp_path: Path) -> None:
    config = '[check]\ndeploy_files = ["ops/*.yaml"]\n'
    project(tmp_path, {"Dockerfile": GOOD, "pinrepro.toml": config, "ops/stack.yaml": COMPOSE_BAD})
    # ops/stack.yaml is not named like a compose file, so it is read as Kubernetes manifests: no workload.
    assert run_check(tmp_path).data["notes"] == []
    (tmp_path / "ops" / "stack.yaml").rename(tmp_path / "ops" / "compose.yaml")
    (tmp_path / "pinrepro.toml").write_text('[check]\ndeploy_files = ["ops/compose.yaml"]\n')
    rules = run_check(tmp_path).rules()
    assert "deploy-no-memory-limit" not in rules  # build: . is relative to ops/, where no Dockerfile is
