"""Where a citation's quote falls in the lines ``qa show`` and the chat page print.

A quote is a span of the document's text (``char_start``/``char_end``, the
index's own offsets); a reader sees lines. This maps the one onto the other,
so the page highlights exactly the quoted characters, even across lines.
"""

from __future__ import annotations

from qa.stages.chunk import line_starts


def quote_marks(text: str, char_start: int, char_end: int, first_line: int, last_line: int) -> list[tuple[int, int, int]]:
    """(line, start, end) of the span ``text[char_start:char_end]`` in each of lines ``first_line..last_line``.

    Offsets count code points within the line, whose line break (and a CR
    before it) is not part of it; a line the span does not touch has no mark.
    """
    starts = line_starts(text)
    marks = []
    for number in range(max(1, first_line), min(len(starts), last_line) + 1):
        begin = starts[number - 1]
        end = starts[number] - 1 if number < len(starts) else len(text)
        if text[begin:end].endswith("\r"):
            end -= 1
        low, high = max(char_start, begin), min(char_end, end)
        if low < high:
            marks.append((number, low - begin, high - begin))
    return marks
