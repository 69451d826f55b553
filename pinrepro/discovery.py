"""Finding the project's Dockerfiles from the configured globs."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pinrepro.config import Config
from pinrepro.dockerfile import Dockerfile, parse
from pinrepro.errors import DockerfileError

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
