"""Offsets are exact end to end: every chunk, passage, citation and mark slices the file to its own text.

``file_text`` is the file's characters as ``open(path, encoding=...)`` reads them without newline
translation: UTF-8 (a byte-order mark, if any, is character 0), or UTF-16/32 as their mark says.
The property runs over the real corpora (the seeds and, where the benchmark is present, every XQuAD
article) and over generated text with the things that once shifted offsets: byte-order marks, CRLF,
zero-width characters, blank lines, every script the collection holds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from qa.stages.answer import compose
from qa.stages.chunk import chunk_document
from qa.models import Document
from qa.stages.ingest import extract
from qa.stages.analyse import analyse
from qa.stages.retrieve import passage_of

from conftest import CORPUS, REPO

XQUAD = REPO.parent / "shared" / "bench" / "xquad"  # the benchmark shared beside the clone
REAL_FILES = sorted(CORPUS.glob("*.txt")) + sorted(XQUAD.glob("xquad-*-en/corpus/*.txt"))

PIECES = st.sampled_from(
    [
        "\ufeff",
        "\u200b",
        "Die NASA und MEXT schlossen ein Abkommen.",
        "The letter of intent was signed in Washington. ",
        "美日计划签订为期五年的双边防务技术研发合作协议。",
        "협력의향서(LOI)를 체결했다. ",
        "  • 좋아요0",
        "\n",
        "\n\n",
        "\r\n",
        " ",
        "z.B. F-35",
    ]
)
GENERATED = st.lists(PIECES, min_size=1, max_size=40).map("".join)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "utf-16"])


def file_text(raw: bytes) -> str:
    """The file as a reader sees it: the byte-order mark of UTF-16/32 says the encoding, UTF-8 keeps its mark."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    return raw.decode("utf-8")


def count_chars(text: str) -> int:
    return sum(not c.isspace() for c in text)


def check_file(path: Path, max_tokens: int, question_words: list[str]) -> None:
    """Chunk, retrieve (as passages) and answer one file; every offset must slice ``file_text`` exactly."""
    text = file_text(path.read_bytes())
    extraction = extract(path.read_bytes(), path.suffix)
    document = Document(source=path.name, text=extraction.text, sha256="", pages=tuple(extraction.pages))
    chunks = chunk_document(document, max_tokens, max_tokens // 5, count_chars)
    passages = [passage_of(chunk, rank, 1.0 / rank, ()) for rank, chunk in enumerate(chunks[:5], start=1)]
    for item in [*chunks, *passages]:
        assert text[item.char_start : item.char_end] == item.text
        assert item.line_start == text.count("\n", 0, item.char_start) + 1
        assert item.line_end == text.count("\n", 0, item.char_end - 1) + 1
    answer = compose(analyse(" ".join(question_words)), passages, 0.0)
    for citation in answer.citations:
        assert text[citation.char_start : citation.char_end] == citation.quote
        assert citation.line_start == text.count("\n", 0, citation.char_start) + 1
        for start, end in citation.marks:
            assert 0 <= start < end <= len(citation.quote)


def words_of(path: Path) -> list[str]:
    return file_text(path.read_bytes()).split()[:400] or ["x"]


@given(data=st.data(), max_tokens=st.integers(20, 200))
@hsettings(max_examples=60, deadline=None)
def test_real_corpora_offsets_are_exact(data, max_tokens):
    path = data.draw(st.sampled_from(REAL_FILES), label="file")
    question = data.draw(st.lists(st.sampled_from(words_of(path)), min_size=1, max_size=6), label="question")
    check_file(path, max_tokens, question)


@given(text=GENERATED, encoding=ENCODINGS, max_tokens=st.integers(6, 80), question=st.lists(st.sampled_from(
    ["NASA", "Abkommen", "signed", "letter", "intent", "协议", "협력의향서", "LOI", "F-35"]), min_size=1, max_size=4))
@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_generated_text_offsets_are_exact(text, encoding, max_tokens, question):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "doc.txt"
        path.write_bytes(text.encode(encoding))
        check_file(path, max_tokens, question)


def test_every_real_file_is_exact_at_the_index_chunk_size():
    """Not a sample: every chunk of every real file at the default size."""
    for path in REAL_FILES:
        check_file(path, 200, ["the"])
