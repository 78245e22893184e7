"""Where a citation's quote falls in the lines shown: offsets across lines, CRs and wide characters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import HEADLINE
from qa.bot import Bot
from qa.errors import SourceError
from qa.excerpt import quote_marks
from qa.stages.chunk import line_of, line_starts

# Letters, CJK, an emoji (two UTF-16 units, one code point), spaces; lines end in LF or CRLF.
LINE = st.text(alphabet=st.sampled_from("ab가나中文é😀 "), max_size=8)
TEXT = st.tuples(st.lists(LINE, min_size=1, max_size=10), st.sampled_from(["\n", "\r\n"])).map(lambda t: t[1].join(t[0])).filter(bool)


@st.composite
def text_and_span(draw: st.DrawFn) -> tuple[str, int, int]:
    text = draw(TEXT)
    start = draw(st.integers(0, len(text) - 1))
    end = draw(st.integers(start + 1, len(text)))
    return text, start, end


@given(text_and_span())
def test_the_marks_spell_the_span_line_by_line(case: tuple[str, int, int]) -> None:
    text, start, end = case
    starts = line_starts(text)
    first, last = line_of(starts, start), line_of(starts, end - 1)
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    marks = quote_marks(text, start, end, first, last)
    assert all(first <= line <= last and 0 <= low < high <= len(lines[line - 1]) for line, low, high in marks)
    assert [line for line, _, _ in marks] == sorted({line for line, _, _ in marks})
    pieces = {line: lines[line - 1][low:high] for line, low, high in marks}
    expected = [part.removesuffix("\r") for part in text[start:end].split("\n")]
    # Line by line, the span less its line breaks is what is marked (a line it only touches at its break has none).
    assert [pieces.get(line, "") for line in range(first, last + 1)] == expected[: last - first + 1]


@given(text_and_span())
def test_lines_outside_the_range_asked_are_never_marked(case: tuple[str, int, int]) -> None:
    text, start, end = case
    line = line_of(line_starts(text), start)
    assert all(number == line for number, _, _ in quote_marks(text, start, end, line, line))


def test_bot_source_marks_the_citations_quote(bot: Bot) -> None:
    citation = bot.ask(HEADLINE).citations[0]
    shown = bot.source(citation.source, citation.line_start, citation.line_end, 2, char_start=citation.char_start, char_end=citation.char_end)
    [(line, low, high)] = shown.marked
    assert line == 22 and shown.lines[line - shown.first_line][low:high] == citation.quote
    assert bot.source(citation.source, 22).marked == []


def test_bot_source_refuses_a_span_outside_the_text(bot: Bot) -> None:
    with pytest.raises(SourceError, match="not a span of"):
        bot.source(bot.ask(HEADLINE).citations[0].source, 22, char_start=0, char_end=10**9)
