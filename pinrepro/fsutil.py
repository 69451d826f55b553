"""Writing files so that a failure never leaves one half-written.

Every command computes all new file contents first and hands them here in one go: each file is written to
a temporary file beside it, flushed, and only then renamed over the original (rename is atomic on POSIX).
If anything fails before the renames, no original was touched. A symbolic link is written through, never
replaced by a file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path


def write_atomically(files: Mapping[Path, bytes]) -> None:
    """Replace each path's content with the given bytes; all temp files are ready before any rename."""
    staged: list[tuple[Path, str]] = []
    try:
        for link, data in files.items():
            # A symbolic link stays a link: the new bytes replace the file it points at, not the link itself
            # (callers keep that file inside the project: pinrepro.lock.inside_project).
            path = link.resolve() if link.is_symlink() else link
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".pinrepro-tmp", dir=path.parent)
            staged.append((path, tmp))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if path.exists():
                os.chmod(tmp, path.stat().st_mode & 0o7777)
            else:
                os.chmod(tmp, 0o644)
        for path, tmp in staged:
            os.replace(tmp, path)
    finally:
        for _, tmp in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
