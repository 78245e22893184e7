"""Turn ranked passages into a reply that quotes and cites its evidence.

Extractive, no LLM: the reply is made of sentences that stand in the
documents, in their own language, each followed by its citation marker. A
sentence is chosen for how many of the question's terms it holds, weighted by
how well its passage ranked; when even the best passage is weak evidence, the
bot abstains rather than quote something beside the point.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence, Set as AbstractSet
from dataclasses import dataclass, replace

from qa.stages.chunk import Span, quotable_sentences
from qa.crosslingual.gloss import GlossedWord, words_within
from qa.stages.lexical import analyze, analyze_query, cognate_keys, index_terms
from qa.models import Answer, Citation, Passage, Question
from qa.crosslingual.language import detect
from qa.crosslingual.reading import reading
from qa.stages.calibration import Calibration, default_calibration
from qa.stages.signals import Signals

ABSTAIN_TEXT = "The documents do not answer this. The closest passages are listed below."
# Only this many top passages are read for answer sentences.
PASSAGES_READ = 3
# A second sentence joins the answer if it scores at least this share of the best.
SECOND_SENTENCE_SHARE = 0.85
# Share of terms two sentences must have in common to be cited as the same evidence.
CORROBORATION = 0.6
MAX_CORROBORATING = 2


@dataclass(frozen=True)
class Candidate:
    passage: Passage
    char_start: int  # absolute offsets in the source file
    char_end: int
    line_start: int
    line_end: int
    text: str
    score: float
    glosses: list[GlossedWord]  # offsets in text


def sentences_of(passage: Passage) -> list[Candidate]:
    """The passage's sentences, located in the source file to the character and line."""
    text = passage.text
    found = []
    for span in _quotable(text):
        piece = text[span.start : span.end]
        found.append(
            Candidate(
                passage=passage,
                char_start=passage.char_start + span.start,
                char_end=passage.char_start + span.end,
                line_start=passage.line_start + text.count("\n", 0, span.start),
                line_end=passage.line_start + text.count("\n", 0, span.end - 1),
                text=piece,
                score=0.0,
                glosses=words_within(list(passage.glosses), span.start, span.end),
            )
        )
    return found


# Splitting a passage into sentences and weighing them was a fifth of a warm question's time at
# 100,000 chunks (benchmarks/scale.py, profiled); like the terms below, it depends on the text alone.
@functools.lru_cache(maxsize=4096)
def _quotable(text: str) -> tuple[Span, ...]:
    return tuple(quotable_sentences(text))


def present_terms(text: str, glosses: Sequence[GlossedWord] = ()) -> frozenset[str]:
    """The terms a text is matched on: as its passage was indexed (cognate keys included), and its English glosses."""
    return _present_terms(text, tuple(glosses))


# Analysing a passage's sentences and glosses was a third of a warm question's time
# (benchmarks/scale.py, profiled): the same passages come back for many questions,
# and their terms depend on the text alone.
@functools.lru_cache(maxsize=8192)
def _present_terms(text: str, glosses: tuple[GlossedWord, ...]) -> frozenset[str]:
    return frozenset(index_terms(text)).union(*(analyze(english) for *_, english in glosses))


def term_coverage(query_terms: dict[str, float], text: str, glosses: Sequence[GlossedWord] = (), present: AbstractSet[str] | None = None) -> float:
    """Weighted share of the question's own terms that occur in the text or its English glosses.

    Bridged terms count towards the share but not towards the whole, like
    the retriever's scaled BM25.
    """
    whole = sum(weight for weight in query_terms.values() if weight >= 1)
    if not whole:
        whole = sum(query_terms.values())
    if not whole:
        return 0.0
    present = present_terms(text, glosses) if present is None else present
    return sum(weight for term, weight in query_terms.items() if term in present) / whole


def entity_coverage(question: Question, present: AbstractSet[str]) -> float:
    """Share of the names, codes and numbers the question mentions that the text holds (1 when it mentions none).

    A near miss ("What did NIST sign with Germany?") names something the
    passage about its other actors never does.
    """
    keyed = [terms for terms in (analyze_query(entity) + cognate_keys(entity) for entity in question.entities) if terms]
    if not keyed:
        return 1.0
    return sum(1 for terms in keyed if present.intersection(terms)) / len(keyed)


def score_sentences(query_terms: dict[str, float], passages: list[Passage]) -> list[Candidate]:
    """Every sentence of the top passages, best first."""
    if not passages:
        return []
    best = max(passages[0].score, 1e-9)
    scored = []
    for passage in passages[:PASSAGES_READ]:
        prior = max(passage.score, 0.0) / best
        for candidate in sentences_of(passage):
            score = term_coverage(query_terms, candidate.text, candidate.glosses) + 0.5 * prior
            scored.append(replace(candidate, score=score))
    scored.sort(key=lambda c: (-c.score, c.passage.rank, c.char_start))
    return scored


