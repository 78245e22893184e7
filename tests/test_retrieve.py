from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays

from qa.stages.analyse import salient_words
from qa.stages.retrieve import raised, reciprocal_rank_fusion, scaled_bm25, top_k, weighted_fusion
from qa.stages.lexical import BM25

SCORES = arrays(np.float64, st.integers(1, 50), elements=st.floats(-1, 1, allow_nan=False))


@given(SCORES, st.integers(1, 60))
def test_top_k_is_the_k_best_in_order(scores, k):
    picked = top_k(scores, k)
    assert len(picked) == min(k, len(scores)) and len(set(picked)) == len(picked)
    assert all(scores[a] >= scores[b] for a, b in zip(picked, picked[1:]))
    rest = set(range(len(scores))) - set(picked)
    assert all(scores[p] >= scores[r] for p in picked for r in rest)
    # Ties keep corpus order.
    assert all(a < b for a, b in zip(picked, picked[1:]) if scores[a] == scores[b])


@given(SCORES)
def test_rrf_of_one_ranking_keeps_its_order(scores):
    fused = reciprocal_rank_fusion(scores)
    assert top_k(fused, len(scores)) == top_k(scores, len(scores))


@given(st.lists(st.floats(0, 1), min_size=1, max_size=20), st.floats(0, 1))
def test_weighted_fusion_stays_between_its_parts(values, weight):
    dense = np.array(values)
    lexical = dense[::-1].copy()
    fused = weighted_fusion(dense, lexical, weight)
    assert np.all(fused <= np.maximum(dense, lexical) + 1e-9) and np.all(fused >= np.minimum(dense, lexical) - 1e-9)


@given(st.data(), st.integers(1, 40), st.floats(0, 1), st.booleans())
def test_re_reading_only_raises_the_chosen_and_keeps_them_on_top(data, size, weight, hybrid):
    unit = arrays(np.float64, size, elements=st.floats(0, 1, allow_nan=False))
    dense, lexical = data.draw(unit), data.draw(unit)
    scores = weighted_fusion(dense, lexical, weight) if hybrid else dense
    chosen = np.asarray(top_k(scores, data.draw(st.integers(1, size))), dtype=np.int64)
    sentences = data.draw(arrays(np.float64, len(chosen), elements=st.floats(-1, 1, allow_nan=False)))
    rescored = raised(scores, dense, lexical if hybrid else None, chosen, sentences, weight)
    assert np.all(rescored >= scores - 1e-12)
    others = np.setdiff1d(np.arange(size), chosen)
    assert np.array_equal(rescored[others], scores[others])
    assert set(top_k(rescored, len(chosen))) == set(chosen.tolist()) or np.isclose(
        min(rescored[chosen]), max(rescored[others], default=-np.inf)
    )
    # A sentence no better than its chunk changes nothing.
    assert np.array_equal(raised(scores, dense, lexical if hybrid else None, chosen, np.full(len(chosen), -1.0), weight)[chosen], scores[chosen])


def test_scaled_bm25_is_at_most_one_for_the_question_own_terms():
    bm25 = BM25.of([["nist", "nist", "sign"], ["kiat"], ["other"]])
    scaled = scaled_bm25(bm25, ["nist", "sign"])
    assert 0 < scaled.max() <= 1 and scaled[1] == 0
    bridged = scaled_bm25(bm25, ["nist"], [[{"kiat": 0.5}]])
    assert bridged[1] > 0  # bridged terms add, without raising the ceiling


def test_translations_of_one_word_count_once():
    bm25 = BM25.of([["发展", "开发", "研发"], ["发展"], ["other"]])
    both = scaled_bm25(bm25, ["develop"], [[{"发展": 0.9}, {"开发": 0.9}, {"研发": 0.9}]])
    one = scaled_bm25(bm25, ["develop"], [[{"发展": 0.9}]])
    assert both[0] < 1.5 * one[1] and both[1] == one[1]


def test_unknown_words_still_count_in_the_ceiling():
    bm25 = BM25.of([["nist"], ["kiat"]])
    assert scaled_bm25(bm25, ["nist", "zebra"])[0] < scaled_bm25(bm25, ["nist"])[0]


def test_salient_words_are_acronyms_and_numbers():
    assert salient_words("How did the CEO of TSMC do in FY2023 with the F-35 and the PM in Berlin?") == [
        "CEO",
        "TSMC",
        "FY2023",
        "F-35",
    ]


def test_scaled_bm25_counts_a_word_once_by_its_best_alternative():
    bm25 = BM25.of([["japan", "~japan"], ["japan", "x"], ["~japan", "x"], ["x", "y"]])
    scaled = scaled_bm25(bm25, ["japan"], [[{"japan": 1.0}, {"~japan": 0.5}]])
    assert scaled[0] == scaled[1] > scaled[2] > scaled[3] == 0


def test_names_no_document_holds_are_unknown_however_long(bot):
    assert bot.analyse("What did NVIDIA and UNESCO sign in FY2023 with NASA?").unknown_names == ("NVIDIA", "UNESCO", "FY2023")
    assert bot.analyse("What did NIST sign with KIAT?").unknown_names == ()


def test_asking_reads_stored_sentence_vectors_and_embeds_only_the_question(make_bot, monkeypatch):
    bot = make_bot()
    encoder = bot._question_encoder()

    def no_passages(*args, **kwargs):
        raise AssertionError("a passage was embedded at ask time")

    monkeypatch.setattr(encoder, "encode_documents", no_passages)
    answer = bot.ask("What did NIST sign with Korea?")
    best = answer.passages[0]
    assert best.source == "002_7257b5aa37c3b2f3.txt"
    assert any(p.first_score != p.score for p in answer.passages), "nothing was re-read"
    assert answer.confidence is not None


def test_re_reading_raises_a_chunk_to_its_best_stored_sentence(bot):
    question = bot.analyse("What did NIST sign with Korea?")
    retriever = bot._retriever
    positions, scores, dense, lexical = retriever.candidates(question, 10)
    reread = retriever.reread(question, positions, scores, dense, lexical)
    chosen = top_k(scores, 5)
    vector = retriever.question_vector(question)
    for slot, rows in zip(chosen, bot._stored.sentence_vectors(positions[chosen])):
        best = max(float(dense[slot]), float((rows @ vector).max()))
        assert reread[slot] == pytest.approx(weighted_fusion(best, lexical[slot], retriever.dense_weight))
