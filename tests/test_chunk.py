from __future__ import annotations

import unicodedata

from hypothesis import given, settings as hsettings, strategies as st

from qa.stages.chunk import (
    chunk_document,
    chunk_spans,
    content_segments,
    has_sentence_end,
    is_furniture_line,
    letter_weight,
    line_of,
    line_starts,
    split_sentences,
)
from qa.models import Document
from conftest import CORPUS as SEEDS


def count_chars(text: str) -> int:
    """A stand-in tokenizer: one token per non-space character."""
    return sum(not c.isspace() for c in text)


# Text built from the pieces that make chunking hard: scripts, stops, blank lines, bullets.
PIECES = st.sampled_from(
    [
        "Die NASA und MEXT schlossen ein Abkommen.",
        " ",
        "\n",
        "\n\n",
        "美日计划签订为期五年的双边防务技术研发合作协议。",
        "협력의향서(LOI)를 체결했다.",
        "  • 좋아요0",
        "131,550,000",
        "U.S. National Institute of Standards",
        "z.B. F-35",
        "?",
        "!",
        "。",
        "\r\n",
        "a",
    ]
)
TEXTS = st.one_of(st.lists(PIECES, max_size=40).map("".join), st.text(max_size=300))


def document(text: str) -> Document:
    return Document(source="doc.txt", text=text, sha256="0")


class TestOffsets:
    @given(text=TEXTS, max_tokens=st.integers(4, 60), overlap=st.integers(0, 20))
    @hsettings(max_examples=300, deadline=None)
    def test_run_slices_are_exactly_the_chunks(self, text, max_tokens, overlap):
        starts = line_starts(text)
        for chunk in chunk_document(document(text), max_tokens, overlap, count_chars):
            assert text[chunk.char_start : chunk.char_end] == chunk.text
            assert chunk.text.strip() == chunk.text != ""
            assert chunk.line_start == text.count("\n", 0, chunk.char_start) + 1
            assert chunk.line_end == text.count("\n", 0, chunk.char_end - 1) + 1
            assert line_of(starts, chunk.char_start) == chunk.line_start

    @given(pages=st.lists(TEXTS, min_size=1, max_size=4), max_tokens=st.integers(4, 60), overlap=st.integers(0, 20))
    @hsettings(max_examples=200, deadline=None)
    def test_run_chunks_never_cross_a_page(self, pages, max_tokens, overlap):
        from qa.stages.ingest.base import join_pages

        joined = join_pages(pages)
        paged = Document(source="doc.pdf", text=joined.text, sha256="0", pages=joined.pages)
        ends = [*joined.pages[1:], len(joined.text)]
        for chunk in chunk_document(paged, max_tokens, overlap, count_chars):
            assert joined.text[chunk.char_start : chunk.char_end] == chunk.text
            first, last = paged.page_at(chunk.char_start), paged.page_at(chunk.char_end - 1)
            assert chunk.page == first == last
            assert joined.pages[first - 1] <= chunk.char_start and chunk.char_end <= ends[first - 1]

    @given(text=TEXTS, max_tokens=st.integers(4, 60), overlap=st.integers(0, 20))
    @hsettings(max_examples=100, deadline=None)
    def test_run_plain_text_has_no_page(self, text, max_tokens, overlap):
        assert all(chunk.page is None for chunk in chunk_document(document(text), max_tokens, overlap, count_chars))

    @given(text=TEXTS, max_tokens=st.integers(4, 60), overlap=st.integers(0, 20))
    @hsettings(max_examples=300, deadline=None)
    def test_run_chunks_fit_and_advance(self, text, max_tokens, overlap):
        spans = chunk_spans(text, max_tokens, overlap, count_chars)
        for span in spans:
            assert count_chars(text[span.start : span.end]) <= max_tokens
        ends = [s.end for s in spans]
        assert ends == sorted(ends) and len(set(ends)) == len(ends)

    @given(text=TEXTS)
    @hsettings(max_examples=300, deadline=None)
    def test_run_sentences_cover_every_visible_character(self, text):
        spans = split_sentences(text)
        covered = set()
        for span in spans:
            assert text[span.start : span.end].strip() == text[span.start : span.end]
            covered.update(range(span.start, span.end))
        # Invisible format characters (a byte-order mark, a zero-width space) may be left at a sentence's edge.
        assert all(i in covered for i, c in enumerate(text) if not (c.isspace() or unicodedata.category(c) == "Cf"))
        assert [s.start for s in spans] == sorted(s.start for s in spans)


