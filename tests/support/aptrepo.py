"""A signed apt repository the tests build and serve on loopback, with a snapshot service that keeps old states.

Packages are real ``.deb`` files made with ``dpkg-deb --build``; the indexes are made with ``apt-ftparchive``
(``packages`` and ``release``) and signed with a throwaway gpg key (``InRelease`` and ``Release.gpg``), so apt
checks signatures exactly as it does against a real archive.

Layout under ``root``::

    current/{dists,pool}               served at  http://127.0.0.1:PORT/debian/
    snapshots/<YYYYMMDDTHHMMSSZ>/...   served at  http://127.0.0.1:PORT/archive/debian/<timestamp>/

Like snapshot.debian.org, a timestamp that is not a publish time serves the latest state at or before it.
"""

from __future__ import annotations

import datetime as dt
import http.server
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.tools import require_tool

SUITE = "pinrepro"
COMPONENT = "main"
ORIGIN = "Pinrepro-Test"
_TIMEOUT_S = 60


@dataclass(frozen=True)
class Deb:
    name: str
    version: str
    architecture: str = "all"
    depends: str = ""
    recommends: str = ""


def timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


class AptRepo:
    """Build, publish and serve; ``publish()`` returns the snapshot timestamp of the new state."""

    def __init__(self, root: Path, architectures: tuple[str, ...] = ("amd64",)) -> None:
        for tool in ("dpkg-deb", "apt-ftparchive", "gpg"):
            require_tool(tool)
        self.root = root
        self.architectures = architectures
        self.build_dir = root / "build"
        self.debs_dir = root / "debs"
        self.current = root / "current"
        self.snapshots = root / "snapshots"
        for directory in (self.build_dir, self.debs_dir, self.current, self.snapshots):
            directory.mkdir(parents=True, exist_ok=True)
        # gpg-agent's socket lives in GNUPGHOME: pytest's tmp paths are too long for a unix socket name.
        self.gnupg = Path(tempfile.mkdtemp(prefix="pr-gpg-", dir="/tmp"))
        self._run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key",
                   "pinrepro test archive <archive@test.invalid>", "ed25519", "sign", "never"])
        self.keyring = root / "archive-keyring.gpg"
        self.keyring.write_bytes(self._run(["gpg", "--export"]))
        self._published: list[str] = []
        self.first_snapshot = ""
        self._server: http.server.ThreadingHTTPServer | None = None
        self.port = 0

    # -- packages -------------------------------------------------------------------------------------------
    def add(self, deb: Deb) -> Path:
        """Build ``deb`` into the repository's pool (it is in the index from the next publish on)."""
        tree = self.build_dir / f"{deb.name}_{deb.version}"
        shutil.rmtree(tree, ignore_errors=True)
        (tree / "DEBIAN").mkdir(parents=True)
        doc = tree / "usr" / "share" / "doc" / deb.name
        doc.mkdir(parents=True)
        (doc / "pinrepro-test").write_text(f"{deb.name} {deb.version}\n")
        control = [f"Package: {deb.name}", f"Version: {deb.version}", f"Architecture: {deb.architecture}",
                   "Maintainer: pinrepro tests <tests@test.invalid>", "Section: misc", "Priority: optional"]
        if deb.depends:
            control.append(f"Depends: {deb.depends}")
        if deb.recommends:
            control.append(f"Recommends: {deb.recommends}")
        control.append(f"Description: test package {deb.name}\n {deb.name} {deb.version} for pinrepro's tests")
        (tree / "DEBIAN" / "control").write_text("\n".join(control) + "\n")
        target = self.debs_dir / f"{deb.name}_{deb.version.replace(':', '%3a')}_{deb.architecture}.deb"
        self._run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(target)])
        shutil.rmtree(tree)
        return target

    def remove(self, name: str, version: str) -> None:
        """Drop a version from the index (from the next publish on); snapshots keep it."""
        for path in self.debs_dir.glob(f"{name}_{version.replace(':', '%3a')}_*.deb"):
            path.unlink()

    # -- publishing -----------------------------------------------------------------------------------------
    def publish(self, when: dt.datetime | None = None) -> str:
        """Write signed indexes for the pool's packages into ``current`` and keep a copy as a snapshot."""
        moment = when or dt.datetime.now(dt.UTC).replace(microsecond=0)
        stamp = timestamp(moment)
        while self._published and stamp <= self._published[-1]:
            moment += dt.timedelta(seconds=1)
            stamp = timestamp(moment)
        staging = self.root / f"staging-{stamp}"
        pool = staging / "pool" / COMPONENT
        pool.mkdir(parents=True)
        for deb in sorted(self.debs_dir.glob("*.deb")):
            os.link(deb, pool / deb.name)
        dist = staging / "dists" / SUITE
        for arch in self.architectures:
            binary = dist / COMPONENT / f"binary-{arch}"
            binary.mkdir(parents=True)
            packages = self._run(["apt-ftparchive", "--arch", arch, "packages", f"pool/{COMPONENT}"], cwd=staging)
            (binary / "Packages").write_bytes(packages)
            self._run(["gzip", "-9nk", str(binary / "Packages")])
        date = moment.strftime("%a, %d %b %Y %H:%M:%S UTC")
        release = self._run([
            "apt-ftparchive", "-o", f"APT::FTPArchive::Release::Origin={ORIGIN}",
            "-o", f"APT::FTPArchive::Release::Label={ORIGIN}", "-o", f"APT::FTPArchive::Release::Suite={SUITE}",
            "-o", f"APT::FTPArchive::Release::Codename={SUITE}",
            "-o", f"APT::FTPArchive::Release::Architectures={' '.join(self.architectures)}",
            "-o", f"APT::FTPArchive::Release::Components={COMPONENT}",
            "-o", f"APT::FTPArchive::Release::Date={date}", "release", ".",
        ], cwd=dist)
        (dist / "Release").write_bytes(release)
        self._run(["gpg", "--batch", "--yes", "--clearsign", "-o", str(dist / "InRelease"), str(dist / "Release")])
        self._run(["gpg", "--batch", "--yes", "-abs", "-o", str(dist / "Release.gpg"), str(dist / "Release")])
        staging.rename(self.snapshots / stamp)
        # "current" is a copy with hard links: a publish replaces it in one rename.
        fresh = self.root / f"current-{stamp}"
        shutil.copytree(self.snapshots / stamp, fresh, copy_function=os.link)
        old = self.root / "current-old"
        self.current.rename(old)
        fresh.rename(self.current)
        shutil.rmtree(old)
        self._published.append(stamp)
        return stamp

    # -- serving --------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/debian"

    @property
    def snapshot_template(self) -> str:
        """The ``snapshot_url`` to configure: snapshot.debian.org's shape on this server."""
        return f"http://127.0.0.1:{self.port}/archive/{{archive}}/{{timestamp}}/"

    def sources_line(self, keyring_path: str) -> str:
        return f"deb [signed-by={keyring_path}] {self.url} {SUITE} {COMPONENT}\n"

    def start(self) -> None:
        repo = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def send_head(self) -> Any:
                # File times have one-second resolution: a publish in the same second as apt's last fetch
                # would be answered 304. A real archive's index names change with their content; here, always 200.
                del self.headers["If-Modified-Since"]
                return super().send_head()

            def translate_path(self, path: str) -> str:
                return str(repo.local_path(path.split("?", 1)[0]))

            def log_message(self, format: str, *args: Any) -> None:
                with (repo.root / "access.log").open("a") as log:
                    log.write(format % args + "\n")

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop serving, and the gpg-agent that signing started."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={**os.environ, "GNUPGHOME": str(self.gnupg)},
                       capture_output=True, timeout=_TIMEOUT_S, check=False)
        shutil.rmtree(self.gnupg, ignore_errors=True)

    def local_path(self, url_path: str) -> Path:
        parts = [part for part in url_path.split("/") if part and part not in (".", "..")]
        if parts[:1] == ["debian"]:
            return self.current.joinpath(*parts[1:])
        if parts[:2] == ["archive", "debian"] and len(parts) >= 3:
            wanted = parts[2]
            states = [stamp for stamp in self._published if stamp <= wanted]
            if states:
                return (self.snapshots / states[-1]).joinpath(*parts[3:])
        return self.root / "not-found"

    def requests(self) -> list[str]:
        """The request lines served so far (``GET /debian/dists/... HTTP/1.1``)."""
        try:
            lines = (self.root / "access.log").read_text().splitlines()
        except FileNotFoundError:
            return []
        return [line.split('"')[1] for line in lines if line.count('"') >= 2]

    def _run(self, argv: list[str], cwd: Path | None = None) -> bytes:
        env = {**os.environ, "GNUPGHOME": str(self.gnupg), "SOURCE_DATE_EPOCH": "1700000000"}
        result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, timeout=_TIMEOUT_S, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.decode(errors='replace')[-2000:]}")
        return result.stdout
