"""Helpers for the `pinrepro check` tests: a project on disk with a hand-written lock, and the CLI's JSON answer."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from pinrepro import lockfile
from pinrepro.cli import cli
from pinrepro.dockerfile import parse
from pinrepro.inventory.contents import CudaInfo, PlatformContents
from pinrepro.lockfile import ImageLock, Lock, PlatformLock
from pinrepro.reference import ImageRef

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64

# A production-shaped CUDA service that passes every rule: ARG-composed bases, a devel build stage, a runtime
# stage, a serving stage built on it (stage names reused as bases), cache mounts, a heredoc RUN.
GOOD = f"""\
# syntax=docker/dockerfile:1
ARG CUDA=12.4.1
ARG UBUNTU=22.04

FROM nvidia/cuda:${{CUDA}}-cudnn-devel-ubuntu${{UBUNTU}}@{DIGEST_A} AS builder
RUN --mount=type=cache,target=/root/.cache/pip \\
    pip wheel --no-deps --require-hashes -r requirements-base.lock -w /wheels

FROM nvidia/cuda:${{CUDA}}-runtime-ubuntu${{UBUNTU}}@{DIGEST_B} AS runtime
RUN <<EOF
set -eux
apt-get update
apt-get install -y --no-install-recommends python3 python3-pip curl
rm -rf /var/lib/apt/lists/*
useradd --create-home app
EOF

from runtime as serve
env PYTHONUNBUFFERED=1
COPY --from=builder /wheels /wheels
RUN pip install --no-cache-dir --no-deps /wheels/*.whl
COPY app/ /app/
USER app
EXPOSE 8000
HEALTHCHECK --interval=30s CMD curl -fsS http://localhost:8000/ready || exit 1
CMD ["python3", "-m", "uvicorn", "app.main:app", "--host", "0.0.0.0"]
"""


def cuda_contents(version: str | None, min_driver: str | None) -> dict[str, Any]:
    cuda = CudaInfo(version=version, min_driver=min_driver) if version else None
    return PlatformContents(cuda=cuda, python="3.10.12", apt={"libc6": "2.35"}).to_toml()


def write_lock(root: Path, dockerfile: str = "Dockerfile", *, cuda: str | None = "12.4.1",
               min_driver: str | None = "550.54.15", extra: dict[str, str] | None = None) -> None:
    """pinrepro.lock for every FROM image of ``dockerfile`` (pinned to the digest it has), as `lock` would write."""
    images: dict[str, ImageLock] = {}
    parsed = parse((root / dockerfile).read_text(), dockerfile)
    refs = [site.image for site in parsed.sites if site.kind == "image" and site.image]
    for image in [*refs, *(extra or {})]:
        ref = ImageRef.parse(image)
        digest = ref.digest or (extra or {}).get(image) or DIGEST_A
        key = ref.without_digest().tagged if ref.tag else ref.tagged
        contents = cuda_contents(cuda if "cuda" in image else None, min_driver)
        images[key] = ImageLock(digest=digest, media_type="application/vnd.oci.image.index.v1+json",
                                sites=(f"{dockerfile}:1",),
                                platforms={"linux/amd64": PlatformLock(digest=DIGEST_A, contents=contents)})
    (root / "pinrepro.lock").write_text(lockfile.dumps(Lock(images=images)))


# apt pinning (verify's apt-* findings) needs an archive to lock against; these projects are about the
# checklist, so they turn it off, as a project without apt access would.
_NO_APT = {"pinrepro.toml": "\n[apt]\nenabled = false\n", "pyproject.toml": "\n[tool.pinrepro.apt]\nenabled = false\n"}


def project(root: Path, files: dict[str, str], *, lock: bool = True, **lock_args: Any) -> Path:
    files = dict(files)
    config = "pyproject.toml" if "pyproject.toml" in files else "pinrepro.toml"
    files[config] = files.get(config, "") + _NO_APT[config]
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text) if name != "Dockerfile" else text)
    (root / "app").mkdir(exist_ok=True)
    (root / "app" / "main.py").write_text("app = None\n")
    if lock:
        write_lock(root, **lock_args)
    return root


@dataclass
class Checked:
    exit_code: int
    output: str
    stderr: str
    data: dict[str, Any]

    @property
    def findings(self) -> list[dict[str, Any]]:
        return list(self.data.get("findings", []))

    def rules(self) -> list[str]:
        return [f["rule"] for f in self.findings]

    def of(self, rule: str) -> list[dict[str, Any]]:
        return [f for f in self.findings if f["rule"] == rule]


def run_check(root: Path, *args: str, fmt: str = "json") -> Checked:
    result = CliRunner().invoke(cli, ["check", "-C", str(root), "--format", fmt, *args], catch_exceptions=False)
    data = json.loads(result.stdout) if fmt == "json" and result.stdout.strip().startswith("{") else {}
    return Checked(result.exit_code, result.stdout, result.stderr, data)
