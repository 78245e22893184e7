"""Files that look as they did when indexed are not read again, and every real change is still seen."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from qa.stages import ingest
from qa.stages.ingest import SeenFiles, read_corpus
from qa.stages.ingest.seen import FILE, SETTLE_NS, stat_of


@pytest.fixture
def later(monkeypatch):
    """A clock well past every file's times, as on a build minutes after the files were written."""
    real = ingest.time.time_ns
    monkeypatch.setattr(ingest.time, "time_ns", lambda: real() + 10 * SETTLE_NS)


def _reads(monkeypatch) -> list[str]:
    read = []
    original = ingest._read_one

    def counting(source, *args, **kwargs):
        read.append(source)
        return original(source, *args, **kwargs)

    monkeypatch.setattr(ingest, "_read_one", counting)
    return read


def _corpus(folder: Path) -> dict[str, str]:
    folder.mkdir()
    (folder / "a.txt").write_text("Alpha was signed in Seoul.\n", encoding="utf-8")
    (folder / "b.md").write_text("# Beta\n\nBeta was signed in Tokyo.\n", encoding="utf-8")
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_a_settled_file_is_not_read_again_and_an_edit_of_the_same_size_is(tmp_path, monkeypatch, later):
    indexed = _corpus(tmp_path / "corpus")
    first = read_corpus(tmp_path / "corpus", seen=(seen := SeenFiles(tmp_path)), indexed=indexed)
    seen.save()
    assert sorted(d.source for d in first.documents) == ["a.txt", "b.md"] and not first.unchanged
    read = _reads(monkeypatch)
    again = read_corpus(tmp_path / "corpus", seen=SeenFiles(tmp_path), indexed=indexed)
    assert read == [] and again.hashes == indexed
    (tmp_path / "corpus" / "a.txt").write_text("Alpha was signed in Busan.\n", encoding="utf-8")  # same size
    edited = read_corpus(tmp_path / "corpus", seen=SeenFiles(tmp_path), indexed=indexed)
    assert read == ["a.txt"] and edited.hashes["a.txt"] != indexed["a.txt"] and edited.hashes["b.md"] == indexed["b.md"]


def test_a_file_written_just_before_it_was_looked_at_is_read_again(tmp_path, monkeypatch):
    indexed = _corpus(tmp_path / "corpus")
    seen = SeenFiles(tmp_path)
    read_corpus(tmp_path / "corpus", seen=seen, indexed=indexed)
    seen.save()
    read = _reads(monkeypatch)
    read_corpus(tmp_path / "corpus", seen=SeenFiles(tmp_path), indexed=indexed)
    assert sorted(read) == ["a.txt", "b.md"]


def test_a_recorded_hash_the_index_does_not_hold_is_not_trusted(tmp_path, monkeypatch, later):
    indexed = _corpus(tmp_path / "corpus")
    seen = SeenFiles(tmp_path)
    read_corpus(tmp_path / "corpus", seen=seen, indexed=indexed)
    seen.save()
    read = _reads(monkeypatch)
    read_corpus(tmp_path / "corpus", seen=SeenFiles(tmp_path), indexed={**indexed, "a.txt": "0" * 64})
    assert read == ["a.txt"]


@pytest.mark.parametrize("damage", [b"", b"{not json", b"[1, 2]", b'{"a.txt": [1, 2, "x"]}'])
def test_a_damaged_record_is_ignored(tmp_path, damage):
    (tmp_path / FILE).write_bytes(damage)
    seen = SeenFiles(tmp_path)
    stat = stat_of(tmp_path / FILE)
    assert seen.hash_of("a.txt", stat) is None
    seen.record("a.txt", stat, "f" * 64, looked_at_ns=max(stat[1], stat[2]) + 2 * SETTLE_NS)
    seen.save()
    assert SeenFiles(tmp_path).hash_of("a.txt", stat) == "f" * 64
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_removed_files_leave_the_record(tmp_path, later):
    indexed = _corpus(tmp_path / "corpus")
    seen = SeenFiles(tmp_path)
    read_corpus(tmp_path / "corpus", seen=seen, indexed=indexed)
    seen.save()
    os.remove(tmp_path / "corpus" / "b.md")
    seen = SeenFiles(tmp_path)
    read_corpus(tmp_path / "corpus", seen=seen, indexed=indexed)
    seen.save()
    assert "b.md" not in (tmp_path / FILE).read_text() and "a.txt" in (tmp_path / FILE).read_text()
