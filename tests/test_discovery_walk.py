"""find_dockerfiles walks the tree once for the "**/<name>" globs and finds exactly what pathlib's glob finds
(issue #15: one walk instead of one per pattern, skipped folders never entered)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pinrepro import config as config_module
from pinrepro.discovery import _SKIPPED_DIRS, find_dockerfiles

FILES = ["Dockerfile", "a/Dockerfile.gpu", "a/b/x.Dockerfile", ".hidden/Dockerfile", ".venv/Dockerfile",
         "x/node_modules/y/Dockerfile", "dockerfile", "c/Dockerfile/inner", "d/DOCKERFILE", "e/Dockerfile.",
         "f/.Dockerfile", "docker/api.Dockerfile", "docker/deep/w.Dockerfile"]


def _by_glob(config: config_module.Config) -> list[Path]:
    """What find_dockerfiles returned before: pathlib's glob per pattern, then the same filters."""
    found = set()
    for pattern in config.dockerfiles:
        for path in config.root.glob(pattern):
            if path.is_file() and not _SKIPPED_DIRS.intersection(path.relative_to(config.root).parts[:-1]):
                found.add(path)
    return sorted(found)


@pytest.mark.parametrize("globs", [None, '["Dockerfile", "docker/*.Dockerfile"]', '["**/Dockerfile", "**/*.gpu"]'])
def test_the_walk_finds_what_glob_finds(tmp_path: Path, globs: str | None) -> None:
    for name in FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("FROM scratch\n")
    (tmp_path / "link-to-a").symlink_to(tmp_path / "a")  # pathlib's ** does not descend into links to folders
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "Dockerfile").symlink_to(tmp_path / "Dockerfile")  # a link to a file is a file
    if globs is not None:
        (tmp_path / "pinrepro.toml").write_text(f"dockerfiles = {globs}\n")
    config = config_module.load(tmp_path)
    assert find_dockerfiles(config) == _by_glob(config)
    if globs is None:
        assert [p.relative_to(tmp_path).as_posix() for p in find_dockerfiles(config)] == [
            ".hidden/Dockerfile", "Dockerfile", "a/Dockerfile.gpu", "a/b/x.Dockerfile", "docker/api.Dockerfile",
            "docker/deep/w.Dockerfile", "e/Dockerfile.", "f/.Dockerfile", "g/Dockerfile"]
