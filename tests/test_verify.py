"""verify as a gate: installs around the locks fail it; every finding has a place to show it at."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cliproject import run

BYPASSES = (
    "FROM scratch\n"
    "RUN pip install requests\n"                                            # 2
    "RUN pip install -r requirements-dev.txt\n"                             # 3
    "RUN uv pip install --system torch\n"                                   # 4
    "RUN uv sync\n"                                                         # 5
    "RUN uv add httpx\n"                                                    # 6
    "RUN conda install -y numpy\n"                                          # 7
    "RUN mamba install -y scipy && micromamba install -y pandas\n"          # 8
    "RUN pipx install ruff\n"                                               # 9
    "RUN uv sync --locked && uv sync --frozen && pip --version\n"           # 10: fine
    "RUN python3 -m pip install --no-cache-dir ./dist/app.whl\n"            # 11: a local wheel, fine
)
EXPECTED = [
    (2, "install-unlocked"), (3, "install-not-a-lock"), (4, "install-unlocked"), (5, "uv-unlocked"),
    (6, "uv-unlocked"), (7, "conda-install"), (8, "conda-install"), (8, "conda-install"), (9, "pipx-install"),
]


@pytest.mark.parametrize("layers", [False, True])
def test_installs_that_bypass_the_locks_are_errors(tmp_path: Path, layers: bool) -> None:
    if layers:
        (tmp_path / "pinrepro.toml").write_text(
            '[[layers]]\nname = "base"\nrequirements = "requirements-base.in"\n'
            '[[layers]]\nname = "app"\nrequirements = "requirements-app.in"\nconstraints = ["base"]\n')
    (tmp_path / "Dockerfile").write_text(BYPASSES)
    # The lock of a project whose only FROM is scratch (and without layers to compile): no network needed.
    (tmp_path / "pinrepro.lock").write_text("schema = 1\n")
    data = json.loads(run(tmp_path, "verify", "--format", "json").stdout)
    found = [(f["line"], f["code"]) for f in data["findings"] if f["path"] == "Dockerfile"]
    assert sorted(found) == EXPECTED
    assert all(f["level"] == "error" for f in data["findings"] if f["path"] == "Dockerfile")
    assert data["exit_code"] == 1
    text = run(tmp_path, "verify")
    assert text.exit_code == 1
    assert "Dockerfile:2: error: installs requests from the index, outside the locks" in text.stdout


def test_a_lock_installed_without_hashes_or_without_no_deps(tmp_path: Path) -> None:
    (tmp_path / "pinrepro.toml").write_text(
        '[[layers]]\nname = "base"\nrequirements = "requirements-base.in"\n'
        '[[layers]]\nname = "app"\nrequirements = "requirements-app.in"\nconstraints = ["base"]\n')
    (tmp_path / "Dockerfile").write_text(
        "FROM scratch\n"
        "RUN pip install --require-hashes --no-deps -r requirements-base.lock\n"
        "RUN pip install --no-deps -r requirements-app.lock\n"
        "RUN pip install --require-hashes -r /tmp/requirements-app.lock\n"
    )
    (tmp_path / "pinrepro.lock").write_text("schema = 1\n")
    data = json.loads(run(tmp_path, "verify", "--format", "json").stdout)
    found = [(f["line"], f["code"]) for f in data["findings"] if f["path"] == "Dockerfile"]
    assert found == [(3, "install-no-hashes"), (4, "install-with-deps")]


def test_one_cuda_warning_per_cause(tmp_path: Path) -> None:
    """Four cu12 packages against three CUDA 11 images (and two platforms each): one warning, not twelve."""
    from pinrepro import lockfile
    from pinrepro.inventory.contents import CudaInfo, PlatformContents
    from pinrepro.lockfile import ImageLock, Lock, PlatformLock

    digest = "sha256:" + "c" * 64
    contents = PlatformContents(python="3.10.12", cuda=CudaInfo(version="11.8.0", min_driver="520.61.05"),
                                apt={}).to_toml()
    tags = ["11.8.0-runtime-ubuntu22.04", "11.8.0-devel-ubuntu22.04", "11.8.0-base-ubuntu22.04"]
    images = {f"nvcr.io/nvidia/cuda:{tag}": ImageLock(digest=digest, media_type="m", platforms={
        "linux/amd64": PlatformLock(digest=digest, contents=contents),
        "linux/arm64": PlatformLock(digest=digest, contents=contents)}) for tag in tags}
    (tmp_path / "pinrepro.lock").write_text(lockfile.dumps(Lock(images=images)))
    (tmp_path / "pinrepro.toml").write_text(
        'platforms = ["linux/amd64", "linux/arm64"]\n[[layers]]\nname = "app"\nrequirements = "app.in"\n')
    (tmp_path / "app.in").write_text("torch\n")
    (tmp_path / "app.lock").write_text("".join(
        f"nvidia-{name}-cu12==1.0\n" for name in ("cublas", "cudnn", "nccl", "cufft")))
    (tmp_path / "Dockerfile").write_text("".join(
        f"FROM nvcr.io/nvidia/cuda:{tag}@{digest} AS s{n}\n" for n, tag in enumerate(tags)))
    result = run(tmp_path, "verify", "--format", "json")
    cuda = [f for f in json.loads(result.stdout)["findings"] if f["code"] == "cuda-wheel-newer"]
    assert [(f["path"], f["line"]) for f in cuda] == [("app.lock", 1)]
    assert cuda[0]["message"].startswith(
        "nvidia-cublas-cu12==1.0 (CUDA 12.x), nvidia-cudnn-cu12==1.0 (CUDA 12.x), nvidia-nccl-cu12==1.0 (CUDA 12.x), "
        "nvidia-cufft-cu12==1.0 (CUDA 12.x) are built for a newer CUDA than CUDA 11.8.0 of "
        "nvcr.io/nvidia/cuda:11.8.0-runtime-ubuntu22.04")


def test_every_finding_has_a_file_and_a_line_for_github(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pinrepro import lockfile
    from pinrepro.lockfile import ImageLock, LayerLock, Lock, PlatformLock

    digest = "sha256:" + "d" * 64
    entry = ImageLock(digest=digest, media_type="m", platforms={"linux/amd64": PlatformLock(digest=digest)})
    layer = LayerLock(requirements="old.in", lock="old.lock", input_sha256="a" * 64, output_sha256="b" * 64,
                      options_sha256="c" * 64, resolver="pip-compile", resolver_version="7")
    (tmp_path / "pinrepro.lock").write_text(lockfile.dumps(Lock(images={
        "docker.io/library/ubuntu:22.04": entry, "docker.io/library/gone:1": entry}, layers={"old": layer})))
    (tmp_path / "pinrepro.toml").write_text('platforms = ["linux/amd64", "linux/arm64"]\n')
    (tmp_path / "Dockerfile").write_text(f"FROM ubuntu:22.04@{digest}\nFROM alpine:3\nRUN pip install requests\n")
    data = json.loads(run(tmp_path, "verify", "--format", "json").stdout)
    lock_text = (tmp_path / "pinrepro.lock").read_text().splitlines()
    places = sorted((f["path"], f["line"], f["code"]) for f in data["findings"])
    assert places == [
        ("Dockerfile", 2, "not-locked"), ("Dockerfile", 3, "install-unlocked"),
        ("pinrepro.lock", lock_text.index('[images."docker.io/library/gone:1"]') + 1, "platforms-changed"),
        ("pinrepro.lock", lock_text.index('[images."docker.io/library/gone:1"]') + 1, "stale-lock-entry"),
        ("pinrepro.lock", lock_text.index('[images."docker.io/library/ubuntu:22.04"]') + 1, "platforms-changed"),
        ("pinrepro.lock", lock_text.index("[layers.old]") + 1, "stale-lock-entry"),
    ]
    assert data["counts"] == {"error": 6, "warning": 0, "note": 0, "suppressed": 0}
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    github = run(tmp_path, "verify", "--format", "github").stdout.splitlines()
    assert len(github) == 6
    assert all(",line=" in line for line in github), github


# -- run_verify and check_online on their own: a hand-written lock, no registry ------------------------------

UBUNTU = "docker.io/library/ubuntu:22.04"
PINNED = "sha256:" + "1" * 64
OTHER = "sha256:" + "2" * 64


def _locked(root: Path, *keys: str, digest: str = PINNED, platforms: tuple[str, ...] = ("linux/amd64",)) -> None:
    from pinrepro import lockfile
    from pinrepro.lockfile import ImageLock, Lock, PlatformLock

    entry = ImageLock(digest=digest, media_type="m", platforms={p: PlatformLock(digest=digest) for p in platforms})
    (root / "pinrepro.lock").write_text(lockfile.dumps(Lock(images=dict.fromkeys(keys, entry))))


def _table_line(root: Path, key: str) -> int:
    """The line of ``[images."<key>"]`` in the lock, counted by hand."""
    return (root / "pinrepro.lock").read_text().splitlines().index(f'[images."{key}"]') + 1


def _verify(root: Path, **options: Any) -> list[tuple[str | None, str, str]]:
    from pinrepro.config import load
    from pinrepro.verify import run_verify

    return [(f.location(), f.level, f.code) for f in run_verify(load(root), **options).findings]


def test_a_from_pinned_to_the_locked_digest_is_clean(tmp_path: Path) -> None:
    _locked(tmp_path, UBUNTU)
    (tmp_path / "Dockerfile").write_text(f"FROM ubuntu:22.04@{PINNED}\n")
    assert _verify(tmp_path) == []


@pytest.mark.parametrize(("dockerfile", "expected"), [
    ("FROM ubuntu:22.04\n", [("Dockerfile:1", "error", "unpinned")]),
    (f"FROM ubuntu:22.04@{OTHER}\n", [("Dockerfile:1", "error", "drift")]),
    (f"FROM ubuntu:22.04@{PINNED}\nFROM debian:12\n", [("Dockerfile:2", "error", "not-locked")]),
    ("FROM scratch\n", [("pinrepro.lock:{ubuntu}", "error", "stale-lock-entry")]),
])
def test_what_verify_finds_between_the_dockerfile_and_the_lock(tmp_path: Path, dockerfile: str,
                                                               expected: list[tuple[str, str, str]]) -> None:
    _locked(tmp_path, UBUNTU)
    (tmp_path / "Dockerfile").write_text(dockerfile)
    ubuntu = _table_line(tmp_path, UBUNTU)
    assert _verify(tmp_path) == [(where.format(ubuntu=ubuntu), level, code) for where, level, code in expected]


def test_a_missing_lock_is_one_finding_naming_the_command(tmp_path: Path) -> None:
    from pinrepro.config import load
    from pinrepro.verify import run_verify

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (finding,) = run_verify(load(tmp_path)).findings
    assert (finding.code, finding.message) == ("no-lock", "pinrepro.lock does not exist: run `pinrepro lock` and "
                                                           "commit it")


def test_an_absent_platform_warns_and_fails_only_under_strict(tmp_path: Path) -> None:
    from pinrepro import lockfile
    from pinrepro.config import load
    from pinrepro.lockfile import ImageLock, Lock, PlatformLock
    from pinrepro.verify import run_verify

    (tmp_path / "pinrepro.toml").write_text('platforms = ["linux/amd64", "linux/arm64"]\n')
    _locked(tmp_path, UBUNTU, platforms=("linux/amd64", "linux/arm64"))
    (tmp_path / "Dockerfile").write_text(f"FROM ubuntu:22.04@{PINNED}\n")
    assert _verify(tmp_path) == []
    entry = ImageLock(digest=PINNED, media_type="m", platforms={"linux/amd64": PlatformLock(digest=PINNED),
                                                                "linux/arm64": PlatformLock(absent=True)})
    (tmp_path / "pinrepro.lock").write_text(lockfile.dumps(Lock(images={UBUNTU: entry})))
    assert _verify(tmp_path) == [("Dockerfile:1", "warning", "platform-absent")]
    assert run_verify(load(tmp_path)).exit_code == 0
    assert run_verify(load(tmp_path), strict=True).exit_code == 1


class _Registry:
    """Answers HEAD requests from a table: a digest, or the error the registry gave."""

    def __init__(self, answers: dict[str, object]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __enter__(self) -> _Registry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass  # verify closes the client it made when its online checks are done

    def head_many(self, refs: list[Any]) -> dict[Any, object]:
        from pinrepro.registry.client import Descriptor

        self.asked.extend(str(ref) for ref in refs)
        found = {ref: self.answers[str(ref)] for ref in refs}
        return {ref: Descriptor(a, "m", None) if isinstance(a, str) else a for ref, a in found.items()}


def test_online_checks_ask_for_the_pin_and_the_tag_once_each(tmp_path: Path) -> None:
    from pinrepro.errors import NotFoundError

    debian = "docker.io/library/debian:12"
    _locked(tmp_path, UBUNTU, debian)
    (tmp_path / "Dockerfile").write_text(f"FROM ubuntu:22.04@{PINNED}\nFROM debian:12@{PINNED}\n")
    registry = _Registry({f"{UBUNTU}@{PINNED}": PINNED, UBUNTU: OTHER,
                          f"{debian}@{PINNED}": NotFoundError("manifest unknown"),
                          debian: NotFoundError("debian:12 not found")})
    found = _verify(tmp_path, online=True, client_factory=lambda: registry)
    at_debian = f"pinrepro.lock:{_table_line(tmp_path, debian)}"
    at_ubuntu = f"pinrepro.lock:{_table_line(tmp_path, UBUNTU)}"
    assert found == [(at_debian, "error", "not-pullable"), (at_debian, "warning", "tag-gone"),
                     (at_ubuntu, "warning", "tag-moved")]
    assert sorted(registry.asked) == sorted([f"{UBUNTU}@{PINNED}", UBUNTU, f"{debian}@{PINNED}", debian])


def test_an_online_error_other_than_not_found_stops_verify(tmp_path: Path) -> None:
    from pinrepro.errors import RegistryError

    _locked(tmp_path, UBUNTU)
    (tmp_path / "Dockerfile").write_text(f"FROM ubuntu:22.04@{PINNED}\n")
    registry = _Registry({f"{UBUNTU}@{PINNED}": RegistryError("denied: requested access to the resource is denied"),
                          UBUNTU: PINNED})
    with pytest.raises(RegistryError, match="denied"):
        _verify(tmp_path, online=True, client_factory=lambda: registry)
