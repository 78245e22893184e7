from __future__ import annotations

import logging

import pytest

from qa.errors import CorpusError
from qa.stages.ingest import read_documents


def test_reads_recursively_with_relative_ids(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.md").write_text("# Titel\n", encoding="utf-8")
    (tmp_path / "y.txt").write_text("text\n", encoding="utf-8")
    (tmp_path / "skip.pdf").write_bytes(b"%PDF")
    (tmp_path / ".hidden.txt").write_text("no")
    assert [d.source for d in read_documents(tmp_path)] == ["a/x.md", "y.txt"]


def test_byte_order_marks_are_honoured(tmp_path):
    (tmp_path / "u16.txt").write_bytes("협력의향서\n".encode("utf-16"))
    (tmp_path / "sig.txt").write_bytes(b"\xef\xbb\xbfNIST\n")
    texts = {d.source: d.text for d in read_documents(tmp_path)}
    # UTF-8's mark stays character 0, as open(path, encoding="utf-8") reads it, so offsets match that text.
    assert texts == {"sig.txt": "\ufeffNIST\n", "u16.txt": "협력의향서\n"}


def test_other_encodings_are_refused_by_name(tmp_path):
    (tmp_path / "latin.txt").write_bytes("Mörsch".encode("latin-1"))
    with pytest.raises(CorpusError, match="latin.txt: not UTF-8"):
        list(read_documents(tmp_path))


def test_binary_files_are_skipped_with_a_warning(tmp_path, caplog):
    (tmp_path / "blob.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "ok.txt").write_text("fine\n")
    with caplog.at_level(logging.WARNING):
        assert [d.source for d in read_documents(tmp_path)] == ["ok.txt"]
    assert "blob.txt" in caplog.text


def test_hash_changes_with_content(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("one")
    first = next(read_documents(tmp_path)).sha256
    path.write_text("two")
    assert next(read_documents(tmp_path)).sha256 != first
