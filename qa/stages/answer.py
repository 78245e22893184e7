"""Turn ranked passages into a reply that quotes and cites its evidence.

Extractive, no LLM: the reply is made of sentences that stand in the
documents, in their own language, each followed by its citation marker. A
sentence is chosen for how many of the question's terms it holds, weighted by
how well its passage ranked; when even the best passage is weak evidence, the
bot abstains rather than quote something beside the point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from qa.stages.chunk import has_sentence_end, letter_weight, split_sentences
from qa.crosslingual.gloss import GlossedWord, words_within
from qa.stages.lexical import analyze, index_terms
from qa.models import Answer, Citation, Passage, Question

ABSTAIN_TEXT = "The documents do not answer this. The closest passages are listed below."
# Only this many top passages are read for answer sentences.
PASSAGES_READ = 3
# A second sentence joins the answer if it scores at least this share of the best.
SECOND_SENTENCE_SHARE = 0.85
MIN_SENTENCE_WEIGHT = 12
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
    for span in split_sentences(text):
        piece = text[span.start : span.end]
        if letter_weight(piece) < MIN_SENTENCE_WEIGHT and not has_sentence_end(piece):
            continue
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


def term_coverage(query_terms: dict[str, float], text: str, glosses: list[GlossedWord] = ()) -> float:
    """Weighted share of the question's own terms that occur in the text or its English glosses.

    A sentence is matched as its passage was indexed, cognate keys included.
    Bridged terms count towards the share but not towards the whole, like
    the retriever's scaled BM25.
    """
    whole = sum(weight for weight in query_terms.values() if weight >= 1)
    if not whole:
        whole = sum(query_terms.values())
    if not whole:
        return 0.0
    present = set(index_terms(text)).union(*(analyze(english) for *_, english in glosses))
    return sum(weight for term, weight in query_terms.items() if term in present) / whole


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


def citation_of(candidate: Candidate, query_terms: list[str] | None = None) -> Citation:
    return Citation(
        source=candidate.passage.source,
        line_start=candidate.line_start,
        line_end=candidate.line_end,
        char_start=candidate.char_start,
        char_end=candidate.char_end,
        quote=candidate.text,
        marks=key_phrases(query_terms or [], candidate.text, candidate.glosses),
    )


def compose(question: Question, passages: list[Passage], abstain_below: float) -> Answer:
    """The reply: the best sentences with markers, or an abstention over the same passages.

    It abstains when the best passage scores under ``abstain_below`` or when
    the question names something (``unknown_names``) that no document holds.
    """
    def abstain(reason: str) -> Answer:
        return Answer(question=question.text, answer=ABSTAIN_TEXT, abstained=True, citations=[], passages=passages, analysis=question)

    if not passages:
        return abstain("nothing is indexed")
    if question.unknown_names:
        return abstain("no document names " + ", ".join(question.unknown_names))
    if passages[0].score < abstain_below:
        return abstain("the best passage scores under the threshold")
    ranked = score_sentences(question.weights, passages)
    if not ranked:
        return abstain("the passages hold no sentence")
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
        citations.extend(citation_of(c, marked) for c in support)
        parts.append(f"{sentence.text} {markers}")
    return Answer(question=question.text, answer=" ".join(parts), abstained=False, citations=citations, passages=passages, analysis=question)


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
