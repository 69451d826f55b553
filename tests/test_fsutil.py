from __future__ import annotations

from pathlib import Path

import pytest

from pinrepro.fsutil import write_atomically


def test_writes_all_files_and_keeps_modes(tmp_path: Path) -> None:
    existing = tmp_path / "a"
    existing.write_text("old")
    existing.chmod(0o600)
    write_atomically({existing: b"new", tmp_path / "sub" / "b": b"b"})
    assert existing.read_bytes() == b"new"
    assert existing.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "sub" / "b").read_bytes() == b"b"
    assert not [p for p in tmp_path.rglob("*") if "pinrepro-tmp" in p.name]


def test_failure_before_rename_leaves_every_file_unchanged(tmp_path: Path) -> None:
    first = tmp_path / "first"
    first.write_text("untouched")
    blocked = tmp_path / "blocker"
    blocked.write_text("a file where a directory is needed")
    with pytest.raises(OSError):
        write_atomically({first: b"changed", blocked / "child": b"x"})
    assert first.read_text() == "untouched"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "first"]
