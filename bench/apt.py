"""Bench: `pinrepro lock` of a 3-stage Dockerfile that installs 20 apt packages, cold and warm.

Starts Debian's docker-registry and the tests' signed apt repository (with its snapshot service) on loopback,
pushes a small Debian-like image whose apt sources point at that repository, and times in one run:

  cold     first `lock`: empty cache (layers read, apt indexes downloaded), 3 stages resolved;
  nothing  `lock` again: nothing changed, so no apt runs at all;
  warm     `lock --upgrade`: every stage resolved again, with the apt index and layer caches warm.

Targets: "nothing" runs no apt (the repository sees no request) and takes under a second; warm is not slower
than cold. Exits 1 when a target is missed, 2 when a tool is missing.

    .venv/bin/python bench/apt.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from click.testing import CliRunner

from pinrepro.cli import cli
from tests.support import images as im
from tests.support import pushing
from tests.support.aptrepo import AptRepo, Deb
from tests.support.registry import RegistryServer
from tests.support.tools import find_tool

KEY = "/usr/share/keyrings/bench.gpg"


def isolate(scratch: Path) -> None:
    home = scratch / "home"
    (home / "run").mkdir(parents=True)
    os.environ.update({
        "HOME": str(home), "XDG_RUNTIME_DIR": str(home / "run"), "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"), "DOCKER_CONFIG": str(home / ".docker"),
        "REGISTRY_AUTH_FILE": str(home / "auth.json"),
    })


def lock(project: Path, *args: str) -> float:
    start = time.perf_counter()
    result = CliRunner().invoke(cli, ["lock", *args, "-C", str(project)], catch_exceptions=False)
    elapsed = time.perf_counter() - start
    if result.exit_code != 0:
        print(result.output, file=sys.stderr)
        raise SystemExit(1)
    return elapsed


def main() -> int:
    for tool in ("docker-registry", "skopeo", "apt-get", "apt-ftparchive", "dpkg-deb", "gpg"):
        if find_tool(tool) is None:
            print(f"bench/apt.py: '{tool}' is not installed", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="pinrepro-bench-apt-") as temp:
        scratch = Path(temp)
        isolate(scratch)
        repo = AptRepo(scratch / "repo")
        # 20 named packages in three stages, each with a dependency: closures of 40 packages in all.
        for n in range(20):
            repo.add(Deb(f"bench-lib{n}", "1.0"))
            repo.add(Deb(f"bench-pkg{n}", "1.0", depends=f"bench-lib{n}"))
        repo.publish()
        repo.start()
        with RegistryServer(scratch / "registry") as server:
            layout = scratch / "layout"
            status = b"Package: base-files\nStatus: install ok installed\nVersion: 12.4\nArchitecture: amd64\n"
            im.build_image(layout, "deb", [{
                "etc/os-release": b"ID=debian\n", "var/lib/dpkg/status": status,
                "etc/apt/sources.list": repo.sources_line(KEY).encode(), KEY.lstrip("/"): repo.keyring.read_bytes(),
            }])
            pushing.push(layout, "deb", server.host, "bench/debian", "bookworm")
            project = scratch / "project"
            project.mkdir()
            names = [f"bench-pkg{n}" for n in range(20)]
            (project / "Dockerfile").write_text(
                f"FROM {server.host}/bench/debian:bookworm AS one\n"
                f"RUN apt-get update && apt-get install -y {' '.join(names[:7])}\n"
                f"FROM one AS two\nRUN apt-get install -y --no-install-recommends {' '.join(names[7:14])}\n"
                f"FROM {server.host}/bench/debian:bookworm AS three\n"
                f"RUN apt-get update && apt-get install -y {' '.join(names[14:])}\n"
            )
            (project / "pinrepro.toml").write_text(f'[apt.snapshot_url]\ndebian = "{repo.snapshot_template}"\n')
            cold = lock(project)
            served = len(repo.requests())
            nothing = lock(project)
            no_apt = len(repo.requests()) == served
            warm = lock(project, "--upgrade")
        repo.stop()
    print(f"{'lock of 3 stages, 20 packages':<38} {'seconds':>8}")
    print(f"{'cold (empty caches)':<38} {cold:>8.2f}")
    print(f"{'nothing changed (no apt)':<38} {nothing:>8.2f}")
    print(f"{'warm --upgrade (caches warm)':<38} {warm:>8.2f}")
    missed = []
    if not no_apt or nothing >= 1.0:
        missed.append("a lock where nothing changed must run no apt and take under 1 s")
    if warm > cold * 1.2:
        missed.append("warm must not be slower than cold")
    for line in missed:
        print(f"MISSED: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
