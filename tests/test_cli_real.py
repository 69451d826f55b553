"""`pinrepro lock` and `pinrepro verify` end to end: the CLI, real Dockerfiles, the real distribution registry.

Images are built here and pushed with skopeo; skopeo's view of each tag is the oracle for the digests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinrepro import lockfile
from tests.support import images as im
from tests.support import pushing
from tests.support.cliproject import run, snapshot
from tests.support.dockerconfig import TEST_PASSWORD, TEST_USER, DockerConfigFactory
from tests.support.registry import RegistryServer, free_port

pytestmark = pytest.mark.realregistry

BASE_LAYER: im.LayerSpec = {"etc/os-release": b"ID=ubuntu\nVERSION_ID=22.04\n"}


@pytest.fixture
def fresh_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """A registry of this test's own, so the test can stop it."""
    with RegistryServer(tmp_path / "registry") as server:
        yield server


def push_two_platform(server: RegistryServer, layout: Path, repo: str, tag: str, marker: bytes,
                      creds: tuple[str, str] | None = None) -> str:
    built = im.build_two_platform(layout, f"{repo.replace('/', '-')}-{tag}-{hashlib.sha1(marker).hexdigest()[:8]}",
                                  [BASE_LAYER, {"marker": marker}])
    pushed = pushing.push(layout, built_tag(layout, built), server.host, repo, tag, creds=creds)
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
    pushing.push(layout, "single", host, "ml/tool", "1.0")
    project = tmp_path / "project"
    project.mkdir()
    (project / "pinrepro.toml").write_text('platforms = ["linux/amd64", "linux/arm64"]\n')
    (project / "Dockerfile").write_text(
        f"# syntax=docker/dockerfile:1\r\nARG TOOL={host}/ml/tool:1.0\r\nFROM ${{TOOL}} AS tool\r\n"
        f"FROM {host}/ml/cuda:12.4.1-runtime\r\nCOPY --from=tool / /\r\n"
    )

    result = run(project, "lock")
    assert result.exit_code == 0, result.stderr
    assert first == pushing.skopeo_digest(host, "ml/cuda", "12.4.1-runtime")
    assert single.digest == pushing.skopeo_digest(host, "ml/tool", "1.0")
    assert (project / "Dockerfile").read_bytes() == (
        f"# syntax=docker/dockerfile:1\r\nARG TOOL={host}/ml/tool:1.0@{single.digest}\r\nFROM ${{TOOL}} AS tool\r\n"
        f"FROM {host}/ml/cuda:12.4.1-runtime@{first}\r\nCOPY --from=tool / /\r\n"
    ).encode()
    lock = lockfile.read(project / "pinrepro.lock")
    assert lock is not None
    cuda = lock.images[f"{host}/ml/cuda:12.4.1-runtime"]
    assert cuda.sites == ("Dockerfile:4",)
    index = pushing.skopeo_inspect_raw(host, "ml/cuda", "12.4.1-runtime")
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
    check = run(project, "lock", "--check")
    assert (check.exit_code, check.stdout, check.stderr) == (0, "", "nothing to change\n")
    as_json = __import__("json").loads(run(project, "lock", "--check", "--format", "json").stdout)
    assert (as_json["changed"], as_json["written"], as_json["files"]) == (False, False, [])
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


