"""Split documents into sentence-aligned chunks sized in model tokens.

Pure functions only: text in, spans out. Every span is a pair of character
offsets into the document's text, so that ``text[start:end]`` is exactly what
gets embedded and quoted, and line numbers are derived from the offsets alone.

Page furniture (navigation rows, like counters, price tickers, lines of a few
characters) is recognised line by line and never becomes a chunk: such lines
are skipped and break chunks apart, so that article text is never glued to a
ticker. A sentence is cut only when it alone exceeds the chunk size.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from qa.models import Chunk, Document

TokenCounter = Callable[[str], int]

# Recorded in each index: a chunk boundary rule that changes asks for a rebuild.
CHUNKER = "sentences-v3"

# A line whose letters weigh less than this is furniture ("• 작게", "-1.27%").
FURNITURE_LINE_WEIGHT = 10
# A chunk with no sentence ending that weighs less than this is an isolated
# fragment between furniture ("실시간 암호화폐 시세", "Weitere Informationen").
ISOLATED_FRAGMENT_WEIGHT = 24

_CLOSERS = "\"'”’)]」』）》〉"
# Full stops that need a following space (Latin, Korean "다.") and CJK ones that do not.
_SPACED_END = re.compile(rf"[.!?…]+[{re.escape(_CLOSERS)}]*(?=\s|$)")
_CJK_END = re.compile(rf"[。！？]+[{re.escape(_CLOSERS)}]*")
_BULLET = re.compile(r"^\s*(?:[•·▪◦●○■□►▶▲△※*+\-–—]|\d{1,2}[.)])\s*")
_SOFT_BREAK = re.compile(r"[\s,，、;；:：]")


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def letter_weight(text: str) -> float:
    """How much text a string carries: ideographs and Hangul count double, digits half.

    One CJK character carries about as much as two Latin letters, so the same
    furniture thresholds work for "Zum Nachlesen" and "新闻动态"; digits weigh
    little so that tickers and timestamps ("01.21 장종료") read as furniture.
    Answering weighs every sentence of the passages it reads, so the string is
    counted in C and each distinct character weighed once.
    """
    return sum(_char_weight(char) * count for char, count in Counter(text).items())


@functools.cache
def _char_weight(char: str) -> float:
    if char.isalpha():
        return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return 0.5 if char.isdigit() else 0


def has_sentence_end(text: str) -> bool:
    return bool(_SPACED_END.search(text) or _CJK_END.search(text))


def is_furniture_line(line: str) -> bool:
    """A line of a few characters, a bare number or a counter."""
    content = _BULLET.sub("", line).strip()
    if not content:
        return False
    if not any(char.isalpha() for char in content):
        return True
    return letter_weight(content) < FURNITURE_LINE_WEIGHT


def line_starts(text: str) -> list[int]:
    """Offsets where each line begins; ``line_starts(t)[0] == 0``."""
    return [0] + [m.end() for m in re.finditer("\n", text)]


def line_of(starts: list[int], offset: int) -> int:
    """1-based line that holds the character at ``offset``."""
    return bisect.bisect_right(starts, offset)


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans inside ``text[start:end]``, trimmed of surrounding whitespace.

    A sentence ends at a full stop (``.``, ``다.``, ``。``, ``!``, ``?`` ...) or at
    a line break, unless the next line plainly continues it (starts lower-case).
    The spans cover every non-space character of the range, in order.
    """
    end = len(text) if end is None else end
    cuts = set()
    for pattern in (_SPACED_END, _CJK_END):
        for match in pattern.finditer(text, start, end):
            if pattern is _SPACED_END and _is_abbreviation(text, match.start(), match.end()):
                continue
            cuts.add(match.end())
    for match in re.finditer("\n", text[start:end]):
        newline = start + match.start()
        if text[newline + 1 : newline + 40].lstrip(" \t")[:1].islower():
            continue
        cuts.add(newline)
    spans: list[Span] = []
    position = start
    for cut in sorted(cuts) + [end]:
        span = _trim(text, position, cut)
        if span and spans and _is_aside(text, spans[-1], span):
            spans[-1] = Span(spans[-1].start, span.end)
        elif span:
            spans.append(span)
        position = max(position, cut)
    return spans


