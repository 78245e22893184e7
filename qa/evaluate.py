"""Golden files and the retrieval and answer metrics computed on them.

A golden case names the file and lines where its answer stands; a passage
hits when it comes from that file and its lines overlap them. The metrics are
pure functions of ranks and answers, so they are tested on their own.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, model_validator

from qa.errors import QAError
from qa.models import Answer, Passage

RANKS_KEPT = 10


class GoldenCase(BaseModel):
    """One line of a golden file."""

    id: str
    question: str
    source: str | None = None
    lines: list[int] = Field(default_factory=list)
    answer_any: list[str] = Field(default_factory=list)
    unanswerable: bool = False
    lang: str | None = None
    history: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _answerable_needs_location(self) -> "GoldenCase":
        if not self.unanswerable and (not self.source or not self.lines):
            raise ValueError("an answerable case needs 'source' and 'lines'")
        return self


class CaseResult(BaseModel):
    id: str
    question: str
    answer: str
    abstained: bool
    passages: list[Passage]
    # Not part of `qa ask --json`: what the case was scored as.
    first_hit_rank: int | None = None
    answer_matched: bool | None = None
    unanswerable: bool = False
    question_lang: str | None = None
    document_lang: str | None = None


def load_golden(path: Path) -> list[GoldenCase]:
    if not path.is_file():
        raise QAError(f"golden file {path} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise QAError(f"golden file {path} is not UTF-8 (bad byte at offset {err.start}); convert it, e.g. iconv -f LATIN1 -t UTF-8") from None
    except OSError as err:
        raise QAError(f"golden file {path} cannot be read: {err.strerror or err}") from None
    cases = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            cases.append(GoldenCase.model_validate(json.loads(line)))
        except (ValueError, ValidationError) as err:
            reason = str(err).splitlines()[-1 if isinstance(err, ValidationError) else 0].strip()
            raise QAError(f"{path}:{number}: not a golden case ({reason})") from None
        except RecursionError:
            raise QAError(f"{path}:{number}: not a golden case (nested too deeply)") from None
    if not cases:
        raise QAError(f"golden file {path} has no cases")
    return cases


def passage_hits(passage: Passage, case: GoldenCase) -> bool:
    return passage.source == case.source and any(passage.line_start <= line <= passage.line_end for line in case.lines)


def first_hit_rank(passages: list[Passage], case: GoldenCase) -> int | None:
    for passage in passages:
        if passage_hits(passage, case):
            return passage.rank
    return None


def answer_matches(answer: Answer, case: GoldenCase) -> bool:
    text = answer.answer.casefold()
    return not answer.abstained and any(expected.casefold() in text for expected in case.answer_any)


def score_case(case: GoldenCase, answer: Answer, document_lang: str | None) -> CaseResult:
    return CaseResult(
        id=case.id,
        question=case.question,
        answer=answer.answer,
        abstained=answer.abstained,
        passages=answer.passages,
        first_hit_rank=None if case.unanswerable else first_hit_rank(answer.passages, case),
        answer_matched=None if case.unanswerable or not case.answer_any else answer_matches(answer, case),
        unanswerable=case.unanswerable,
        question_lang=case.lang,
        document_lang=document_lang,
    )


def retrieval_metrics(results: list[CaseResult]) -> dict[str, float | int]:
    """hit@1, hit@5, MRR@10 and answer checks over the answerable cases."""
    answerable = [r for r in results if not r.unanswerable]
    n = len(answerable)
    ranks = [r.first_hit_rank for r in answerable]
    matched = [r.answer_matched for r in answerable if r.answer_matched is not None]
    return {
        "n": n,
        "hit@1": _share(sum(1 for r in ranks if r is not None and r <= 1), n),
        "hit@5": _share(sum(1 for r in ranks if r is not None and r <= 5), n),
        "mrr@10": round(sum(1 / r for r in ranks if r is not None and r <= RANKS_KEPT) / n, 4) if n else 0.0,
        "answer_match": _share(sum(matched), len(matched)),
        "false_abstain": _share(sum(r.abstained for r in answerable), n),
    }


def summarise(results: list[CaseResult]) -> dict:
    """The whole-file figures, then the same per document and per question language."""
    unanswerable = [r for r in results if r.unanswerable]
    summary: dict = {
        "cases": len(results),
        **retrieval_metrics(results),
        "unanswerable": len(unanswerable),
        "abstain_on_unanswerable": _share(sum(r.abstained for r in unanswerable), len(unanswerable)),
    }
    for key, field in (("by_document_lang", "document_lang"), ("by_question_lang", "question_lang")):
        groups: dict[str, list[CaseResult]] = defaultdict(list)
        for result in results:
            if not result.unanswerable:
                groups[getattr(result, field) or "?"].append(result)
        summary[key] = {lang: retrieval_metrics(group) for lang, group in sorted(groups.items())}
    return summary


def misses(results: list[CaseResult]) -> list[CaseResult]:
    """Cases that failed any check: retrieval outside the top 5, a wrong answer or abstention."""
    return [
        r
        for r in results
        if (r.unanswerable and not r.abstained)
        or (not r.unanswerable and (r.first_hit_rank is None or r.first_hit_rank > 5 or r.answer_matched is False))
    ]


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0