_LATIN_WORD = re.compile(r"[0-9A-Za-z\u00c0-\u024f]+(?:[-/.][0-9A-Za-z\u00c0-\u024f]+)*")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7a3]")
# Marks this close together (a space, "·", "(") are one phrase.
_MARK_GAP = 2


def key_phrases(query_terms: list[str], text: str, glosses: list[GlossedWord] = ()) -> list[tuple[int, int]]:
    """Spans of ``text`` that carry the question's terms, joined into phrases.

    Latin words are matched through the retrieval analyser, so "signed" marks
    "sign"; Korean and Chinese are marked where the question's character
    bigrams occur, or where a word's English gloss holds a question term
    (협력의향서, glossed "letter of intent", for "the letter of intent").
    """
    wanted = set(query_terms)
    found = [m.span() for m in _LATIN_WORD.finditer(text) if wanted.intersection(analyze(m.group(0)))]
    found.extend((start, end) for start, end, english in glosses if wanted.intersection(analyze(english)))
    for term in wanted:
        if _CJK.match(term):
            found.extend((m.start(), m.start() + len(term)) for m in re.finditer(re.escape(term), text))
    spans: list[list[int]] = []
    for start, end in sorted(found):
        if spans and start - spans[-1][1] <= _MARK_GAP:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    return [(start, end) for start, end in spans]


def citation_of(candidate: Candidate, query_terms: list[str] | None = None, question_language: str = "en") -> Citation:
    """The candidate sentence as a citation: located, its key phrases marked, with a reading if it is in another language."""
    return Citation(
        source=candidate.passage.source,
        line_start=candidate.line_start,
        line_end=candidate.line_end,
        char_start=candidate.char_start,
        char_end=candidate.char_end,
        quote=candidate.text,
        page=candidate.passage.page,
        marks=key_phrases(query_terms or [], candidate.text, candidate.glosses),
        reading=reading(candidate.text, candidate.glosses, question_language),
    )


# Short answers, by the kind of answer the question asks for. A date: a year with its month and
# day around it in the scripts the collection holds; a number: digits with their unit or counter.
_MONTHS = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
    r"Januar|Februar|März|Mai|Juni|Juli|Oktober|Dezember|enero|febrero|marzo|abril|mayo|junio|julio|agosto|"
    r"septiembre|octubre|noviembre|diciembre)"
)
_SHORT = {
    "date": re.compile(
        rf"\d{{4}}\s?年(?:\s?\d{{1,2}}\s?月)?(?:\s?\d{{1,2}}\s?日)?|\d{{1,2}}\s?月\s?\d{{1,2}}\s?日|\d{{4}}-\d{{2}}-\d{{2}}|"
        rf"\d{{4}}\s?년(?:\s?\d{{1,2}}\s?월)?(?:\s?\d{{1,2}}\s?일)?|\d{{1,2}}\s?월\s?\d{{1,2}}\s?일|\d{{1,2}}일|"
        rf"(?:\d{{1,2}}\.?\s)?{_MONTHS}(?:\s\d{{1,2}}(?!\d),?)?(?:\s\d{{4}})?|\b(?:1[5-9]|20)\d{{2}}(?:s|er)?\b"
    ),
    "number": re.compile(
        r"\d[\d,.]*(?:\s?(?:%|percent|Prozent|Millionen|Milliarden|million|billion|Mio\.|Mrd\.|"
        r"万亿|亿|万|千|百)?\s?(?:USD|EUR|US-Dollar|dollars?|euros?|美元|日元|日圆|元|명|곳|개|억|원|架|艘|名|个|年|吨|%)?)"
    ),
    "person": re.compile(r"\b[A-Z][a-zà-ÿ]+(?:\s(?:[A-Z]\.\s?)?[A-Z][a-zà-ÿ]+)+\b"),
    "place": re.compile(r"\b[A-Z][a-zà-ÿ]+(?:\s[A-Z][a-zà-ÿ]+)*(?:\s?DC)?\b"),
}


def _spans(question: Question, quote: str) -> Iterator[tuple[int, int]]:
    """Spans of the quote of the kind the question asks for, except what the question itself says."""
    pattern = _SHORT.get(question.answer_type)
    if pattern is None:
        return
    asked = question.text.casefold()
    for match in pattern.finditer(quote):
        text = match.group(0).rstrip()
        if text and text.casefold() not in asked:
            yield match.start(), match.start() + len(text)