# A piece lighter than this with no full stop of its own (a heading, a dateline, a byline) is no sentence to quote.
MIN_SENTENCE_WEIGHT = 12


def quotable_sentences(text: str) -> list[Span]:
    """The sentences of a text that can stand as an answer: what the answerer quotes and retrieval re-reads."""
    return [
        span
        for span in split_sentences(text)
        if letter_weight(text[span.start : span.end]) >= MIN_SENTENCE_WEIGHT or has_sentence_end(text[span.start : span.end])
    ]


def quotable_texts(text: str) -> list[str]:
    """The quotable sentences themselves: what the model embeds when it reads a passage sentence by sentence."""
    return [text[span.start : span.end] for span in quotable_sentences(text)]


def _is_aside(text: str, previous: Span, span: Span) -> bool:
    """A bracketed credit after a full stop, "...하고 있다. (사진제공=KIAT)", belongs to that sentence."""
    piece = text[span.start : span.end]
    return piece[:1] in "(（[" and piece[-1:] in ")）]" and "\n" not in text[previous.end : span.start]


def _is_abbreviation(text: str, stop: int, after: int) -> bool:
    """``U.S.``, ``z.B.``, ``Dr. med``: a full stop that ends no sentence."""
    if text[stop] != ".":
        return False
    before = text[max(0, stop - 60) : stop]
    if before.rfind("(") > before.rfind(")"):  # "(102,6 Mio. EUR)": still inside brackets
        return True
    word = re.search(r"[\w.]*$", text[max(0, stop - 24) : stop]).group(0)
    if len(word) == 1 or "." in word:
        return True
    following = text[after : after + 8].lstrip()[:1]
    return bool(following) and (following.islower() or following.isdigit())


def _is_blank(char: str) -> bool:
    """Whitespace, or an invisible format character (a byte-order mark, a zero-width space) at a span's edge."""
    return char.isspace() or unicodedata.category(char) == "Cf"


def _trim(text: str, start: int, end: int) -> Span | None:
    while start < end and _is_blank(text[start]):
        start += 1
    while end > start and _is_blank(text[end - 1]):
        end -= 1
    return Span(start, end) if start < end else None


def content_segments(text: str) -> list[Span]:
    """Runs of lines between furniture lines; blank lines do not break a run."""
    segments = []
    run_start: int | None = None
    for line_start, line_end in _lines(text):
        if is_furniture_line(text[line_start:line_end]):
            if run_start is not None:
                segments.append(Span(run_start, line_start))
            run_start = None
        elif run_start is None and text[line_start:line_end].strip():
            run_start = line_start
    if run_start is not None:
        segments.append(Span(run_start, len(text)))
    return segments


def _lines(text: str) -> Iterator[tuple[int, int]]:
    position = 0
    for match in re.finditer("\n", text):
        yield position, match.start()
        position = match.end()
    yield position, len(text)


