"""Finding the project's Dockerfiles from the configured globs, and the image sites they (and the deployment files)
name: what `lock` pins and `verify` checks."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pinrepro.config import Config
from pinrepro.dockerfile import Dockerfile, FromSite, parse
from pinrepro.errors import DockerfileError
from pinrepro.findings import Finding
from pinrepro.reference import ImageRef

if TYPE_CHECKING:
    from pinrepro.deploy.model import DeploySite
    from pinrepro.deploy.scan import DeployScan

# Directories that never hold the project's own Dockerfiles but can be huge or vendored.
_SKIPPED_DIRS = {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".mypy_cache"}


def find_dockerfiles(config: Config) -> list[Path]:
    """Every file matching the ``dockerfiles`` globs under the root, sorted, skipping VCS and venv folders."""
    found: set[Path] = set()
    for pattern in config.dockerfiles:
        for path in [*config.root.glob(pattern), *_dangling_links(config.root, pattern)]:
            relative = path.relative_to(config.root)
            if _SKIPPED_DIRS.intersection(relative.parts[:-1]):
                continue
            if path.is_file():
                found.add(path)
            elif path.is_symlink() and not path.exists():
                # Skipping it would lock (and verify) the project as if that Dockerfile did not exist.
                raise DockerfileError(f"is a symbolic link to {os.readlink(path)}, which does not exist (or loops)",
                                      where=relative.as_posix(),
                                      fix="point the link at the Dockerfile, or remove it")
    return sorted(found)


def _dangling_links(root: Path, pattern: str) -> list[Path]:
    """Links a pattern's literal last part names that lead nowhere: Path.glob leaves them out (it checks that a
    literal name exists), while a wildcard part lists them like any other entry."""
    parent, _, name = pattern.rpartition("/")
    if not name or re.search(r"[*?\[]", name):
        return []
    return [d / name for d in (root.glob(parent) if parent else [root])
            if (d / name).is_symlink() and not (d / name).exists()]


def relative(config: Config, path: Path) -> str:
    return path.relative_to(config.root).as_posix()


def load_dockerfiles(config: Config) -> list[Dockerfile]:
    """Parse every Dockerfile of the project; a file that cannot be read or parsed is an error naming it."""
    parsed = []
    for path in find_dockerfiles(config):
        name = relative(config, path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise DockerfileError(f"cannot read it: {exc.strerror}", where=name,
                                  fix="check that the file is readable, or narrow the `dockerfiles` globs") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DockerfileError("is not UTF-8 text", where=name, fix="save the Dockerfile as UTF-8") from None
        parsed.append(parse(text, name, config.platforms))
    return parsed


@dataclass(frozen=True)
class ImageSite:
    """One FROM (or ARG default) that names an image, parsed into a reference; or a deployment file's image."""

    dockerfile: Dockerfile | None  # None for a deployment file (compose, Kubernetes, ...)
    site: FromSite
    ref: ImageRef  # with the digest written in the Dockerfile, if any

    @property
    def key(self) -> str:
        """The lock's key: the reference without the digest (the tag is what moves)."""
        return self.ref.without_digest().tagged if self.ref.tag else self.ref.tagged

    @property
    def location(self) -> str:
        return f"{self.site.path}:{self.site.line}"


def wanted_platforms(config: Config, group: Sequence[ImageSite]) -> tuple[str, ...]:
    """The platforms a build pulls of one image: ``FROM --platform=linux/arm64`` pulls only that one, whatever
    the configuration lists; ``--platform=$BUILDPLATFORM`` (any ARG) and no flag pull each configured one."""
    wanted: dict[str, None] = {}
    for image_site in group:
        platform = image_site.site.platform
        if platform and "$" not in platform:
            wanted[platform.lower()] = None
        else:
            wanted.update(dict.fromkeys(config.platforms))
    return tuple(wanted)


def collect_sites(dockerfiles: list[Dockerfile]) -> tuple[list[ImageSite], list[Finding]]:
    """Image sites with parsed references, and findings for sites that cannot be pinned."""
    sites: list[ImageSite] = []
    findings: list[Finding] = []
    for dockerfile in dockerfiles:
        for site in dockerfile.sites:
            if site.kind == "unresolved":
                findings.append(Finding(site.path, site.line, "warning", "unresolved",
                                        f"cannot pin '{site.written}': {site.reason}; it is left alone"))
            if site.kind != "image" or site.image is None:
                continue
            # dockerfile.parse already rejected invalid references, naming the file and line.
            sites.append(ImageSite(dockerfile, site, ImageRef.parse(site.image)))
    return sites, findings


def collect_deploy_sites(scan: DeployScan) -> list[tuple[DeploySite, ImageSite]]:
    """The deployment files' references as image sites, so they share the lock, the resolver and verify."""
    return [
        (site, ImageSite(None, FromSite(site.path, site.line, site.written, site.image, "image"),
                         ImageRef.parse(site.image)))
        for site in scan.sites if site.image is not None
    ]
