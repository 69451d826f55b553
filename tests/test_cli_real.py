"""`pinrepro lock` and `pinrepro verify` end to end: the CLI, real Dockerfiles, the real distribution registry.

Images are built here and pushed with skopeo; skopeo's view of each tag is the oracle for the digests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pinrepro import lockfile
from pinrepro.cli import cli
from tests.conftest import TEST_PASSWORD, TEST_USER, DockerConfigFactory
from tests.support import images as im
from tests.support.registry import RegistryServer, free_port

pytestmark = pytest.mark.realregistry

BASE_LAYER: im.LayerSpec = {"etc/os-release": b"ID=ubuntu\nVERSION_ID=22.04\n"}


def run(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "-C", str(root)], catch_exceptions=False)


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def fresh_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """A registry of this test's own, so the test can stop it."""
    with RegistryServer(tmp_path / "registry") as server:
        yield server


def push_two_platform(server: RegistryServer, layout: Path, repo: str, tag: str, marker: bytes,
                      creds: tuple[str, str] | None = None) -> str:
    built = im.build_two_platform(layout, f"{repo.replace('/', '-')}-{tag}-{hashlib.sha1(marker).hexdigest()[:8]}",
                                  [BASE_LAYER, {"marker": marker}])
    pushed = im.push(layout, built_tag(layout, built), server.host, repo, tag, creds=creds)
    assert pushed == built.digest
    return built.digest


def built_tag(layout: Path, built: im.BuiltIndex) -> str:
    for manifest in __import__("json").loads((layout / "index.json").read_text())["manifests"]:
        if manifest["digest"] == built.digest:
            return str(manifest["annotations"]["org.opencontainers.image.ref.name"])
    raise AssertionError("tag not in layout")


def test_lock_verify_upgrade_cycle(tmp_path: Path, fresh_registry: RegistryServer) -> None:
    layout = tmp_path / "layout"
    host = fresh_registry.host
    first = push_two_platform(fresh_registry, layout, "ml/cuda", "12.4.1-runtime", b"one")
    single = im.build_image(layout, "single", [BASE_LAYER], env=["A=1"])
    im.push(layout, "single", host, "ml/tool", "1.0")
    project = tmp_path / "project"
    project.mkdir()
    (project / "pinrepro.toml").write_text('platforms = ["linux/amd64", "linux/arm64"]\n')
    (project / "Dockerfile").write_text(
        f"# syntax=docker/dockerfile:1\r\nARG TOOL={host}/ml/tool:1.0\r\nFROM ${{TOOL}} AS tool\r\n"
        f"FROM {host}/ml/cuda:12.4.1-runtime\r\nCOPY --from=tool / /\r\n"
    )

    result = run(project, "lock")
    assert result.exit_code == 0, result.stderr
    assert first == im.skopeo_digest(host, "ml/cuda", "12.4.1-runtime")
    assert single.digest == im.skopeo_digest(host, "ml/tool", "1.0")
    assert (project / "Dockerfile").read_bytes() == (
        f"# syntax=docker/dockerfile:1\r\nARG TOOL={host}/ml/tool:1.0@{single.digest}\r\nFROM ${{TOOL}} AS tool\r\n"
        f"FROM {host}/ml/cuda:12.4.1-runtime@{first}\r\nCOPY --from=tool / /\r\n"
    ).encode()
    lock = lockfile.read(project / "pinrepro.lock")
    assert lock is not None
    cuda = lock.images[f"{host}/ml/cuda:12.4.1-runtime"]
    assert cuda.sites == ("Dockerfile:4",)
    index = im.skopeo_inspect_raw(host, "ml/cuda", "12.4.1-runtime")
    expected = {f"linux/{m['platform']['architecture']}": m["digest"]
                for m in __import__("json").loads(index)["manifests"]}
    assert {name: p.digest for name, p in cuda.platforms.items()} == expected
    tool = lock.images[f"{host}/ml/tool:1.0"]
    assert tool.platforms["linux/arm64"].absent
    assert "ml/tool:1.0 has no linux/arm64 image; pinned all the same" in result.stderr

    assert run(project, "verify").exit_code == 0

    # The tag moves upstream: offline verify still passes, online reports it, lock keeps, --upgrade moves.
    second = push_two_platform(fresh_registry, layout, "ml/cuda", "12.4.1-runtime", b"two")
    assert second != first
    assert run(project, "verify").exit_code == 0
    online = run(project, "verify", "--online")
    assert online.exit_code == 0
    assert f"{host}/ml/cuda:12.4.1-runtime now points to {second[:19]}" in online.stdout
    assert run(project, "verify", "--online", "--strict").exit_code == 1
    before = snapshot(project)
    assert run(project, "lock").exit_code == 0
    assert snapshot(project) == before
    check = run(project, "lock", "--upgrade", "--check")
    assert check.exit_code == 1
    assert f"+FROM {host}/ml/cuda:12.4.1-runtime@{second}" in check.stdout
    assert snapshot(project) == before
    assert run(project, "lock", "--upgrade").exit_code == 0
    assert f"ml/cuda:12.4.1-runtime@{second}" in (project / "Dockerfile").read_text()
    assert run(project, "verify", "--online").exit_code == 0