WRONG_PASSWORD = "wrong-" + TEST_PASSWORD
_FROM_FIX = "write FROM [--platform=<platform>] <image>[:<tag>] [AS <name>]"
_REF_FIX = "write it as [registry[:port]/]repository[:tag][@sha256:digest]"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        # unknown repository: distribution says MANIFEST_UNKNOWN; the tag list tells it is the repository
        ({"Dockerfile": "FROM {host}/none/such:1\n"},
         "repository {host}/none/such not found - check the image name (and log in if it is private)"),
        ({"Dockerfile": "FROM {host}/base:no-such-tag\n"},
         "tag 'no-such-tag' not found in {host}/base - check the tag (the registry's tag list shows what exists)"),
        ({"Dockerfile": "FROM {auth}/base:1\n"},
         "401 from {auth} for base: wrong username or password (credentials were sent and rejected) - log in again "
         "with `docker login {auth}` (use a token where the registry needs one)"),
        ({"Dockerfile": "FROM {down}/base:1\n"},
         "cannot reach {down}: connection refused (for base) - check that the registry is running and the host and "
         "port are right"),
        ({"Dockerfile": "FROM\n"}, f"Dockerfile:1: FROM names no image - {_FROM_FIX}"),
        ({"Dockerfile": "FROM {host}/base:1 AS a b\n"},
         "Dockerfile:1: FROM takes one image and an optional 'AS <name>', not '{host}/base:1 AS a b' - "
         f"{_FROM_FIX}; a comment must go on a line of its own"),
        ({"Dockerfile": "FROM {host}/Base:1\n"},
         "Dockerfile:1: invalid image reference '{host}/Base:1': repository names must be lower-case - " + _REF_FIX),
        ({"Dockerfile": "FROM {host}/base@sha256:12\n"},
         "Dockerfile:1: invalid image reference '{host}/base@sha256:12': 'sha256:12' is not a digest (expected "
         "sha256:<64 hex digits>) - " + _REF_FIX),
        ({"Dockerfile": "FROM {host}/base:1\n", "pinrepro.toml": "platfroms = []\n"},
         "pinrepro.toml: unknown key 'platfroms' in the top-level table; known: add_max_bytes, apt, check, "
         "deploy_files, dockerfiles, extra_index_urls, find_links, hashes, index_timeout, index_url, "
         "insecure_registries, layers, lockfile, mirrors, pin, platforms, policy, python, refresh, resolver, "
         "syntax_directive, verify - remove it, or correct its spelling"),
        ({"Dockerfile": "FROM {host}/base:1\n", "pinrepro.lock": "schema = 1\n[images\n"},
         "pinrepro.lock: corrupted lock file, not valid TOML (Expected ']' at the end of a table declaration (at line "
         "2, column 8)) - restore it from version control, or delete it and run `pinrepro lock` to pin everything "
         "anew"),
    ],
    ids=["unknown-repository", "unknown-tag", "wrong-password", "registry-down", "from-without-image",
         "from-extra-words", "bad-reference", "bad-digest", "malformed-config", "corrupted-lock"],
)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(
    tmp_path: Path, registry: RegistryServer, auth_registry: RegistryServer, docker_config: DockerConfigFactory,
    files: dict[str, str], message: str
) -> None:
    layout = tmp_path / "layout"
    push_two_platform(registry, layout, "base", "1", b"base")
    docker_config(auths={auth_registry.host: (TEST_USER, WRONG_PASSWORD)})
    hosts = {"host": registry.host, "auth": auth_registry.host, "down": f"127.0.0.1:{free_port()}"}
    project = tmp_path / "project"
    project.mkdir()
    (project / "ok.Dockerfile").write_text(f"FROM {registry.host}/base:1\n")
    for name, text in files.items():
        (project / name).write_text(text.format(**hosts))
    expected = message.format(**hosts)
    before = snapshot(project)
    for command in (["lock"], ["lock", "--upgrade"], ["lock", "--dry-run"]):
        result = run(project, *command)
        assert result.exit_code == 2
        assert result.stdout == ""
        assert result.stderr == f"error: {expected}\n"
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.output
        assert WRONG_PASSWORD not in result.output and TEST_PASSWORD not in result.output
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


def test_verify_formats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Dockerfile").write_text("FROM scratch\nFROM ubuntu:22.04\n")
    text = run(project, "verify")
    assert text.exit_code == 1
    assert "Dockerfile:2: error: ubuntu:22.04 is not in pinrepro.lock" in text.stdout
    monkeypatch.setenv("GITHUB_WORKSPACE", str(project))
    github = run(project, "verify", "--format", "github")
    # With -C pointing below the repository root, annotations still name the file from the root.
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    in_subfolder = run(project, "verify", "--format", "github")
    assert "::error file=project/Dockerfile,line=2," in in_subfolder.stdout
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
    first = pushing.push(layout, "v1", registry.host, repo, "12.4.1-runtime")
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
    with monkeypatch.context() as only_here:  # undo() would also undo the isolated HOME of conftest
        only_here.setenv("PATH", str(empty_bin))
        doctor = run(project, "doctor")
    assert doctor.exit_code == 1
    assert "cannot run on this host" in doctor.stdout

    # Upstream moves the tag with a new apt package: refresh summarises it.
    old_lock = tmp_path / "old.lock"
    old_lock.write_bytes((project / "pinrepro.lock").read_bytes())
    extra = b"Package: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.81.0-1\n\n"
    im.build_image(layout, "v2", cuda_layers(extra), env=CUDA_ENV)
    second = pushing.push(layout, "v2", registry.host, repo, "12.4.1-runtime")
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
    diff_json = json.loads(run(project, "manifest", "--diff", str(old_lock), "--format", "json").stdout)
    assert [(i["change"], i["new_digest"]) for i in diff_json["images"]] == [("moved", second)]
    assert diff_json["platforms"][0]["apt"]["added"] == {"curl": "7.81.0-1"}
    nothing = run(project, "refresh")
    assert nothing.exit_code == 0
    assert "nothing" in nothing.stdout.lower()


# -- progress on a terminal -----------------------------------------------------------------------------------
def run_on_a_terminal(root: Path, *args: str) -> tuple[int, str, str]:
    """Run ``python -m pinrepro`` with stderr on a real pseudo-terminal (stdout a pipe, as in `... | less`)."""
    import os
    import pty
    import subprocess
    import sys
    import threading

    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed its end of the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        done = subprocess.run([sys.executable, "-m", "pinrepro", *args, "-C", str(root)], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=slave, timeout=120, check=False)
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    # The terminal turns "\n" into "\r\n" (onlcr); undo that so the progress line's own "\r"s stand out.
    terminal = b"".join(chunks).decode("utf-8").replace("\r\n", "\n")
    return done.returncode, done.stdout.decode("utf-8"), terminal


