"""A project on disk driven through the command line: run it (in process or as a subprocess), snapshot its
files, give it layers or images of its own on the shared registry, and read what it locked."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from pinrepro import lockfile
from pinrepro.cli import cli
from tests.support import images as im
from tests.support import pushing
from tests.support.registry import RegistryServer


def run(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "-C", str(root)], catch_exceptions=False)


def push(registry: RegistryServer, layout: Path, repo: str, tag: str, marker: str,
         arch: str = "amd64") -> str:
    """A single-platform image of its own content under ``repo:tag``; returns the digest the registry serves."""
    name = hashlib.sha1(f"{repo}:{tag}:{marker}:{arch}".encode()).hexdigest()[:12]
    im.build_image(layout, name, [{"etc/os-release": b"ID=ubuntu\n", "marker": marker.encode()}], arch=arch)
    return pushing.push_http(layout, name, registry.url, repo, tag)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the machine's pip/uv settings (pip.conf, PIP_FIND_LINKS, ...)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    return env | {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"} | extra


def pinrepro(root: Path, *args: str, env: dict[str, str] | None = None,
             timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pinrepro", *args, "-C", str(root)], capture_output=True,
                          text=True, env=env or clean_env(), timeout=timeout, check=False)


def layered_project(root: Path, toml: str, layers: dict[str, str], *,
                    constraints: dict[str, list[str]] | None = None, dockerfile: str = "FROM scratch\n") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = [toml]
    previous: list[str] = []
    for name, text in layers.items():
        (root / f"requirements-{name}.in").write_text(text)
        deps = (constraints or {}).get(name, previous[-1:])
        lines += ["[[layers]]", f'name = "{name}"', f'requirements = "requirements-{name}.in"',
                  "constraints = [" + ", ".join(f'"{d}"' for d in deps) + "]"]
        previous.append(name)
    (root / "pinrepro.toml").write_text("\n".join(lines) + "\n")
    (root / "Dockerfile").write_text(dockerfile)
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def unique(tmp_path: Path) -> str:
    """A repository prefix of this test's own on the shared registry."""
    return "t" + hashlib.sha1(str(tmp_path).encode()).hexdigest()[:10]


def locked(project: Path) -> dict[str, str]:
    lock = lockfile.read(project / "pinrepro.lock")
    assert lock is not None
    return {key: image.digest for key, image in lock.images.items()}