def test_unchanged_lock_needs_no_registry(tmp_path: Path, fresh_registry: RegistryServer) -> None:
    layout = tmp_path / "layout"
    push_two_platform(fresh_registry, layout, "app", "1", b"x")
    project = tmp_path / "project"
    project.mkdir()
    (project / "Dockerfile").write_text(f"FROM {fresh_registry.host}/app:1\n")
    assert run(project, "lock").exit_code == 0
    fresh_registry.stop()
    before = snapshot(project)
    result = run(project, "lock")
    assert result.exit_code == 0, result.stderr
    assert snapshot(project) == before
    assert run(project, "verify").exit_code == 0
    down = run(project, "lock", "--upgrade")
    assert down.exit_code == 2
    assert down.stderr.startswith(f"error: cannot reach {fresh_registry.host}")
    assert snapshot(project) == before


@pytest.mark.parametrize("mode", ["htpasswd", "token"])
def test_private_registries_with_docker_config_and_helper(
    tmp_path: Path, mode: str, request: pytest.FixtureRequest, docker_config: DockerConfigFactory
) -> None:
    server: RegistryServer = request.getfixturevalue("auth_registry" if mode == "htpasswd" else "token_registry")
    layout = tmp_path / "layout"
    digest = push_two_platform(server, layout, f"private/{mode}", "v1", mode.encode(), creds=(TEST_USER, TEST_PASSWORD))
    project = tmp_path / "project"
    project.mkdir()
    (project / "Dockerfile").write_text(f"FROM {server.host}/private/{mode}:v1\n")

    docker_config()  # no credentials at all
    denied = run(project, "lock")
    assert denied.exit_code == 2
    assert f"{server.host}" in denied.stderr and f"docker login {server.host}" in denied.stderr
    assert TEST_PASSWORD not in denied.stderr

    docker_config(auths={server.host: (TEST_USER, "wrong-" + TEST_PASSWORD)})
    wrong = run(project, "lock")
    assert wrong.exit_code == 2
    assert "wrong username or password" in wrong.stderr
    assert TEST_PASSWORD not in wrong.output and "wrong-" not in wrong.output
    assert not (project / "pinrepro.lock").exists()

    docker_config(cred_helpers={server.host: "testhelper"}, helper_store={server.host: (TEST_USER, TEST_PASSWORD)})
    result = run(project, "lock")
    assert result.exit_code == 0, result.stderr
    assert f"@{digest}" in (project / "Dockerfile").read_text()
    assert TEST_PASSWORD not in (project / "pinrepro.lock").read_text() + result.output


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"Dockerfile": "FROM {host}/none/such:1\n"}, "not found"),
        ({"Dockerfile": "FROM {host}/base:no-such-tag\n"}, "tag 'no-such-tag' not found in {host}/base"),
        ({"Dockerfile": "FROM\n"}, "error: Dockerfile:1:"),
        ({"Dockerfile": "FROM {host}/Base:1\n"}, "error: Dockerfile:1: invalid image reference '{host}/Base:1'"),
        ({"Dockerfile": "FROM {host}/base:1\n", "pinrepro.toml": "platfroms = []\n"},
         "error: pinrepro.toml: unknown key 'platfroms'"),
        ({"Dockerfile": "FROM {host}/base:1\n", "pinrepro.lock": "schema = 1\n[images\n"},
         "error: pinrepro.lock: corrupted lock file"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(
    tmp_path: Path, registry: RegistryServer, files: dict[str, str], message: str
) -> None:
    layout = tmp_path / "layout"
    push_two_platform(registry, layout, "base", "1", b"base")
    project = tmp_path / "project"
    project.mkdir()
    (project / "ok.Dockerfile").write_text(f"FROM {registry.host}/base:1\n")
    for name, text in files.items():
        (project / name).write_text(text.format(host=registry.host))
    before = snapshot(project)
    for command in (["lock"], ["lock", "--upgrade"]):
        result = run(project, *command)
        assert result.exit_code == 2
        assert message.format(host=registry.host) in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.output
        assert snapshot(project) == before


def test_registry_down_is_one_line(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    host = f"127.0.0.1:{free_port()}"
    (project / "Dockerfile").write_text(f"FROM {host}/app:1\n")
    result = run(project, "lock")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: cannot reach {host}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in project.iterdir()) == ["Dockerfile"]


def test_verify_formats(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Dockerfile").write_text("FROM scratch\nFROM ubuntu:22.04\n")
    text = run(project, "verify")
    assert text.exit_code == 1
    assert "Dockerfile:2: error: ubuntu:22.04 is not in pinrepro.lock" in text.stdout
    github = run(project, "verify", "--format", "github")
    assert "::error file=Dockerfile,line=2,title=pinrepro not-locked::ubuntu:22.04 is not in pinrepro.lock" in (
        github.stdout)
    data = __import__("json").loads(run(project, "verify", "--format", "json").stdout)
    assert data["exit_code"] == 1
    assert {f["code"] for f in data["findings"]} == {"no-lock", "not-locked"}


def test_mirror_resolves_while_the_dockerfile_keeps_the_upstream_name(tmp_path: Path, registry: RegistryServer) -> None:
    layout = tmp_path / "layout"
    digest = push_two_platform(registry, layout, "library/ubuntu", "22.04", b"mirrored")
    project = tmp_path / "project"
    project.mkdir()
    (project / "pinrepro.toml").write_text(f'[mirrors]\n"docker.io" = "{registry.host}"\n')
    (project / "Dockerfile").write_text("FROM ubuntu:22.04\n")
    result = run(project, "lock")
    assert result.exit_code == 0, result.stderr
    assert (project / "Dockerfile").read_text() == f"FROM ubuntu:22.04@{digest}\n"
    lock = lockfile.read(project / "pinrepro.lock")
    assert lock is not None and list(lock.images) == ["docker.io/library/ubuntu:22.04"]


def test_python_dash_m_runs_the_cli(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "pinrepro", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("pinrepro, version ")


CUDA_ENV = [
    "PATH=/usr/local/cuda/bin:/usr/bin:/bin",
    "NVIDIA_REQUIRE_CUDA=cuda>=12.4 brand=tesla,driver>=470,driver<471",
    "CUDA_VERSION=12.4.1",
    "NV_LIBCUBLAS_VERSION=12.4.5.8-1",
    "NCCL_VERSION=2.21.5-1",
    "NV_CUDNN_VERSION=9.1.0.70-1",
    "PYTHON_VERSION=3.11.9",
]


def cuda_layers(extra_package: bytes = b"") -> list[im.LayerSpec]:
    status = (b"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.35-0ubuntu3.7\n\n"
              + extra_package)
    return [{"etc/os-release": b"ID=ubuntu\nVERSION_ID=22.04\n", "var/lib/dpkg/status": status}]


def test_manifest_doctor_and_refresh_commands(tmp_path: Path, registry: RegistryServer,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    layout = tmp_path / "layout"
    repo = f"cuda-cli/{tmp_path.name.lower()}"
    im.build_image(layout, "v1", cuda_layers(), env=CUDA_ENV)
    first = im.push(layout, "v1", registry.host, repo, "12.4.1-runtime")
    project = tmp_path / "project"
    project.mkdir()
    (project / "Dockerfile").write_text(f"FROM {registry.host}/{repo}:12.4.1-runtime\n")
    assert run(project, "lock").exit_code == 0

    data = json.loads(run(project, "manifest", "--format", "json").stdout)
    [image] = data["images"]
    assert image["ref"] == f"{registry.host}/{repo}:12.4.1-runtime" and image["digest"] == first
    amd64 = image["platforms"]["linux/amd64"]
    assert amd64["os"]["id"] == "ubuntu" and amd64["os"]["version_id"] == "22.04"
    assert amd64["python"] == "3.11.9"
    assert amd64["cuda"]["version"] == "12.4.1" and amd64["cuda"]["nccl"].startswith("2.21.5")
    assert amd64["apt"] == {"libc6": "2.35-0ubuntu3.7"}
    assert "12.4.1" in run(project, "manifest").stdout

    # No NVIDIA driver on this host (an empty PATH for tools): doctor says so and exits 1.
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    doctor = run(project, "doctor")
    assert doctor.exit_code == 1
    assert "cannot run on this host" in doctor.stdout
    monkeypatch.undo()

    # Upstream moves the tag with a new apt package: refresh summarises it.
    old_lock = tmp_path / "old.lock"
    old_lock.write_bytes((project / "pinrepro.lock").read_bytes())
    extra = b"Package: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.81.0-1\n\n"
    im.build_image(layout, "v2", cuda_layers(extra), env=CUDA_ENV)
    second = im.push(layout, "v2", registry.host, repo, "12.4.1-runtime")
    dry = run(project, "refresh", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert second[:19].split(":")[1][:12] in dry.stdout and "curl" in dry.stdout
    assert (project / "pinrepro.lock").read_bytes() == old_lock.read_bytes()
    refreshed = run(project, "refresh")
    assert refreshed.exit_code == 0, refreshed.stderr
    assert f"@{second}" in (project / "Dockerfile").read_text()
    diff = run(project, "manifest", "--diff", str(old_lock))
    assert diff.exit_code == 0
    assert "curl" in diff.stdout
    nothing = run(project, "refresh")
    assert nothing.exit_code == 0
    assert "nothing" in nothing.stdout.lower()