def test_progress_line_only_on_a_terminal(tmp_path: Path, registry: RegistryServer) -> None:
    layout = tmp_path / "layout"
    for n in range(3):
        push_two_platform(registry, layout, f"progress/img{n}", "1", f"progress{n}".encode())
    project = tmp_path / "project"
    project.mkdir()
    (project / "Dockerfile").write_text("".join(f"FROM {registry.host}/progress/img{n}:1\n" for n in range(3)))
    quiet = project.parent / "quiet"
    quiet.mkdir()
    (quiet / "Dockerfile").write_text((project / "Dockerfile").read_text())

    code, stdout, terminal = run_on_a_terminal(project, "lock")
    assert code == 0, terminal
    assert stdout == ""
    # One line, redrawn in place as each image resolves, ended once all are done.
    assert terminal.startswith("\rresolving images 1/3\rresolving images 2/3\rresolving images 3/3\n"), terminal
    assert terminal.count("resolving images") == 3
    # Then the contents of each image's platform, the same way.
    assert "\rreading image contents 1/3\rreading image contents 2/3\rreading image contents 3/3\n" in terminal
    assert terminal.endswith("3 image(s), 0 requirement layer(s) locked; resolved 3 through the registry\n"
                             "wrote Dockerfile, pinrepro.lock\n")

    # --upgrade with no tag moved: the HEAD round shows progress too, and nothing is written.
    code, _, terminal = run_on_a_terminal(project, "lock", "--upgrade")
    assert code == 0, terminal
    assert terminal.startswith("\rresolving images 1/3\rresolving images 2/3\rresolving images 3/3\n"), terminal
    assert terminal.endswith("nothing changed\n")

    # Nothing to resolve: no progress line at all.
    code, _, terminal = run_on_a_terminal(project, "lock")
    assert code == 0
    assert "resolving" not in terminal

    # -q on a terminal: no progress either.
    code, _, terminal = run_on_a_terminal(quiet, "lock", "-q")
    assert code == 0, terminal
    assert terminal == ""
    assert "@sha256:" in (quiet / "Dockerfile").read_text()


def test_no_progress_line_when_stderr_is_not_a_terminal(tmp_path: Path, registry: RegistryServer) -> None:
    layout = tmp_path / "layout"
    push_two_platform(registry, layout, "progress/pipe", "1", b"pipe")
    project = tmp_path / "project"
    project.mkdir()
    (project / "Dockerfile").write_text(f"FROM {registry.host}/progress/pipe:1\n")
    result = run(project, "lock")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ("1 image(s), 0 requirement layer(s) locked; resolved 1 through the registry\n"
                             "wrote Dockerfile, pinrepro.lock\n")


# -- request economy of `lock` ---------------------------------------------------------------------------------
def test_lock_resolves_each_reference_once_within_2_plus_2n_requests(
    tmp_path: Path, token_registry: RegistryServer, docker_config: DockerConfigFactory
) -> None:
    from pinrepro.config import load
    from pinrepro.lock import LockServices, run_lock
    from pinrepro.registry.authn import DefaultKeychain
    from pinrepro.registry.client import RegistryClient

    issuer = token_registry.issuer
    assert issuer is not None
    host = token_registry.host
    layout = tmp_path / "layout"
    creds = (TEST_USER, TEST_PASSWORD)
    push_two_platform(token_registry, layout, "economy/multi", "1", b"multi", creds=creds)
    im.build_image(layout, "economy-single", [BASE_LAYER], env=["ECONOMY=1"])
    pushing.push(layout, "economy-single", host, "economy/single", "1", creds=creds)
    project = tmp_path / "project"
    project.mkdir()
    # Two unique references, written four times across two Dockerfiles (one through an ARG).
    (project / "Dockerfile").write_text(
        f"ARG BASE={host}/economy/multi:1\nFROM ${{BASE}} AS a\nFROM {host}/economy/single:1\n")
    (project / "b.Dockerfile").write_text(f"FROM {host}/economy/multi:1\nFROM {host}/economy/single:1\n")
    docker_config(auths={host: creds})
    clients: list[RegistryClient] = []

    def make() -> RegistryClient:
        clients.append(RegistryClient(DefaultKeychain()))
        return clients[-1]

    before = len(issuer.requests)
    services = LockServices(registry=make, scanner=lambda ref, digest: {})
    outcome = run_lock(load(project), services=services)
    assert outcome.resolved == (f"{host}/economy/multi:1", f"{host}/economy/single:1")
    [client] = clients
    n = 2
    # ping + one token for both repositories + (index) + (manifest + config): 5 <= 2 + 2N
    assert client.transport.request_count == 5 <= 2 + 2 * n
    assert len(issuer.requests) - before == 1

    # Nothing changed: no client is even created, so no request can be made.
    again = run_lock(load(project), services=services)
    assert not again.changed and again.resolved == ()
    assert len(clients) == 1
    assert len(issuer.requests) - before == 1
