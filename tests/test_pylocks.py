"""Requirement locks that install wherever the image builds (issue 9), through the command line.

The index is a wheelhouse served over HTTP on 127.0.0.1 with the shape of an ML stack in miniature: ``torchy``
has an x86_64 and an aarch64 manylinux wheel and, on x86_64 only (``platform_machine == "x86_64"``), needs
``nvlib-cu12``, which has nothing but an x86_64 wheel. The oracle is pip itself: ``pip download --platform``
for every configured platform, and ``pip install --require-hashes`` into a fresh virtual environment here.
Every command runs under a timeout, so a regression that hangs fails instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cliproject import clean_env, layered_project, pinrepro, snapshot
from tests.support.registry import free_port
from tests.support.tools import require_uv
from tests.support.wheelhouse import Wheelhouse, serve

X86 = "manylinux_2_17_x86_64.manylinux2014_x86_64"
ARM = "manylinux_2_17_aarch64.manylinux2014_aarch64"
PIP_TAGS = {"linux/amd64": "manylinux2014_x86_64", "linux/arm64": "manylinux2014_aarch64"}
BOTH = pytest.mark.parametrize("resolver", ["pip-compile", "uv"])
USER, PASSWORD = "bot", "pw-9f3c2e71a8"


@pytest.fixture(autouse=True)
def _uv_present(request: pytest.FixtureRequest) -> None:
    if "resolver" in request.fixturenames and request.getfixturevalue("resolver") == "uv":
        require_uv()


@pytest.fixture(scope="session")
def house(tmp_path_factory: pytest.TempPathFactory) -> Wheelhouse:
    wheels = Wheelhouse(tmp_path_factory.mktemp("ml-wheelhouse"))
    wheels.add("torchy", "2.0", "nvlib-cu12 ; platform_machine == 'x86_64'", "helper", platforms=(X86, ARM))
    wheels.add("nvlib-cu12", "1.0", platforms=(X86,))
    wheels.add("helper", "1.0")
    wheels.add("webapp", "1.0", "helper")
    wheels.add("extra-only", "1.0")
    return wheels


@pytest.fixture(scope="session")
def index(house: Wheelhouse) -> Iterator[str]:
    with serve(house.root) as url:
        yield f"{url}/simple"


@pytest.fixture(scope="session")
def private_index(tmp_path_factory: pytest.TempPathFactory, house: Wheelhouse) -> Iterator[str]:
    """The same wheels behind Basic auth (user ``bot``)."""
    with serve(house.root, auth=(USER, PASSWORD)) as url:
        yield url


def pip_download(lock: Path, platform: str, dest: Path, python: str = "3.11") -> subprocess.CompletedProcess[str]:
    """The oracle for "installs on that platform": pip fetching every pinned file for it, hashes checked."""
    return subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--only-binary=:all:",
         "--platform", PIP_TAGS[platform], "--python-version", python, "-d", str(dest), "-r", str(lock)],
        capture_output=True, text=True, env=clean_env(), timeout=120, check=False)


def fresh_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120, capture_output=True)
    return path / "bin" / "python"


# -- 1-3: every configured platform ---------------------------------------------------------------------------

TWO_PLATFORMS = 'platforms = ["linux/amd64", "linux/arm64"]\npython = "3.11"\n'


def test_uv_locks_every_platform_and_pip_installs_each(tmp_path: Path, index: str) -> None:
    require_uv()
    root = layered_project(tmp_path / "p", TWO_PLATFORMS + f'resolver = "uv"\nindex_url = "{index}"\n',
                   {"base": "torchy\n", "app": "webapp\n"})

    done = pinrepro(root, "lock")

    assert done.returncode == 0, done.stderr
    for layer in ("base", "app"):
        assert not (root / f"requirements-{layer}.lock").exists()
        for platform in ("linux/amd64", "linux/arm64"):
            lock = root / f"requirements-{layer}.{platform.split('/')[1]}.lock"
            text = lock.read_text()
            assert f"for Python 3.11 on {platform}\n" in text  # the header names its platform
            got = pip_download(lock, platform, tmp_path / "dl" / layer / platform.replace("/", "-"))
            assert got.returncode == 0, got.stdout + got.stderr
    amd64 = (root / "requirements-base.amd64.lock").read_text()
    arm64 = (root / "requirements-base.arm64.lock").read_text()
    assert "nvlib-cu12==1.0" in amd64 and "nvlib-cu12" not in arm64
    assert "torchy==2.0" in arm64 and "helper==1.0" in arm64
    # the upper layer was compiled under the same platform's lower lock
    assert "-c requirements-base.arm64.lock" in (root / "requirements-app.arm64.lock").read_text()

    # the lock of this machine's platform installs for real, with nothing but the lock
    python = fresh_venv(tmp_path / "venv")
    for layer in ("base", "app"):
        installed = subprocess.run(
            [str(python), "-m", "pip", "install", "--no-deps", "--require-hashes", "-r",
             str(root / f"requirements-{layer}.amd64.lock")],
            capture_output=True, text=True, env=clean_env(), timeout=180, check=False)
        assert installed.returncode == 0, installed.stdout + installed.stderr
    shown = subprocess.run([str(python), "-c", "import torchy, nvlib_cu12, webapp; print(torchy.__version__)"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.stdout == "2.0\n", shown.stderr

    # pinrepro.lock records each platform's lock; verify is clean, and a second lock compiles nothing
    record = tomllib.loads((root / "pinrepro.lock").read_text())["layers"]["base"]
    assert record["platforms"] == {
        "linux/amd64": hashlib.sha256(amd64.encode()).hexdigest(),
        "linux/arm64": hashlib.sha256(arm64.encode()).hexdigest(),
    }
    assert pinrepro(root, "verify").returncode == 0
    again = pinrepro(root, "lock")
    assert again.returncode == 0 and "recompiled: none; unchanged: base, app" in again.stderr


def test_pip_compile_refuses_a_platform_it_cannot_resolve_for(tmp_path: Path, index: str) -> None:
    root = layered_project(tmp_path / "p", TWO_PLATFORMS + f'index_url = "{index}"\n', {"base": "torchy\n"})
    before = snapshot(root)

    done = pinrepro(root, "lock")

    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "error: layer 'base': pip-compile resolves for the machine it runs on (linux/amd64), not for the image's "
        'platform linux/arm64 - set resolver = "uv", which resolves for every configured platform')
    assert snapshot(root) == before


def test_verify_flags_a_configured_platform_without_a_lock(tmp_path: Path, index: str) -> None:
    require_uv()
    root = layered_project(tmp_path / "p", f'python = "3.11"\nresolver = "uv"\nindex_url = "{index}"\n',
                   {"base": "torchy\n"})
    assert pinrepro(root, "lock").returncode == 0
    (root / "pinrepro.toml").write_text(
        (root / "pinrepro.toml").read_text().replace('python = "3.11"', TWO_PLATFORMS.rstrip()))

    done = pinrepro(root, "verify")

    assert done.returncode == 1
    assert ("requirements-base.arm64.lock: error: layer 'base' has no lock for linux/arm64 - run `pinrepro lock` "
            "[platform-unlocked]") in done.stdout
    # and lock adds it (the platforms are part of what a layer is compiled for)
    locked = pinrepro(root, "lock")
    assert locked.returncode == 0, locked.stderr
    assert "recompiled: base" in locked.stderr
    assert pinrepro(root, "verify").returncode == 0


# -- 4: the configured index goes into the lock ----------------------------------------------------------------


@BOTH
def test_configured_indexes_are_written_into_the_lock(tmp_path: Path, house: Wheelhouse, index: str,
                                                      resolver: str) -> None:
    extra = tmp_path / "extra"
    extra_house = Wheelhouse(extra)
    extra_house.add("gpu-only", "1.0")
    with serve(extra) as extra_url:
        root = layered_project(tmp_path / "p", f'resolver = "{resolver}"\nindex_url = "{index}"\n'
                       f'extra_index_urls = ["{extra_url}/simple"]\nfind_links = ["{extra_url}/files/"]\n',
                       {"base": "helper\ngpu-only\n"})
        env = clean_env(PIP_INDEX_URL="http://leak.invalid/simple", UV_EXTRA_INDEX_URL="http://leak2.invalid/s")
        done = pinrepro(root, "lock", env=env)
        assert done.returncode == 0, done.stderr
        text = (root / "requirements-base.lock").read_text()
        assert text.split("\n")[6:9] == [f"--index-url {index}", f"--extra-index-url {extra_url}/simple",
                                         f"--find-links {extra_url}/files/"]
        assert "leak" not in text
        # pip needs nothing but the lock to find both packages
        python = fresh_venv(tmp_path / "venv")
        installed = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--require-hashes", "-r",
                                    str(root / "requirements-base.lock")],
                                   capture_output=True, text=True, env=clean_env(), timeout=180, check=False)
        assert installed.returncode == 0, installed.stdout + installed.stderr


# -- 5: an index that fails is an error, never a silent fallback -----------------------------------------------


class _Broken:
    """A loopback server that answers every request with ``status``, or (status 0) accepts and never answers;
    with ``pages_only``, only the project pages fail (the index root answers HEAD)."""

    def __init__(self, status: int, *, pages_only: bool = False) -> None:
        self.pages_only = pages_only
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.status = status
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            if self.status == 0:
                self.held.append(conn)  # never answered
                continue
            try:
                conn.settimeout(5)
                request = conn.recv(65536)
                status = 200 if self.pages_only and request.startswith(b"HEAD ") else self.status
                body = b"broken"
                conn.sendall(f"HTTP/1.1 {status} Broken\r\nContent-Length: {len(body)}\r\n"
                             "Connection: close\r\n\r\n".encode() + body)
            except OSError:
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def broken_index(request: pytest.FixtureRequest, index: str) -> Iterator[tuple[str, str]]:
    """(URL of a failing extra index, what the error says about it)."""
    kind = request.param
    if kind in ("500", "hang", "pages"):
        server = _Broken(0 if kind == "hang" else 500, pages_only=kind == "pages")
        try:
            yield (f"http://127.0.0.1:{server.port}/simple", {
                "500": "answered HTTP 500", "hang": "did not answer within 2 s",
                "pages": "",  # the root answers; the page of the package fails during resolution
            }[kind])
        finally:
            server.close()
    elif kind == "refused":
        yield f"http://127.0.0.1:{free_port()}/simple", "cannot be reached (Connection refused)"
    elif kind == "404":
        yield index.replace("/simple", "/no-such-index/simple"), "answered HTTP 404"
    else:  # TLS spoken to a plain HTTP server
        yield index.replace("http://", "https://"), "failed the TLS handshake ("


@BOTH
@pytest.mark.parametrize("broken_index", ["refused", "404", "500", "hang", "tls", "pages"], indirect=True)
def test_a_failing_configured_index_is_exit_2_naming_it(tmp_path: Path, index: str, resolver: str,
                                                        broken_index: tuple[str, str]) -> None:
    url, problem = broken_index
    root = layered_project(tmp_path / "p", f'resolver = "{resolver}"\nindex_url = "{index}"\n'
                   f'extra_index_urls = ["{url}"]\nindex_timeout = 2\n', {"base": "helper\n"})
    before = snapshot(root)

    done = pinrepro(root, "lock", timeout=60)

    assert done.returncode == 2, done.stderr
    if problem:
        assert done.stderr.startswith(f"error: layer 'base': the package index {url} {problem}"), done.stderr
    else:
        assert f"the package index {url} " in done.stderr and "500" in done.stderr, done.stderr
    assert snapshot(root) == before


# -- 6: credentials stay ${VAR} ---------------------------------------------------------------------------------


@BOTH
def test_credentials_stay_variables_in_locks_output_and_errors(tmp_path: Path, private_index: str,
                                                               resolver: str) -> None:
    port = private_index.rsplit(":", 1)[1]
    templated = f"http://${{INDEX_USER}}:${{INDEX_TOKEN}}@127.0.0.1:{port}"
    root = layered_project(tmp_path / "p", f'resolver = "{resolver}"\nindex_url = "{templated}/simple"\n',
                   {"base": f"webapp\nhelper @ {templated}/files/helper-1.0-py3-none-any.whl\n"})
    # (not PIP_USER: pip reads that one as its --user option)
    env = clean_env(INDEX_USER=USER, INDEX_TOKEN=PASSWORD)

    done = pinrepro(root, "lock", "-v", env=env)

    assert done.returncode == 0, done.stderr
    lock = (root / "requirements-base.lock").read_text()
    assert f"--index-url {templated}/simple\n" in lock
    assert f"helper @ {templated}/files/helper-1.0-py3-none-any.whl" in lock
    texts = [lock, (root / "pinrepro.lock").read_text(), done.stdout, done.stderr]
    assert not any(PASSWORD in text for text in texts)
    # pip expands the variables at install time, as the lock promises
    python = fresh_venv(tmp_path / "venv")
    installed = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--require-hashes", "-r",
                                str(root / "requirements-base.lock")],
                               capture_output=True, text=True, env=env, timeout=180, check=False)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    # an error about that index names it with the variables, never with the password
    (root / "requirements-base.in").write_text("no-such-thing\n")
    failed = pinrepro(root, "lock", "-v", env=env)
    assert failed.returncode == 2
    assert PASSWORD not in failed.stdout + failed.stderr
    # without the variables set, lock says which one is missing
    missing = pinrepro(root, "lock", env=clean_env(INDEX_USER=USER))
    assert missing.returncode == 2
    assert "${INDEX_TOKEN} is not set in the environment" in missing.stderr


def test_a_password_written_into_an_index_url_is_refused(tmp_path: Path, private_index: str) -> None:
    port = private_index.rsplit(":", 1)[1]
    root = layered_project(tmp_path / "p", f'index_url = "http://{USER}:{PASSWORD}@127.0.0.1:{port}/simple"\n',
                   {"base": "helper\n"})
    before = snapshot(root)
    done = pinrepro(root, "lock")
    assert done.returncode == 2
    assert PASSWORD not in done.stdout + done.stderr
    assert "has its credentials written out" in done.stderr and "${INDEX_TOKEN}" in done.stderr
    assert snapshot(root) == before


# -- 7-8: recompile when it matters, and say so ------------------------------------------------------------------


def test_every_option_that_changes_the_resolution_recompiles(tmp_path: Path, index: str) -> None:
    require_uv()
    extra = tmp_path / "extra"
    Wheelhouse(extra).add("gpu-only", "1.0")
    root = layered_project(tmp_path / "p", f'python = "3.11"\nindex_url = "{index}"\n',
                   {"base": "helper\n", "app": "webapp\n"})
    config = root / "pinrepro.toml"

    def edit(old: str, new: str) -> None:
        text = config.read_text()
        assert old in text
        config.write_text(text.replace(old, new, 1))

    def lock(*args: str) -> str:
        done = pinrepro(root, "lock", *args)
        assert done.returncode == 0, done.stderr
        return done.stderr

    assert "recompiled: base, app; unchanged: none" in lock()
    assert "recompiled: none; unchanged: base, app" in lock()
    as_json = pinrepro(root, "lock", "--format", "json")
    assert json.loads(as_json.stdout)["layers"] == {"recompiled": [], "unchanged": ["base", "app"]}
    # switching the resolver runs the other resolver (its own output shows with -v), not a relabel
    edit('python = "3.11"', 'python = "3.11"\nresolver = "uv"')
    switched = lock("-v")
    assert "recompiled: base, app; unchanged: none" in switched
    assert "Resolved 1 package" in switched  # uv's own words, streamed
    assert tomllib.loads((root / "pinrepro.lock").read_text())["layers"]["base"]["resolver"] == "uv"
    for old, new, expected in [
        ('python = "3.11"', 'python = "3.12"', "recompiled: base, app; unchanged: none"),
        ('resolver = "uv"', 'resolver = "uv"\nhashes = false', "recompiled: base, app; unchanged: none"),
        (f'index_url = "{index}"', f'index_url = "{index}"\nextra_index_urls = ["{extra.as_uri()}/simple"]',
         "recompiled: base, app; unchanged: none"),
        ('constraints = ["base"]', "constraints = []", "recompiled: app; unchanged: base"),
        ('python = "3.12"', 'python = "3.12"\nplatforms = ["linux/amd64", "linux/arm64"]',
         "recompiled: base, app; unchanged: none"),
    ]:
        edit(old, new)
        assert expected in lock(), new
        assert "recompiled: none; unchanged: base, app" in lock(), new
    assert "Python 3.12 on linux/arm64" in (root / "requirements-app.arm64.lock").read_text()


def test_progress_names_each_layer_and_its_resolver_on_a_terminal(tmp_path: Path, index: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    require_uv()
    from click.testing import CliRunner

    from pinrepro import cli, terminal

    for key in [k for k in os.environ if k.startswith(("PIP_", "UV_"))]:
        monkeypatch.delenv(key)
    root = layered_project(tmp_path / "p", f'resolver = "uv"\nindex_url = "{index}"\n', {"base": "helper\n"})
    monkeypatch.setattr(terminal, "_terminal", lambda: True)
    done = CliRunner().invoke(cli.cli, ["lock", "-C", str(root)])
    assert done.exit_code == 0, done.stderr
    first, second = done.stderr.split("\n")[:2]
    assert first.startswith("compiling layer 'base' for linux/amd64 with uv ...\rcompiling layer 'base' for "
                            "linux/amd64 with uv: "), first
    assert first.endswith(" s")
    assert second.startswith("0 image(s), 1 requirement layer(s) locked; recompiled: base; unchanged: none")
    # not on a terminal (a CI log): no progress line
    monkeypatch.setattr(terminal, "_terminal", lambda: False)
    (root / "requirements-base.in").write_text("helper\nwebapp\n")
    quiet = CliRunner().invoke(cli.cli, ["lock", "-C", str(root)])
    assert quiet.exit_code == 0 and "compiling" not in quiet.stderr


def test_verify_points_a_dockerfile_at_the_lock_of_its_target_arch(tmp_path: Path, index: str) -> None:
    require_uv()
    root = layered_project(tmp_path / "p", TWO_PLATFORMS + f'resolver = "uv"\nindex_url = "{index}"\n',
                   {"base": "torchy\n"}, dockerfile=(
                       "FROM scratch\n"
                       "RUN pip install --require-hashes --no-deps -r requirements-base.lock\n"
                       "ARG TARGETARCH\n"
                       "RUN pip install --require-hashes --no-deps -r requirements-base.${TARGETARCH}.lock\n"
                       "RUN pip install --no-deps -r requirements-base.amd64.lock\n"
                       "RUN pip install -r requirements-base.in\n"))
    assert pinrepro(root, "lock").returncode == 0
    done = pinrepro(root, "verify")
    # the single lock is an error; the ${TARGETARCH} lock is what pinrepro writes, installed as it should be
    assert (done.returncode, done.stdout) == (1, (
        "Dockerfile:2: error: installs requirements-base.lock, but layer 'base' is locked per platform "
        "(linux/amd64, linux/arm64) - after `ARG TARGETARCH`, use "
        "`pip install --require-hashes --no-deps -r requirements-base.${TARGETARCH}.lock` [install-one-platform]\n"
        "Dockerfile:5: error: installs the lock requirements-base.amd64.lock without --require-hashes, so a "
        "requirement without a hash would be installed unchecked - use "
        "`pip install --require-hashes --no-deps -r requirements-base.amd64.lock` [install-no-hashes]\n"
        "Dockerfile:6: error: installs requirements-base.in, the input of layer 'base', instead of its lock "
        "requirements-base.${TARGETARCH}.lock - use "
        "`pip install --require-hashes --no-deps -r requirements-base.${TARGETARCH}.lock` [install-input]\n"))


# -- 9-10: CUDA wheels against the images and the host ----------------------------------------------------------

CUDA_IMAGE = "nvcr.io/nvidia/cuda:11.8.0-runtime-ubuntu22.04"
IMAGE_DIGEST = "sha256:" + "c" * 64


@pytest.fixture(scope="session")
def cuda_house(tmp_path_factory: pytest.TempPathFactory) -> Wheelhouse:
    wheels = Wheelhouse(tmp_path_factory.mktemp("cuda-wheelhouse"))
    wheels.add("torch", "2.9.0+cu130", "nvidia-cublas-cu12")
    wheels.add("nvidia-cublas-cu12", "12.4.5.8")
    wheels.add("onnxruntime-gpu", "1.20.1")
    wheels.add("cupy-cuda11x", "13.3.0")
    return wheels


def test_verify_names_every_cuda_wheel_too_new_for_the_image_once(tmp_path: Path, cuda_house: Wheelhouse) -> None:
    from pinrepro import lockfile
    from pinrepro.inventory.contents import CudaInfo, PlatformContents
    from pinrepro.lockfile import ImageLock, PlatformLock

    root = layered_project(tmp_path / "p", f'index_url = "{cuda_house.index_url}"\n',
                   {"base": "torch\nonnxruntime-gpu\ncupy-cuda11x\n"})
    assert pinrepro(root, "lock").returncode == 0
    # the image pinned and its contents recorded as `lock` would have (verify needs no registry for them)
    (root / "Dockerfile").write_text(f"FROM {CUDA_IMAGE}@{IMAGE_DIGEST}\n")
    contents = PlatformContents(python="3.10.12", apt={}, cuda=CudaInfo(version="11.8.0", min_driver="520.61.05"))
    old = lockfile.read(root / "pinrepro.lock")
    assert old is not None
    image = ImageLock(digest=IMAGE_DIGEST, media_type="application/vnd.oci.image.index.v1+json",
                      sites=("Dockerfile:1",),
                      platforms={"linux/amd64": PlatformLock(digest=IMAGE_DIGEST, contents=contents.to_toml())})
    (root / "pinrepro.lock").write_text(lockfile.dumps(lockfile.Lock(images={CUDA_IMAGE: image},
                                                                      layers=old.layers)))

    done = pinrepro(root, "verify")

    warnings = [line for line in done.stdout.splitlines() if "[cuda-wheel-newer]" in line]
    assert warnings == [
        "requirements-base.lock:11: warning: nvidia-cublas-cu12==12.4.5.8 (CUDA 12.x), onnxruntime-gpu==1.20.1 "
        "(CUDA 12.x), torch==2.9.0+cu130 (CUDA 13.0) are built for a newer CUDA than CUDA 11.8.0 of "
        f"{CUDA_IMAGE} (driver floor 520.61.05; they need driver >= 580.65.06): hosts sized for the image may be "
        'unable to run them - use wheels for CUDA 11.8 (extra_index_urls = [".../whl/cu118"]; PyTorch publishes '
        "one index per CUDA version) or a newer image "
        "[cuda-wheel-newer]"], done.stdout


def _fake_smi(bin_dir: Path, driver: str, cuda: str) -> None:
    bin_dir.mkdir()
    script = bin_dir / "nvidia-smi"
    header = f"| NVIDIA-SMI {driver}    Driver Version: {driver}    CUDA Version: {cuda}     |"
    script.write_text(
        "#!/bin/sh\n"
        f"if [ \"$1\" = \"--query-gpu=driver_version,name\" ]; then echo '{driver}, NVIDIA H100'; "
        f"else echo '{header}'; fi\n")
    script.chmod(0o755)


def test_doctor_checks_the_requirement_locks_cuda_wheels_against_the_driver(tmp_path: Path,
                                                                           cuda_house: Wheelhouse) -> None:
    root = layered_project(tmp_path / "p", f'index_url = "{cuda_house.index_url}"\n', {"base": "torch\n"})
    assert pinrepro(root, "lock").returncode == 0
    _fake_smi(tmp_path / "bin", "550.54.14", "12.4")
    env = clean_env(PATH=f"{tmp_path / 'bin'}:/usr/bin:/bin")

    done = pinrepro(root, "doctor", env=env)

    assert done.returncode == 1, done.stdout + done.stderr
    assert ("no       requirements-base.lock  linux/amd64: torch==2.9.0+cu130 need CUDA 13.0, driver >= 580; "
            "driver 550.54.14 is older - install a newer driver, or lock wheels for the CUDA this driver supports"
            ) in done.stdout, done.stdout
    # CUDA 12 wheels on the same driver are fine
    (root / "requirements-base.in").write_text("nvidia-cublas-cu12\n")
    assert pinrepro(root, "lock").returncode == 0
    fine = pinrepro(root, "doctor", env=env)
    assert fine.returncode == 0, fine.stdout
    assert "ok       requirements-base.lock  linux/amd64: nvidia-cublas-cu12==12.4.5.8 need CUDA 12.x" in fine.stdout


def test_refresh_summary_names_each_platforms_lock_and_no_credential(tmp_path: Path, private_index: str) -> None:
    require_uv()
    port = private_index.rsplit(":", 1)[1]
    templated = f"http://${{INDEX_USER}}:${{INDEX_TOKEN}}@127.0.0.1:{port}"
    root = layered_project(tmp_path / "p", TWO_PLATFORMS + f'resolver = "uv"\nindex_url = "{templated}/simple"\n',
                   {"base": "torchy\n"})
    env = clean_env(INDEX_USER=USER, INDEX_TOKEN=PASSWORD)

    done = pinrepro(root, "refresh", "--dry-run", env=env)

    assert done.returncode == 0, done.stderr
    assert "requirements-base.amd64.lock" in done.stdout and "requirements-base.arm64.lock" in done.stdout
    assert "nvlib-cu12" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr


def test_index_timeout_must_be_seconds(tmp_path: Path) -> None:
    root = layered_project(tmp_path / "p", 'index_timeout = "fast"\n', {"base": "helper\n"})
    done = pinrepro(root, "lock")
    assert (done.returncode, done.stderr) == (2, (
        "error: pinrepro.toml: 'index_timeout' must be a number of seconds between 0 and 3600 - "
        "write e.g. index_timeout = 60\n"))


def test_adding_a_platform_keeps_the_pins_the_lock_had(tmp_path: Path) -> None:
    require_uv()
    wheels = Wheelhouse(tmp_path / "house")
    wheels.add("helper", "1.0")
    root = layered_project(tmp_path / "p", f'python = "3.11"\nresolver = "uv"\nindex_url = "{wheels.index_url}"\n',
                   {"base": "helper\n"})
    assert pinrepro(root, "lock").returncode == 0
    wheels.add("helper", "1.1")  # published after the lock: adding a platform is no upgrade
    (root / "pinrepro.toml").write_text(
        (root / "pinrepro.toml").read_text().replace('python = "3.11"', TWO_PLATFORMS.rstrip()))

    assert pinrepro(root, "lock").returncode == 0

    for arch in ("amd64", "arm64"):
        assert "helper==1.0 " in (root / f"requirements-base.{arch}.lock").read_text()
    assert pinrepro(root, "lock", "--upgrade").returncode == 0
    assert "helper==1.1 " in (root / "requirements-base.arm64.lock").read_text()


def test_secrets_restore_only_the_urls_they_expanded() -> None:
    from pinrepro.errors import ConfigError
    from pinrepro.pyindex import Secrets

    secrets = Secrets({"INDEX_USER": "admin", "INDEX_TOKEN": "tok3n-secret"})
    written = "https://${INDEX_USER}:${INDEX_TOKEN}@idx.test/simple"
    expanded = secrets.expand(written, where="pinrepro.toml")
    assert expanded == "https://admin:tok3n-secret@idx.test/simple"
    lock = f"--index-url {expanded}\ndjango-admin-tools==1.0\n"
    # a package whose name holds the user name is left alone; the URL goes back to its ${VAR} form
    assert secrets.restore(lock) == f"--index-url {written}\ndjango-admin-tools==1.0\n"
    secrets.check_lock(secrets.restore(lock), where="r.lock")
    # a credential the resolver wrote in another shape is refused, and the message does not show it
    with pytest.raises(ConfigError) as caught:
        secrets.check_lock("pkg @ https://idx.test/tok3n-secret/pkg.whl\n", where="r.lock")
    assert "tok3n-secret" not in caught.value.line() and "${INDEX_TOKEN}" in caught.value.line()
    # display text is scrubbed harder: any leftover value becomes its variable
    assert secrets.scrub("failed: https://idx.test/tok3n-secret/x") == "failed: https://idx.test/${INDEX_TOKEN}/x"