class TestArticleTextIsKept:
    @given(text=TEXTS, max_tokens=st.integers(20, 80))
    @hsettings(max_examples=300, deadline=None)
    def test_run_prose_lines_are_covered(self, text, max_tokens):
        spans = chunk_spans(text, max_tokens, 0, count_chars)
        covered = set()
        for span in spans:
            covered.update(range(span.start, span.end))
        position = 0
        for line in text.split("\n"):
            stripped = line.strip()
            prose = not is_furniture_line(line) and (
                letter_weight(stripped) >= 24 or (has_sentence_end(stripped) and letter_weight(stripped) >= 10)
            )
            if prose:
                visible = [position + i for i, c in enumerate(line) if not c.isspace()]
                assert all(i in covered for i in visible), line
            position += len(line) + 1

    def test_run_furniture_never_forms_a_chunk(self):
        text = (open(SEEDS / "002_7257b5aa37c3b2f3.txt", encoding="utf-8").read())
        chunks = chunk_document(document(text), 200, 40, count_chars)
        quoted = "\n".join(c.text for c in chunks)
        for furniture in ("가장작게", "좋아요0", "131,550,000", "-1.27%", "비트코인 캐시", "실시간 암호화폐 시세"):
            assert furniture not in quoted
        assert any("협력의향서(LOI)를 체결했다" in c.text and c.line_start <= 22 <= c.line_end for c in chunks)


class TestSentences:
    def test_run_multilingual_stops(self):
        text = "Erster Satz. Zweiter Satz! 第一句。第二句？ 첫 문장이다. 둘째 문장이다."
        pieces = [text[s.start : s.end] for s in split_sentences(text)]
        assert pieces == ["Erster Satz.", "Zweiter Satz!", "第一句。", "第二句？", "첫 문장이다.", "둘째 문장이다."]

    def test_run_abbreviations_do_not_end_sentences(self):
        text = "Das U.S. National Institute kam z.B. mit 102,6 Mio. EUR. Dann ging es weiter."
        pieces = [text[s.start : s.end] for s in split_sentences(text)]
        assert pieces[-1] == "Dann ging es weiter."
        assert pieces[0].startswith("Das U.S. National Institute kam z.B. mit")

    def test_run_wrapped_lines_join(self):
        text = "A sentence wrapped\nacross two lines. Next one\nHeading"
        pieces = [text[s.start : s.end] for s in split_sentences(text)]
        assert pieces == ["A sentence wrapped\nacross two lines.", "Next one", "Heading"]

    def test_run_oversized_sentence_is_cut_at_spaces(self):
        text = " ".join(["word"] * 50) + "."
        spans = chunk_spans(text, 40, 0, count_chars)
        assert len(spans) > 1
        assert all(count_chars(text[s.start : s.end]) <= 40 for s in spans)
        assert all(set(text[s.start : s.end].split()) <= {"word", "word."} for s in spans)


class TestFurniture:
    def test_run_lines(self):
        for line in ("  • 작게", "• 좋아요0", "-1.27%", "131,550,000", "新闻动态", "01.21 장종료"):
            assert is_furniture_line(line), line
        for line in ("美日技术合作动向浅析", "USA und Japan intensivieren Zusammenarbeit", "입력 2022-12-09 12:35"):
            assert not is_furniture_line(line), line

    def test_run_segments_break_at_furniture(self):
        text = "Erster Absatz mit Inhalt.\n• 작게\nZweiter Absatz mit Inhalt."
        segments = content_segments(text)
        assert [text[s.start : s.end].strip() for s in segments] == ["Erster Absatz mit Inhalt.", "Zweiter Absatz mit Inhalt."]


def _weight_char_by_char(text: str) -> float:
    """The definition: letters 1, ideographs and Hangul 2, digits 0.5."""
    weight = 0.0
    for char in text:
        if char.isalpha():
            weight += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
        elif char.isdigit():
            weight += 0.5
    return weight


class TestLetterWeight:
    @given(st.text())
    def test_run_matches_the_definition_on_generated_text(self, text):
        assert letter_weight(text) == _weight_char_by_char(text)

    def test_run_matches_the_definition_on_the_seeds(self):
        for path in SEEDS.iterdir():
            for line in path.read_text(encoding="utf-8").splitlines():
                assert letter_weight(line) == _weight_char_by_char(line), line

    def test_run_examples(self):
        assert (letter_weight("新闻"), letter_weight("ab"), letter_weight("12"), letter_weight("장 a.")) == (4, 2, 1, 3)
