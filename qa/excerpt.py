"""Cited lines in context: what a reader sees on opening a citation.

Pure functions over a document's text; ``Bot.source`` finds the text. Offsets
are the index's own (code points into the document), so a citation's
``char_start``/``char_end`` highlight exactly its quote.
"""

from __future__ import annotations

from collections.abc import Sequence

from qa.errors import NotFoundError
from qa.models import Chunk, SourceExcerpt, SourceLine
from qa.stages.chunk import line_of, line_starts

# Lines shown before and after the cited ones, unless asked otherwise.
AROUND = 12


def text_from_chunks(chunks: Sequence[Chunk]) -> str:
    """A document rebuilt from its chunks, each character and line where the file had it.

    Used when the file itself no longer matches the index. What no chunk holds
    (furniture lines, blank lines) comes back as blank space: a gap keeps its
    line breaks, so line numbers stay right, and the rest of it becomes spaces
    at the end of the line before, so offsets stay right too.
    """
    pieces: list[str] = []
    end = 0  # offset up to which the text is rebuilt
    line = 1  # line number at ``end``
    for chunk in sorted(chunks, key=lambda c: (c.char_start, c.char_end)):
        if chunk.char_end <= end:
            continue
        start = max(end, chunk.char_start)
        if chunk.char_start > end:
            gap = chunk.char_start - end
            breaks = min(max(chunk.line_start - line, 0), gap)
            pieces.append(" " * (gap - breaks) + "\n" * breaks)
            line += breaks
        piece = chunk.text[start - chunk.char_start :]
        pieces.append(piece)
        line += piece.count("\n")
        end = chunk.char_end
    return "".join(pieces)


def excerpt(
    source: str,
    text: str,
    line_start: int | None = None,
    line_end: int | None = None,
    char_start: int | None = None,
    char_end: int | None = None,
    around: int = AROUND,
    note: str | None = None,
) -> SourceExcerpt:
    """The cited lines and ``around`` lines either side, the cited part marked.

    A character span (a citation's ``char_start``/``char_end``) marks exactly
    the quote; lines alone mark those whole lines; neither shows the start of
    the document with nothing marked.
    """
    starts = line_starts(text)
    total = len(starts)
    if char_start is not None or char_end is not None:
        if char_start is None or char_end is None or not 0 <= char_start < char_end <= len(text):
            raise NotFoundError(
                f"characters {char_start}-{char_end} are not a span of {source}, which has {len(text)} characters"
            )
        quote: tuple[int, int] | None = (char_start, char_end)
        first, last = line_of(starts, char_start), line_of(starts, char_end - 1)
    elif line_start is not None:
        first, last = line_start, line_end if line_end is not None else line_start
        if not 1 <= first <= last <= total:
            raise NotFoundError(f"lines {first}-{last} are not in {source}, which has {total} lines")
        quote = (starts[first - 1], _line_end(text, starts, last))
    else:
        first = last = 1
        quote = None
    around = max(0, around)
    lines = []
    for number in range(max(1, first - around), min(total, last + around) + 1):
        begin, finish = starts[number - 1], _line_end(text, starts, number)
        line_text = text[begin:finish].rstrip()
        marked = None
        if quote is not None:
            low, high = max(quote[0], begin) - begin, min(quote[1], finish) - begin
            high = min(high, len(line_text))
            if low < high:
                marked = (low, high)
        lines.append(SourceLine(number=number, text=line_text, quote=marked))
    return SourceExcerpt(source=source, lines=lines, total_lines=total, cited=(first, last), note=note)


def _line_end(text: str, starts: list[int], number: int) -> int:
    """Offset just past line ``number``'s last character, its line break excluded."""
    return starts[number] - 1 if number < len(starts) else len(text)
