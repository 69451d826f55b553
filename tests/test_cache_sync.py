"""The scan cache is written without fsync (its entries are checked when read), project files with it (#15)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pinrepro.fsutil import write_atomically
from pinrepro.inventory.cache import Cache
from pinrepro.inventory.layers import LayerFacts


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


def test_project_files_are_flushed_to_disk(tmp_path: Path, fsyncs: list[int]) -> None:
    write_atomically({tmp_path / "pinrepro.lock": b"x"})
    assert len(fsyncs) == 1


def test_cache_entries_are_not(tmp_path: Path, fsyncs: list[int]) -> None:
    cache = Cache(tmp_path)
    digest = "sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"  # sha256 of b"x"
    cache.put_blob(digest, b"x")
    cache.put_layer(digest, LayerFacts())
    assert fsyncs == []
    assert cache.blob(digest) == b"x"
    assert cache.layer(digest) == LayerFacts()


def test_a_truncated_cache_entry_is_not_trusted(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    digest = "sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
    cache.put_blob(digest, b"x")
    cache.put_layer(digest, LayerFacts())
    for entry in tmp_path.rglob("*"):
        if entry.is_file():
            entry.write_bytes(entry.read_bytes()[:-1])  # what a crash before the data reached the disk can leave
    assert cache.blob(digest) is None
    assert cache.layer(digest) is None


def test_a_blob_is_written_once_per_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's config read and the scan's both put the same blob: one write (#15); and a blob found in the
    cache is not written back."""
    renames: list[str] = []
    real = os.replace

    def counting(source: str | Path, target: str | Path) -> None:
        renames.append(Path(target).name)
        real(source, target)

    monkeypatch.setattr(os, "replace", counting)
    digest = "sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
    cache = Cache(tmp_path)
    cache.put_blob(digest, b"x")
    cache.put_blob(digest, b"x")
    assert len(renames) == 1
    later = Cache(tmp_path)  # the next run
    assert later.blob(digest) == b"x"
    later.put_blob(digest, b"x")
    assert len(renames) == 1
