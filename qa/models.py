"""The contracts between stages.

Every stage takes and returns these models, and what ``--json`` prints is these
models serialised, so the CLI, the Python API and the Slack bot never disagree.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Document(_Frozen):
    """One source file, decoded."""

    source: str = Field(description="Path relative to the corpus root, with '/' separators.")
    text: str
    sha256: str = Field(description="Hash of the file's bytes; what incremental indexing compares.")


class Chunk(_Frozen):
    """A contiguous slice of one document: ``document.text[char_start:char_end] == text``."""

    source: str
    char_start: int
    char_end: int
    line_start: int = Field(description="1-based line of char_start.")
    line_end: int = Field(description="1-based line of the chunk's last character.")
    text: str


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
    glosses: tuple[tuple[int, int, str], ...] = Field(
        (),
        exclude=True,
        repr=False,
        description="(start, end, English) renderings of the text's Chinese, Korean and German words; offsets in text.",
    )
    dense: float | None = Field(None, exclude=True, repr=False, description="The question's cosine with the passage (not with the lexical retriever).")


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
        """``file:line`` or ``file:first-last``, the way people write a citation."""
        if self.line_start == self.line_end:
            return f"{self.source}:{self.line_start}"
        return f"{self.source}:{self.line_start}-{self.line_end}"


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
