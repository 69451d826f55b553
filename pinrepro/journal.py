"""Writing a set of project files so that a crash leaves the old set or the new set, never a mix.

``commit`` writes every new content to a ``*.pinrepro-tmp`` file beside its target and fsyncs it; checks
that no target changed since it was read (size, mtime and hash: an edit made while pinrepro waited on the
network must not be overwritten); writes a journal naming every (temp, target, hash); only then renames.
A ``kill -9`` before the journal exists leaves every original untouched (the next run deletes the temp
files); after it exists, the next run finds the journal and rolls the renames forward - every temp file it
names was complete before the journal was written. ``project_lock`` keeps two runs off one project: it is
an flock on the project directory itself, so a killed run leaves no stale lock file behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import hashlib
import json
import os
import signal
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from pinrepro.errors import PinreproError

JOURNAL_NAME = ".pinrepro-journal"
TEMP_SUFFIX = ".pinrepro-tmp"
# Folders that never hold the project's files but can be huge (the same as discovery skips).
_SKIPPED_DIRS = {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".mypy_cache"}


@dataclass(frozen=True)
class Snapshot:
    """What a file looked like when pinrepro read it; None content means it did not exist."""

    size: int
    mtime_ns: int
    sha256: str

    @classmethod
    def of(cls, path: Path) -> Snapshot | None:
        try:
            with path.open("rb") as handle:
                info = os.fstat(handle.fileno())
                data = handle.read()
        except FileNotFoundError:
            return None
        return cls(info.st_size, info.st_mtime_ns, hashlib.sha256(data).hexdigest())


class WriteError(PinreproError):
    """A project file could not be written (read-only, full disk, changed meanwhile, outside the project)."""


class ProjectBusy(WriteError):
    """Another pinrepro run holds the project lock."""


@contextlib.contextmanager
def project_lock(root: Path) -> Iterator[None]:
    """Hold the project for this run; a second run on the same project stops with one line."""
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise WriteError(f"cannot open the project directory: {exc.strerror}", where=str(root)) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ProjectBusy("another pinrepro run is working on this project", where=str(root),
                             fix="wait for it to finish, then run again") from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def recover(root: Path) -> str | None:
    """Finish what an interrupted run left: roll a journaled write forward, delete stray temp files.

    Returns a sentence for the user, or None when there was nothing to do. The caller holds project_lock.
    """
    try:
        return _recover(root)
    except OSError as exc:
        raise WriteError(f"cannot finish the write an interrupted run left: {exc.strerror or exc}",
                         where=str(root), fix=_fix_for(exc.errno)) from None


def _recover(root: Path) -> str | None:
    said: list[str] = []
    journal = root / JOURNAL_NAME
    if journal.exists():
        try:
            entries = _read_journal(journal)
        except (OSError, ValueError, KeyError, TypeError):
            # The journal is written to a temp file and renamed, so a torn journal cannot happen; a damaged
            # one is not ours to trust. Nothing was renamed before it existed: the originals stand.
            entries = []
        for target, temp, digest in entries:
            target_path, temp_path = root / target, root / temp
            # A missing temp file was renamed already; one with other bytes is not ours.
            if temp_path.exists() and _sha256(temp_path) == digest:
                os.replace(temp_path, target_path)
                _fsync_dir(target_path.parent)
        journal.unlink()
        _fsync_dir(root)
        said.append(f"finished an interrupted write: {len(entries)} file(s) are now the new version"
                    if entries else "removed a damaged journal of an interrupted write; no file had changed")
    leftovers = _temp_files(root)
    for leftover in leftovers:
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
    if leftovers:
        said.append(f"removed {len(leftovers)} temporary file(s) left by an interrupted run")
    return "; ".join(said) if said else None


def pending(root: Path) -> bool:
    """True when an interrupted write waits to be finished (a journal exists)."""
    return (root / JOURNAL_NAME).exists()


def confined(root: Path, path: Path, *, what: str) -> Path:
    """The real file to write for ``path``: inside the project, following a symlink only into the project."""
    real_root = root.resolve()
    real = path.resolve()
    if not real.is_relative_to(real_root):
        name = _display(root, path)
        reason = "is a symlink to " + str(real) if path.is_symlink() or real != path.absolute() else "is"
        raise WriteError(f"{what} {reason} outside the project {real_root}; pinrepro only writes inside it",
                         where=name, fix="point it at a path inside the project (no absolute paths, no '..')")
    return real


def commit(root: Path, files: Mapping[Path, bytes], expected: Mapping[Path, Snapshot | bytes | None]) -> None:
    """Write ``files`` (target -> content) as one set; ``expected`` is each target as it was read (its
    snapshot, or only its bytes; None: it did not exist)."""
    real_root = root.resolve()
    targets = {path: confined(root, path, what="the file") for path in files}
    staged: list[tuple[Path, Path, bytes]] = []  # (shown path, real target, content)
    temps: list[Path] = []
    journaled = False
    finished = False
    try:
        for path, data in files.items():
            target = targets[path]
            temps.append(_stage(root, path, target, data))
            staged.append((path, target, data))
        for path, _, _ in staged:
            _check_unchanged(root, path, expected.get(path, "unknown"))
        entries = [{"target": target.relative_to(real_root).as_posix(),
                    "temp": temp.relative_to(real_root).as_posix(),
                    "sha256": hashlib.sha256(data).hexdigest()}
                   for (_, target, data), temp in zip(staged, temps, strict=True)]
        with _sigint_deferred():
            _write_journal(real_root, entries)
            journaled = True
            for (_, target, _), temp in zip(staged, temps, strict=True):
                os.replace(temp, target)
            for directory in {target.parent for _, target, _ in staged}:
                _fsync_dir(directory)
            (real_root / JOURNAL_NAME).unlink()
            journaled = False
            _fsync_dir(real_root)
        finished = True
    except OSError as exc:
        name = _display(root, Path(exc.filename)) if exc.filename else "the project"
        if journaled:
            raise WriteError(f"cannot finish writing: {exc.strerror or exc}", where=name,
                             fix="run pinrepro again: it finishes the write from its journal") from None
        raise WriteError(f"cannot write: {exc.strerror or exc}", where=name,
                         fix=_fix_for(exc.errno)) from None
    finally:
        # Once the journal exists its temp files are the new contents: the next run renames them.
        for temp in [] if journaled else temps:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        if not finished and not journaled:
            # A Ctrl-C can land between mkstemp and the moment its name is kept (seen once in 12 SIGINTs of the
            # kill harness): the temp files of this set are found by name. The project lock keeps other runs out.
            for target in targets.values():
                for leftover in target.parent.glob(f".{glob.escape(target.name)}.*{TEMP_SUFFIX}"):
                    with contextlib.suppress(FileNotFoundError):
                        leftover.unlink()


def _stage(root: Path, shown: Path, target: Path, data: bytes) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        mode = target.stat().st_mode & 0o7777 if target.exists() else 0o644
        os.chmod(temp, mode)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        if isinstance(exc, OSError) and not exc.filename:
            raise OSError(exc.errno, exc.strerror, str(shown)) from None  # name the file the user knows
        raise
    return temp


def _check_unchanged(root: Path, path: Path, before: Snapshot | bytes | str | None) -> None:
    if before == "unknown":
        return
    now = Snapshot.of(path)
    if isinstance(before, bytes):  # only the content is known: compare that
        before = Snapshot(len(before), now.mtime_ns if now else 0, hashlib.sha256(before).hexdigest())
    if now == before:
        return
    name = _display(root, path)
    if before is None:
        what = "was created by something else while pinrepro was working"
    elif now is None:
        what = "was deleted while pinrepro was working"
    else:
        what = "changed while pinrepro was working (size, time or content differ from what was read)"
    raise WriteError(f"{what}; nothing was written", where=name,
                     fix="run pinrepro again so it works from the file as it is now")


def _write_journal(root: Path, entries: list[dict[str, str]]) -> None:
    data = json.dumps({"version": 1, "files": entries}, indent=1).encode()
    fd, name = tempfile.mkstemp(prefix=f"{JOURNAL_NAME}.", suffix=TEMP_SUFFIX, dir=root)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(name, root / JOURNAL_NAME)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
    _fsync_dir(root)


def _read_journal(journal: Path) -> list[tuple[str, str, str]]:
    document: Any = json.loads(journal.read_text(encoding="utf-8"))
    entries = []
    for item in document["files"]:
        target, temp, digest = str(item["target"]), str(item["temp"]), str(item["sha256"])
        # A journal names project files only: refuse one that tries to step out of the project.
        for name in (target, temp):
            if name.startswith("/") or ".." in Path(name).parts:
                raise ValueError(name)
        entries.append((target, temp, digest))
    return entries


def _temp_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in _SKIPPED_DIRS]
        found.extend(Path(directory) / n for n in names if n.endswith(TEMP_SUFFIX) and n.startswith("."))
    return found


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _display(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _fix_for(code: int | None) -> str:
    if code == errno.ENOSPC:
        return "free some disk space and run again; no file was changed"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "make the file and its folder writable and run again; no file was changed"
    return "fix the cause and run again; no file was changed"


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Let the renames finish once started: Ctrl-C arriving meanwhile is raised right after them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    previous = signal.signal(signal.SIGINT, remember)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise InterruptedAfterWrite


class InterruptedAfterWrite(KeyboardInterrupt):
    """Ctrl-C came during the final renames, which were let finish: the files hold the new set."""
