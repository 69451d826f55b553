"""A Debian-like image on the shared registry whose apt sources are the signed loopback repository, and a project
whose Dockerfile installs from it: the setting of the apt pinning tests."""

from __future__ import annotations

from pathlib import Path

from tests.support import images as im
from tests.support import pushing
from tests.support.aptrepo import AptRepo
from tests.support.registry import RegistryServer
from tests.support.tools import require_tool

KEY = "/usr/share/keyrings/pinrepro-test.gpg"
STATUS = b"Package: base-files\nStatus: install ok installed\nVersion: 12.4+deb12u5\nArchitecture: amd64\n"


def make_project(tmp_path: Path, registry: RegistryServer, apt_repo: AptRepo, repo: str = "debian") -> Path:
    require_tool("apt-get")
    layout = tmp_path / "layout"
    layers: list[im.LayerSpec] = [
        {"etc/os-release": b"ID=debian\nVERSION_CODENAME=bookworm\n", "var/lib/dpkg/status": STATUS,
         "etc/apt/sources.list": b"deb http://mirror.example/debian bookworm main\n"},
        # The image's own repository replaces the archive (as an image built for a private mirror does), and
        # its key arrives through a link, as Debian's keyring package installs it.
        {"etc/apt/sources.list": apt_repo.sources_line(KEY).encode(), KEY.lstrip("/"): apt_repo.keyring.read_bytes(),
         "etc/apt/trusted.gpg.d/pinrepro-test.gpg": im.Symlink(KEY)},
    ]
    im.build_image(layout, "deb", layers)
    pushing.push(layout, "deb", registry.host, repo, "bookworm")
    root = tmp_path / "project"
    root.mkdir()
    (root / "pinrepro.toml").write_text(f'[apt.snapshot_url]\ndebian = "{apt_repo.snapshot_template}"\n')
    (root / "Dockerfile").write_text(
        f"FROM {registry.host}/{repo}:bookworm AS base\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends \\\n    pr-tool\n"
        "FROM base AS app\n"
        "RUN apt-get install -y pr-extra && rm -rf /var/lib/apt/lists/*\n"
    )
    return root