def short_answers(question: Question, citations: list[Citation]) -> list[tuple[int, int, int]]:
    """``(citation, start, end)``: the spans of the quotes that may answer a number, date or name question.

    A span the question itself already says ("2024" asked about 2024, a
    name the question gives) is no answer. Names are looked for only in
    quotes in the question's language: in a Korean sentence the Latin name
    is rarely the one asked about.
    """
    found = []
    for number, citation in enumerate(citations):
        if question.answer_type in ("person", "place") and citation.reading is not None:
            continue
        found.extend((number, start, end) for start, end in _spans(question, citation.quote)
                     if question.answer_type != "number" or fits(question, citation.quote[start:end]))
    return found


def nearest(spans: list[tuple[int, int, int]], citations: list[Citation]) -> tuple[int, int, int] | None:
    """The span closest to the question's marked words in its quote; quotes with no mark come last."""
    def distance(span: tuple[int, int, int]) -> float:
        number, start, end = span
        marks = citations[number].marks
        if not marks:
            return float("inf")
        return min(start - b if start >= b else max(0, a - end) for a, b in marks)

    return min(spans, key=lambda span: (distance(span), span[0], span[1]), default=None)


def fits(question: Question, text: str) -> bool:
    """Does a number fit the question: a count ("how many") is no sum of money, a sum ("how much money") is one."""
    money = bool(_MONEY.search(text))
    if _COUNT.search(question.text):
        return not money
    if _SUM.search(question.text):
        return money
    return True


_MONEY = re.compile(r"USD|EUR|US-Dollar|dollars?|euros?|美元|日元|日圆|元|원|\$|€|¥")
_COUNT = re.compile(r"\bhow many\b|\bwie viele\b|\bcuánt[oa]s\b|多少[架个名家艘]|几[个名家架]|몇 ?[명개곳대]", re.IGNORECASE)
_SUM = re.compile(r"\bhow much (?:money|did|does|will|is|was)\b|\bwie viel geld\b|多少钱|얼마", re.IGNORECASE)


def evidence(question: Question, passages: list[Passage], ranked: list[Candidate], signals: Signals | None = None) -> dict[str, float]:
    """What abstention weighs: how well the best passages match the question, as numbers.

    ``score``: the best passage's retrieval score (dense cosine and scaled
    BM25 fused); ``dense``: the best cosine among the top passages (the
    fused score where there is none); ``gap``, ``dense_gap``: how far the
    first passage stands above the fifth, fused and dense; ``coverage``: the largest weighted share of the question's terms
    (bridged forms included) that one of the top passages holds;
    ``entities``: the largest share of the names, codes and numbers the
    question mentions that one of them holds;
    ``sentence``: the same share in the best sentence; ``unknown``: 1 when
    the question names something no document holds; ``typed``: 1 unless the
    question asks for a number, date or name (a name: in a sentence of its
    own language) and the best sentence holds none it does not already say;
    ``read``: 1 when the best passage is English or glossed, text the
    default model reads; 0 for another language, where the scores say
    little and the calibration learns to trust them less; and the model's
    own evidence, ``model_evidence``.
    """
    top = passages[0]
    best = ranked[0] if ranked else None
    typed = 1.0
    if best is not None and question.answer_type in _SHORT:
        if question.answer_type in ("number", "date") or detect(best.text) == question.language:
            typed = float(any(True for _ in _spans(question, best.text)))
    read = [present_terms(p.text, p.glosses) for p in passages[:PASSAGES_READ]]
    return {
        "score": top.score,
        "dense": max((p.dense for p in passages[:PASSAGES_READ] if p.dense is not None), default=top.score),
        "gap": top.score - passages[min(4, len(passages) - 1)].score,
        "dense_gap": (top.dense or 0.0) - (passages[min(4, len(passages) - 1)].dense or 0.0),
        "coverage": max(term_coverage(question.weights, "", present=terms) for terms in read),
        "entities": max(entity_coverage(question, terms) for terms in read),
        "sentence": term_coverage(question.weights, best.text, best.glosses) if best is not None else 0.0,
        "unknown": float(bool(question.unknown_names)),
        "typed": typed,
        "read": float(bool(top.glosses) or detect(top.text) == "en"),
        **model_evidence(signals),
    }


def model_evidence(signals: Signals | None) -> dict[str, float]:
    """The embedding model's evidence (``signals``), on the question's own scale over the collection.

    ``dense_z``: how many spreads the best passage's cosine stands above the
    question's mean cosine with the collection; ``sentence_dense``,
    ``sentence_z``: the best cosine with one sentence of the top passages,
    raw and on that scale. Without signals (no vectors to read) all are
    neutral: 0.
    """
    if signals is None:
        return {"dense_z": 0.0, "sentence_dense": 0.0, "sentence_z": 0.0}
    return {
        "dense_z": signals.scale.z(signals.best_dense),
        "sentence_dense": signals.sentence,
        "sentence_z": signals.scale.z(signals.sentence),
    }