def cut_oversized(text: str, span: Span, max_tokens: int, count_tokens: TokenCounter) -> list[Span]:
    """Cut one sentence longer than ``max_tokens`` into pieces that fit.

    Each piece is the longest prefix that fits, pulled back to the last space
    or comma in its second half so that words survive whole.
    """
    pieces = []
    start = span.start
    while start < span.end:
        if count_tokens(text[start : span.end]) <= max_tokens:
            pieces.append(Span(start, span.end))
            break
        low, high = start + 1, span.end
        while low < high:  # longest prefix that fits
            middle = (low + high + 1) // 2
            if count_tokens(text[start:middle]) <= max_tokens:
                low = middle
            else:
                high = middle - 1
        cut = low
        soft = [m.end() for m in _SOFT_BREAK.finditer(text, start + (cut - start) // 2, cut)]
        if soft:
            cut = soft[-1]
        piece = _trim(text, start, cut)
        if piece:
            pieces.append(piece)
        start = cut
    return pieces


def pack(
    text: str,
    sentences: list[Span],
    max_tokens: int,
    overlap_tokens: int,
    count_tokens: TokenCounter,
) -> list[Span]:
    """Greedily pack consecutive sentences into spans of at most ``max_tokens``.

    Each new span starts with the previous one's trailing sentences worth at
    most ``overlap_tokens``, so a fact that straddles a border is whole in one.
    """
    units: list[tuple[Span, int]] = []
    for sentence in sentences:
        size = count_tokens(text[sentence.start : sentence.end])
        if size > max_tokens:
            units.extend((p, count_tokens(text[p.start : p.end])) for p in cut_oversized(text, sentence, max_tokens, count_tokens))
        else:
            units.append((sentence, size))

    chunks: list[Span] = []
    current: list[tuple[Span, int]] = []
    fresh = False  # does `current` hold a sentence not yet in any chunk?
    for unit in units:
        if current and sum(size for _, size in current) + unit[1] > max_tokens:
            if fresh:
                chunks.append(Span(current[0][0].start, current[-1][0].end))
            current = _overlap_tail(current, overlap_tokens)
            while current and sum(size for _, size in current) + unit[1] > max_tokens:
                current.pop(0)
        current.append(unit)
        fresh = True
    if current and fresh:
        chunks.append(Span(current[0][0].start, current[-1][0].end))
    return chunks


def _overlap_tail(units: list[tuple[Span, int]], overlap_tokens: int) -> list[tuple[Span, int]]:
    tail: list[tuple[Span, int]] = []
    total = 0
    for unit in reversed(units[1:]):  # never the whole chunk again
        if total + unit[1] > overlap_tokens:
            break
        tail.insert(0, unit)
        total += unit[1]
    return tail


def chunk_spans(text: str, max_tokens: int, overlap_tokens: int, count_tokens: TokenCounter) -> list[Span]:
    """All chunk spans of a document, furniture and isolated fragments left out."""
    spans = []
    for segment in content_segments(text):
        content = text[segment.start : segment.end]
        if not has_sentence_end(content) and letter_weight(content) < ISOLATED_FRAGMENT_WEIGHT:
            continue
        sentences = split_sentences(text, segment.start, segment.end)
        spans.extend(pack(text, sentences, max_tokens, overlap_tokens, count_tokens))
    return spans


def chunk_document(document: Document, max_tokens: int, overlap_tokens: int, count_tokens: TokenCounter) -> list[Chunk]:
    """The document's chunks, each within one page (slide, sheet) so that it cites one page."""
    text = document.text
    starts = line_starts(text)
    spans = []
    for page_start, page_end in document.page_spans():
        page = text[page_start:page_end]
        spans.extend(Span(page_start + s.start, page_start + s.end) for s in chunk_spans(page, max_tokens, overlap_tokens, count_tokens))
    return [
        Chunk(
            source=document.source,
            char_start=span.start,
            char_end=span.end,
            line_start=line_of(starts, span.start),
            line_end=line_of(starts, span.end - 1),
            text=text[span.start : span.end],
            page=document.page_at(span.start),
        )
        for span in spans
    ]


def capped_counter(count_tokens: TokenCounter, max_tokens: int, max_chars: int) -> TokenCounter:
    """A token counter under which no chunk exceeds ``max_chars``.

    A run of characters the tokenizer reads as one unknown token (an 8 MB line
    of base64) would otherwise make one chunk of any length. Text past the cap
    counts as too long without being tokenized, so the chunker cuts it at once.
    """

    def count(text: str) -> int:
        floor = math.ceil(len(text) * max_tokens / max_chars)
        return floor if floor > max_tokens else max(floor, count_tokens(text))

    return count


def chunk_for_model(
    document: Document, count_tokens: TokenCounter, model_max_tokens: int, chunk_tokens: int, overlap_tokens: int, max_chars: int
) -> list[Chunk]:
    """The document's chunks as a model of ``model_max_tokens`` reads them whole (its two special tokens aside).

    One function for a build in one process and for its Ray workers, so both cut the same chunks.
    """
    max_tokens = min(chunk_tokens, model_max_tokens - 2)
    return chunk_document(document, max_tokens, overlap_tokens, capped_counter(count_tokens, max_tokens, max_chars))
