"""Cited lines in context: offsets, line numbers and the marked quote."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import HEADLINE, HEADLINE_SOURCE
from qa.bot import Bot
from qa.errors import NotFoundError
from qa.excerpt import excerpt, text_from_chunks
from qa.models import Chunk
from qa.stages.chunk import line_of, line_starts

# Lines of letters, CJK, an emoji (two UTF-16 units, one code point) and inner spaces; no trailing blanks.
WORD = st.text(alphabet=st.sampled_from("ab가나中文é😀"), min_size=1, max_size=6)
LINE = st.lists(WORD, max_size=4).map(" ".join)
TEXT = st.lists(LINE, min_size=1, max_size=12).map("\n".join).filter(bool)


@st.composite
def text_and_span(draw: st.DrawFn) -> tuple[str, int, int]:
    text = draw(TEXT)
    start = draw(st.integers(0, len(text) - 1))
    end = draw(st.integers(start + 1, len(text)))
    return text, start, end


@given(text_and_span(), st.integers(0, 5))
def test_the_marked_parts_of_the_cited_lines_are_the_span(case: tuple[str, int, int], around: int) -> None:
    text, start, end = case
    shown = excerpt("doc.txt", text, char_start=start, char_end=end, around=around)
    first, last = shown.cited
    all_lines = text.split("\n")
    assert (first, last) == (line_of(line_starts(text), start), line_of(line_starts(text), end - 1))
    assert [line.number for line in shown.lines] == list(range(max(1, first - around), min(len(all_lines), last + around) + 1))
    assert all(line.text == all_lines[line.number - 1] for line in shown.lines)
    cited = [line for line in shown.lines if first <= line.number <= last]
    assert all(line.quote is None for line in shown.lines if line not in cited)
    parts = [line.text[slice(*line.quote)] if line.quote else "" for line in cited]
    assert "\n".join(parts) == text[start:end].removesuffix("\n")


@given(TEXT, st.data())
def test_lines_alone_mark_the_whole_lines(text: str, data: st.DataObject) -> None:
    total = text.count("\n") + 1
    first = data.draw(st.integers(1, total))
    last = data.draw(st.integers(first, total))
    shown = excerpt("doc.txt", text, first, last, around=0)
    assert [line.number for line in shown.lines] == list(range(first, last + 1))
    assert all(line.quote == ((0, len(line.text)) if line.text else None) for line in shown.lines)


@st.composite
def chunked(draw: st.DrawFn) -> tuple[str, list[Chunk]]:
    """A text and chunks over some of it, overlapping or not, as the chunker makes them."""
    text = draw(TEXT)
    starts = line_starts(text)
    chunks = []
    for _ in range(draw(st.integers(0, 5))):
        start = draw(st.integers(0, len(text) - 1))
        end = draw(st.integers(start + 1, len(text)))
        chunks.append(
            Chunk(
                source="doc.txt", char_start=start, char_end=end, text=text[start:end],
                line_start=line_of(starts, start), line_end=line_of(starts, end - 1),
            )
        )
    return text, chunks


@given(chunked())
def test_text_from_chunks_keeps_every_indexed_character_and_line_where_it_was(case: tuple[str, list[Chunk]]) -> None:
    text, chunks = case
    rebuilt = text_from_chunks(chunks)
    assert len(rebuilt) == max((c.char_end for c in chunks), default=0)
    rebuilt_starts, starts = line_starts(rebuilt), line_starts(text)
    for chunk in chunks:
        assert rebuilt[chunk.char_start : chunk.char_end] == chunk.text
        assert line_of(rebuilt_starts, chunk.char_start) == line_of(starts, chunk.char_start)


def test_a_span_outside_the_text_is_refused() -> None:
    with pytest.raises(NotFoundError, match="not a span of doc.txt, which has 3 characters"):
        excerpt("doc.txt", "abc", char_start=2, char_end=9)
    with pytest.raises(NotFoundError, match="lines 4-4 are not in doc.txt, which has 1 lines"):
        excerpt("doc.txt", "abc", 4)


def test_bot_source_reads_the_indexed_file(bot: Bot) -> None:
    citation = bot.ask(HEADLINE).citations[0]
    shown = bot.source(citation.source, char_start=citation.char_start, char_end=citation.char_end)
    assert shown.note is None and shown.cited == (22, 22)
    [line] = [line for line in shown.lines if line.quote]
    assert line.number == 22 and line.text[slice(*line.quote)] == citation.quote


def test_bot_source_shows_the_indexed_passages_of_a_changed_or_missing_file(make_bot, corpus_copy: Path) -> None:
    citation = make_bot().ask(HEADLINE).citations[0]
    changed = corpus_copy / HEADLINE_SOURCE
    changed.write_text("Rewritten since.\n", encoding="utf-8")
    for bot, why in ((make_bot(corpus_dir=corpus_copy), "has changed since it was indexed"), (make_bot(corpus_dir=corpus_copy / "gone"), "cannot be read")):
        shown = bot.source(citation.source, char_start=citation.char_start, char_end=citation.char_end)
        assert why in shown.note
        [line] = [line for line in shown.lines if line.quote]
        assert line.number == 22 and line.text[slice(*line.quote)] == citation.quote


@pytest.mark.parametrize("source_id", ["../corpus/" + HEADLINE_SOURCE, "/etc/passwd", "nope.txt", ""])
def test_bot_source_reads_only_indexed_ids(bot: Bot, source_id: str) -> None:
    with pytest.raises(NotFoundError, match="in the index"):
        bot.source(source_id, 1)