def first_stage(passages: list[Passage]) -> list[Passage]:
    """The passages as fusion ranked them, before the best few were re-read sentence by sentence.

    Abstention weighs this ranking: re-reading picks, among the best few, the
    one whose single best sentence matches, which lifts an unanswerable
    question's best passage as much as an answerable one's (measured: it
    cost up to 0.33 of the refusals at the same false refusals), while the
    answer is quoted from the re-read order. Only the order and scores
    differ: the re-read few are the first stage's best few.
    """
    ordered = sorted(passages, key=lambda p: (-(p.score if p.first_score is None else p.first_score), p.rank))
    return [p.model_copy(update={"rank": rank, "score": p.score if p.first_score is None else p.first_score}) for rank, p in enumerate(ordered, start=1)]


def compose(
    question: Question,
    passages: list[Passage],
    abstain_below: float | None = None,
    calibration: Calibration | None = None,
    signals: Signals | None = None,
) -> Answer:
    """The reply: the best sentences with markers, or an abstention over the same passages.

    It abstains when the calibrated confidence that the passages answer the
    question falls under ``abstain_below`` (the calibration's own threshold
    when ``None``); the reason says which evidence was missing.
    """
    calibration = calibration or default_calibration()
    threshold = calibration.threshold if abstain_below is None else abstain_below

    def abstain(reason: str, sure: float = 0.0) -> Answer:
        return Answer(
            question=question.text, answer=ABSTAIN_TEXT, abstained=True, citations=[], passages=passages,
            analysis=question, confidence=round(sure, 4), reason=reason,
        )

    if not passages:
        return abstain("nothing is indexed")
    ranked = score_sentences(question.weights, passages)
    if not ranked:
        return abstain("the passages hold no sentence")
    weighed = first_stage(passages)
    features = evidence(question, weighed, score_sentences(question.weights, weighed), signals)
    sure = calibration.confidence(features)
    if sure < threshold:
        return abstain(weakest(question, features), sure)
    chosen = [ranked[0]]
    for candidate in ranked[1:3]:
        overlaps = any(c.char_start < candidate.char_end and candidate.char_start < c.char_end for c in chosen)
        if candidate.score >= SECOND_SENTENCE_SHARE * ranked[0].score and not overlaps and candidate.text != ranked[0].text:
            chosen.append(candidate)
            break
    chosen.sort(key=lambda c: (c.passage.source, c.char_start))
    citations: list[Citation] = []
    parts = []
    taken = list(chosen)
    marked = list(question.weights)
    for sentence in chosen:
        support = [sentence, *corroborating(sentence, ranked, taken)]
        taken.extend(support[1:])
        markers = "".join(f"[{len(citations) + n}]" for n in range(1, len(support) + 1))
        citations.extend(citation_of(c, marked, question.language) for c in support)
        parts.append(f"{sentence.text} {markers}")
    short = None
    best = nearest(short_answers(question, citations), citations)
    if best is not None:
        number, start, end = best
        citations[number] = citations[number].model_copy(update={"short": (start, end)})
        short = citations[number].quote[start:end]
        parts.insert(0, f"{short} [{number + 1}] —")
    return Answer(
        question=question.text, answer=" ".join(parts), abstained=False, citations=citations, passages=passages,
        analysis=question, confidence=round(sure, 4), reason=None, short_answer=short,
    )


def weakest(question: Question, features: dict[str, float]) -> str:
    """The abstention's reason in words: the first missing piece of evidence."""
    if question.unknown_names:
        return "no document names " + ", ".join(question.unknown_names)
    if features["typed"] == 0:
        return f"the question asks for a {question.answer_type} and the best passage states none"
    if features["coverage"] < 0.5:
        return f"the best passages hold only {features['coverage']:.0%} of the question's terms"
    return "the best passage matches the question too weakly"


def corroborating(sentence: Candidate, ranked: list[Candidate], taken: list[Candidate]) -> list[Candidate]:
    """Sentences elsewhere in the top passages that state the same thing, cited beside it as [1][2].

    "The same thing" is read lexically: most of the quoted sentence's terms
    recur (a caption printed twice, a fact repeated in a summary).
    """
    terms = set(analyze(sentence.text))
    found = []
    for other in ranked:
        if any(other.passage.source == t.passage.source and other.char_start < t.char_end and t.char_start < other.char_end for t in taken + found):
            continue
        shared = terms & set(analyze(other.text))
        if terms and len(shared) / len(terms | set(analyze(other.text))) >= CORROBORATION:
            found.append(other)
    return found[:MAX_CORROBORATING]
