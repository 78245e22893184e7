"""The contracts between stages.

Every stage takes and returns these models, and what ``--json`` prints is these
models serialised, so the CLI, the Python API and the Slack bot never disagree.
"""

from __future__ import annotations

import bisect
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


# What a converted format calls its parts: the word a citation's label uses for ``page``.
PAGE_WORDS = {".pdf": "page", ".pptx": "slide", ".xlsx": "sheet", ".xlsm": "sheet", ".epub": "chapter"}


def page_word(source: str) -> str:
    """``page`` for a PDF, ``slide`` for a deck, ``sheet`` for a workbook, ``chapter`` for an EPUB."""
    dot = source.rfind(".")
    return PAGE_WORDS.get(source[dot:].lower() if dot >= 0 else "", "page")


class Document(_Frozen):
    """One source file, decoded or converted to text.

    ``text`` is what lines and offsets count in: the file itself for plain
    text, the extracted text for a converted format.
    """

    source: str = Field(description="Path relative to the corpus root, with '/' separators.")
    text: str
    sha256: str = Field(description="Hash of the file's bytes; what incremental indexing compares.")
    pages: tuple[int, ...] = Field(
        (), description="Offsets in text where each page (slide, sheet, chapter) begins, the first 0; empty for plain text."
    )

    def page_at(self, offset: int) -> int | None:
        """1-based page holding the character at ``offset``; None for a document without pages."""
        return page_at(self.pages, offset)

    def page_spans(self) -> list[tuple[int, int]]:
        """(start, end) of each page, or the whole text as one span; chunks never cross these."""
        if not self.pages:
            return [(0, len(self.text))]
        ends = [*self.pages[1:], len(self.text)]
        return list(zip(self.pages, ends))


def page_at(pages: tuple[int, ...] | list[int], offset: int) -> int | None:
    if not pages:
        return None
    return bisect.bisect_right(pages, offset) or 1


class Chunk(_Frozen):
    """A contiguous slice of one document: ``document.text[char_start:char_end] == text``."""

    source: str
    char_start: int
    char_end: int
    line_start: int = Field(description="1-based line of char_start.")
    line_end: int = Field(description="1-based line of the chunk's last character.")
    text: str
    page: int | None = Field(None, description="1-based page, slide, sheet or chapter; None for plain text.")


class Passage(_Frozen):
    """A retrieved chunk with its rank (1-based) and the score that ranked it."""

    rank: int
    source: str
    line_start: int
    line_end: int
    char_start: int
    char_end: int
    text: str
    score: float
    page: int | None = None
    glosses: tuple[tuple[int, int, str], ...] = Field(
        (),
        exclude=True,
        repr=False,
        description="(start, end, English) renderings of the text's Chinese, Korean and German words; offsets in text.",
    )
    dense: float | None = Field(None, exclude=True, repr=False, description="The question's cosine with the passage (not with the lexical retriever).")
    first_score: float | None = Field(
        None, exclude=True, repr=False, description="The fused score before the best few were re-read sentence by sentence (abstention reads it)."
    )
    chunk_id: int | None = Field(
        None, exclude=True, repr=False, description="Its chunk's id in the index generation it was read from: where its sentence vectors are."
    )

    @property
    def label(self) -> str:
        return label(self.source, self.line_start, self.line_end, self.page)


AnswerType = Literal["number", "date", "person", "place", "other"]


