"""Rank chunks for a question: dense, lexical, or both fused.

Scoring and fusion are pure functions over arrays, so they are tested without
a model. The hybrid score is a weighted sum of the dense cosine and a BM25
score scaled to [0, 1] by its ceiling for the question: unlike reciprocal
ranks it means the same thing from one question to the next, which is what
lets the answerer abstain on a single threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from qa.crosslingual.bridge import Bridge
from qa.crosslingual.gloss import english_view
from qa.lru import LRU
from qa.stages.store import Store
from qa.stages.lexical import BM25, analyze_query
from qa.models import Chunk, Passage, Question
from qa.stages.rerank import RERANK_POOL

Mode = Literal["dense", "lexical", "hybrid"]

# multilingual-e5's cosines for one question span a narrow band (0.75-0.90), so its side needs
# the larger weight to be heard beside BM25's [0, 1]. Measured at 0.1-0.9 on the seeds and
# XQuAD (benchmarks/crosslingual.py): 0.75 is within 0.01 of the best weight on XQuAD de, zh
# and es and on Spanish questions over Spanish text (0.7 lost three of those 28), and within
# 0.05 on the seeds' small slices; the one slice where fusion stays well under its better side
# is English questions over the Chinese seed, a long article all on one subject, where
# lexical matching through the dictionary wins (0.750 against 0.646).
DENSE_WEIGHT = 0.75
RRF_K = 60
# How many candidates each side proposes before fusion.
CANDIDATE_POOL = 100
# How many of the fused best are re-read sentence by sentence. Measured on XQuAD (English questions, 623 per task):
# re-reading the top 5 lifted hit@1 de 0.899 -> 0.920, zh 0.843 -> 0.878, es 0.888 -> 0.933, ru 0.862 -> 0.883,
# en 0.963 -> 0.973; the top 10 added at most 0.008 more for twice the encoding, the top 3 lost up to 0.01.
REREAD_POOL = 5


def scaled_bm25(bm25: BM25, terms: list[str], alternatives: list[list[dict[str, float]]] = ()) -> np.ndarray:
    """BM25 of the question's own terms plus the best translation of each bridged word, scaled.

    The scale is the most a document could score for the question's own
    terms, a word no document holds counting as the rarest word would: a
    question that matches only through bridges, or hardly at all, must not
    look like a perfect match. Bridged words add to the score, not to the
    scale, and each counts once, by its best translation in the document.
    A question term that a group offers at full weight counts within that
    group only, as the best of it and its alternatives.
    """
    in_groups = _offered_in_full(alternatives)
    scores = bm25.scores({term: 1.0 for term in terms if term not in in_groups})
    for group in alternatives:
        scores += np.max([bm25.scores(translation) for translation in group], axis=0)
    ceiling = sum(bm25.idf(term) for term in set(terms)) * (bm25.k1 + 1)
    return scores / ceiling if ceiling > 0 else scores


def _offered_in_full(alternatives: list[list[dict[str, float]]]) -> set[str]:
    """Question terms that a group offers at full weight beside their alternatives (a word and its cognate key)."""
    return {term for group in alternatives for translation in group for term, weight in translation.items() if weight >= 1}


def weighted_fusion(dense: np.ndarray, lexical: np.ndarray, dense_weight: float = DENSE_WEIGHT) -> np.ndarray:
    return dense_weight * dense + (1 - dense_weight) * lexical


def reciprocal_rank_fusion(*score_lists: np.ndarray, k: int = RRF_K) -> np.ndarray:
    """Sum of 1/(k + rank) over each ranking; ties share the better rank."""
    fused = np.zeros(len(score_lists[0]), dtype=np.float64)
    for scores in score_lists:
        order = np.argsort(-scores, kind="stable")
        ranks = np.empty(len(scores), dtype=np.float64)
        ranks[order] = np.arange(1, len(scores) + 1)
        fused += 1.0 / (k + ranks)
    return fused


def raised(
    scores: np.ndarray, dense: np.ndarray, lexical: np.ndarray | None, chosen: np.ndarray, sentences: np.ndarray, dense_weight: float
) -> np.ndarray:
    """``scores`` with the ``chosen`` candidates' dense side raised to their best sentence's cosine (``sentences``).

    Without a lexical side (dense mode) the raised cosine is the score.
    """
    best = np.maximum(dense[chosen], sentences)
    rescored = scores.astype(np.float64, copy=True)
    rescored[chosen] = best if lexical is None else weighted_fusion(best, lexical[chosen], dense_weight)
    return rescored


def top_k(scores: np.ndarray, k: int) -> list[int]:
    """Positions of the k best scores, best first; equal scores keep corpus order."""
    if k >= len(scores):
        return list(np.argsort(-scores, kind="stable"))
    candidates = np.argpartition(-scores, k)[:k]
    return sorted(candidates.tolist(), key=lambda p: (-scores[p], p))


def passage_of(
    chunk: Chunk, rank: int, score: float, glosses, dense: float | None = None, first_score: float | None = None, chunk_id: int | None = None
) -> Passage:
    """A chunk as retrieved: its offsets and lines carried over unchanged, so a passage slices its file as the chunk does."""
    return Passage(
        rank=rank,
        source=chunk.source,
        line_start=chunk.line_start,
        line_end=chunk.line_end,
        char_start=chunk.char_start,
        char_end=chunk.char_end,
        text=chunk.text,
        score=round(score, 6),
        page=chunk.page,
        glosses=tuple(glosses),
        dense=None if dense is None else round(dense, 6),
        first_score=round(score if first_score is None else first_score, 6),
        chunk_id=chunk_id,
    )


class Retriever:
    """Scores every chunk of a loaded index against a question."""

    def __init__(
        self,
        stored: Store,
        encode_query: Callable[[str], np.ndarray],
        mode: Mode = "hybrid",
        bridge: Bridge | None = None,
        rerank: Callable[[str, list[str]], np.ndarray] | None = None,
        dense_weight: float = DENSE_WEIGHT,
        read_glosses: bool = False,
        reread: bool = True,
    ):
        self.stored = stored
        self.read_glosses = read_glosses
        self.dense_weight = dense_weight
        self.bridge = bridge
        self.rerank = rerank
        self.rereads = reread
        self.encode_query = encode_query
        self.mode = mode
        self._bm25: BM25 | None = None
        # Retrieval and abstention both read the question's vector: it is encoded once.
        self._vectors: LRU[str, np.ndarray] = LRU(256)

    def question_vector(self, question: Question) -> np.ndarray:
        """The question's normalised vector, as dense retrieval scores with it."""
        return self._vectors.get_or_create(question.search, lambda: self.encode_query(question.search).reshape(-1).astype(np.float32))

    @property
    def bm25(self) -> BM25:
        if self._bm25 is None:
            self._bm25 = BM25(self.stored.postings, self.stored.lengths)
        return self._bm25

    def lexical_scores(self, question: Question) -> np.ndarray:
        alternatives = [list(group) for group in question.alternatives]
        self.stored.read_ahead([*question.terms, *(term for group in alternatives for translation in group for term in translation)])
        return scaled_bm25(self.bm25, list(question.terms), alternatives)

    def knows(self, word: str) -> bool:
        """Does some document hold the word, as it stands or through a bridge?"""
        if any(self.bm25.holds(term) for term in analyze_query(word)):
            return True
        return self.bridge is not None and self.bridge.translates(word)

    def candidates(self, question: Question, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Positions worth scoring, their scores under the retriever's mode, and their dense cosines and scaled BM25 (if any).

        FAISS proposes the dense candidates and BM25 the lexical ones; the union
        is then scored exactly on both sides, so fusion never sees a gap.
        """
        pool = max(k, CANDIDATE_POOL)
        lexical = None
        proposals: list[np.ndarray] = []
        if self.mode != "dense":
            lexical = self.lexical_scores(question)
            proposals.append(np.asarray(top_k(lexical, pool), dtype=np.int64))
        if self.mode != "lexical":
            vector = self.question_vector(question)
            proposals.append(self.stored.nearest(vector, min(pool, self.stored.manifest.chunk_count)))
        positions = np.unique(np.concatenate(proposals)) if proposals else np.zeros(0, np.int64)
        positions = positions[self.stored.live[positions]]  # ids of removed chunks score zero but are no candidates
        if self.mode == "lexical":
            return positions, lexical[positions], None, lexical[positions]
        dense = self.stored.vectors_at(positions) @ vector
        if self.mode == "dense":
            return positions, dense, dense, None
        return positions, weighted_fusion(dense, lexical[positions], self.dense_weight), dense, lexical[positions]

    def search(self, question: Question, k: int) -> list[Passage]:
        if not self.stored.manifest.chunk_count:
            return []
        positions, scores, dense, lexical = self.candidates(question, k)
        if self.rerank is not None:
            chosen = top_k(scores, max(k, RERANK_POOL))
            pool = [int(positions[p]) for p in chosen]
            dense = dense[chosen] if dense is not None else None
            positions = np.asarray(pool, dtype=np.int64)
            scores = self.rerank(question.search, self.model_texts(pool))
        first = scores
        # A follow-up is searched with the conversation around it ("Where was it signed? NIST Korea What did
        # NIST sign with Korea?"), which no one sentence answers: re-read, it drifted to another article's
        # signing (follow-ups 0.800 -> 0.700 hit@1), so it keeps fusion's order.
        follow_up = question.search != question.text
        if self.rerank is None and self.rereads and dense is not None and not follow_up:
            scores = self.reread(question, positions, scores, dense, lexical)
        ranked = top_k(scores, k)
        passages = []
        for rank, (best, (chunk, glosses)) in enumerate(zip(ranked, self.stored.chunks_at(positions[ranked])), start=1):
            cosine = float(dense[best]) if dense is not None else None
            passages.append(passage_of(chunk, rank, float(scores[best]), glosses, cosine, float(first[best]), int(positions[best])))
        return passages

    def reread(self, question: Question, positions: np.ndarray, scores: np.ndarray, dense: np.ndarray, lexical: np.ndarray | None) -> np.ndarray:
        """The best candidates' scores with each one's dense side raised to its best sentence's cosine.

        A chunk's vector averages its sentences, so the one sentence that
        answers is diluted by the rest; read sentence by sentence (their
        vectors made at index time), the answer stands out. Only raised, never lowered: a chunk outside the re-read
        few cannot overtake one inside it.
        """
        chosen = top_k(scores, REREAD_POOL)
        vector = self.question_vector(question)
        sentences = np.asarray([(rows @ vector).max() if len(rows) else -np.inf for rows in self.stored.sentence_vectors(positions[chosen])])
        return raised(scores, dense, lexical, np.asarray(chosen, dtype=np.int64), sentences, self.dense_weight)

    def model_texts(self, ids: list[int]) -> list[str]:
        """What the models read for these chunks: their English glosses where the index embedded them, else their text."""
        return [english_view(glosses, chunk.text) if self.read_glosses else chunk.text for chunk, glosses in self.stored.chunks_at(ids)]