class Question(_Frozen):
    """A question analysed once: what retrieval, abstention and answering all read.

    ``search`` is what retrieval embeds and matches (a follow-up carries the
    conversation's entities and last question); ``focus`` picks the answer's
    sentences (the question and the entities it refers to, so a follow-up is
    not answered by the sentence that answered the turn before).
    """

    text: str = Field(description="The question as asked.")
    language: str = Field(description="ko, ja, zh, de, ru, es or en, guessed from the script and function words.")
    search: str
    focus: str
    terms: tuple[str, ...] = Field(description="Lexical terms of ``search``, as the index analyses text.")
    alternatives: tuple[tuple[dict[str, float], ...], ...] = Field(
        (), description="Per bridged word of ``search``, its translations as weighted terms: a passage counts the best one."
    )
    weights: dict[str, float] = Field(
        default_factory=dict, description="Terms of ``focus`` (1.0) and their bridged forms (below 1), for choosing sentences."
    )
    entities: tuple[str, ...] = Field((), description="Names, codes, numbers (CJK content words) the question itself mentions.")
    names: tuple[str, ...] = Field((), description="Words that name something exactly: acronyms of three capitals or more, numbers.")
    unknown_names: tuple[str, ...] = Field((), description="Those names that no document holds, even through the bridges.")
    answer_type: AnswerType = Field("other", description="What kind of short answer the question asks for.")


class Citation(_Frozen):
    """A verbatim quote, located to the character and line in its source file."""

    source: str
    line_start: int
    line_end: int
    char_start: int
    char_end: int
    quote: str
    page: int | None = Field(None, description="1-based page (PDF), slide (PPTX), sheet (XLSX) or chapter (EPUB); None for plain text.")
    marks: list[tuple[int, int]] = Field(
        default_factory=list, description="(start, end) offsets in quote of the key phrases that match the question."
    )
    reading: str | None = Field(
        None,
        description="An English reading of a quote in another language than the question's, word by word from dictionaries: "
        "a gist shown beside the exact quote, never instead of it; null when the quote is in the question's language.",
    )
    short: tuple[int, int] | None = Field(
        None, description="(start, end) offsets in quote of the short answer (a number, date or name) the reply opens with."
    )

    @property
    def label(self) -> str:
        """``file:line`` or ``file:first-last``, the way people write a citation; ``(page 3)`` after it for a PDF."""
        return label(self.source, self.line_start, self.line_end, self.page)


def label(source: str, line_start: int, line_end: int, page: int | None = None) -> str:
    """``file:12``, ``file:12-14``, ``handbook.pdf:57 (page 3)``: what ``qa show`` reads back."""
    lines = str(line_start) if line_start == line_end else f"{line_start}-{line_end}"
    where = f" ({page_word(source)} {page})" if page is not None else ""
    return f"{source}:{lines}{where}"


class SourceExcerpt(_Frozen):
    """Cited lines in their context, read from the stored extraction (``qa show``, ``GET /source``)."""

    source: str
    page: int | None = Field(None, description="Page (slide, sheet, chapter) of the first cited line; None for plain text.")
    line_start: int = Field(description="First cited line, 1-based.")
    line_end: int = Field(description="Last cited line.")
    first_line: int = Field(description="Number of lines[0]: the excerpt starts this many lines into the text.")
    lines: list[str] = Field(description="The cited lines with their context, without line breaks.")
    total_lines: int
    marked: list[tuple[int, int, int]] = Field(
        default_factory=list,
        description="(line, start, end) of a citation's quote in each cited line it covers, offsets in code points "
        "within that line; when asked with the citation's char_start and char_end.",
    )


class Answer(_Frozen):
    """What ``qa ask --json`` prints: the reply, its citations and the passages behind it."""

    question: str
    answer: str
    abstained: bool = Field(description="True when the documents do not answer: ``answer`` says so and ``passages`` are the closest.")
    short_answer: str | None = Field(
        None, description="The number, date or name the question asks for, quoted from the first citation (its ``short`` span)."
    )
    confidence: float | None = Field(None, description="Calibrated probability (0-1) that the passages answer the question.")
    reason: str | None = Field(None, description="Why the bot abstained, in words; null when it answered.")
    citations: list[Citation]
    passages: list[Passage]
    mode: Literal["extractive", "llm"] = Field("extractive", description="Who wrote the reply: the extractive answerer or the LLM.")
    searched: str | None = Field(None, description="What retrieval was given, when it differs from the question (follow-ups).")
    warnings: list[str] = Field(default_factory=list, description="One-line notes, e.g. why the LLM answer was not used.")
    analysis: Question | None = Field(None, exclude=True, repr=False, description="The analysed question; later turns read its entities.")
