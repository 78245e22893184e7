"""The model's abstention evidence: the question's scale over a collection, shrunk on small ones, and sentence cosines."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from qa.stages.signals import Scale, ScalePrior, measure, sample_positions, scale, shrink

PRIOR = ScalePrior(mean=0.8, std=0.02, weight=50)


@given(st.lists(st.booleans(), max_size=300), st.integers(1, 64))
def test_the_sample_is_sorted_distinct_live_ids_spread_to_both_ends(live, size):
    live = np.array(live, dtype=bool)
    chosen = sample_positions(live, size)
    ids = np.flatnonzero(live)
    assert len(chosen) == min(size, len(ids))
    assert list(chosen) == sorted(set(chosen.tolist()))
    assert all(live[chosen])
    if len(ids) > 1 and size > 1:
        assert chosen[0] == ids[0] and chosen[-1] == ids[-1]


unit = st.floats(-1, 1, allow_nan=False)


@given(arrays(np.float64, st.integers(1, 200), elements=unit))
@settings(max_examples=200)
def test_a_shrunk_scale_lies_between_the_collections_own_and_the_prior(cosines):
    own = scale(cosines)
    shrunk = scale(cosines, PRIOR)
    assert min(own.mean, PRIOR.mean) - 1e-9 <= shrunk.mean <= max(own.mean, PRIOR.mean) + 1e-9
    assert shrunk.sampled == len(cosines)
    assert shrunk.std > 0


def test_three_chunks_barely_move_the_prior_and_thousands_decide():
    rng = np.random.default_rng(0)
    few = scale(np.array([0.9, 0.7, 0.75]), PRIOR)
    assert few.mean == pytest.approx(PRIOR.mean, abs=0.01)
    assert few.std == pytest.approx(PRIOR.std, abs=0.02)
    many = rng.normal(0.7, 0.05, 20_000)
    assert scale(many, PRIOR).mean == pytest.approx(0.7, abs=0.002)


def test_a_prior_of_no_weight_leaves_the_collections_own_scale_and_no_sample_leaves_the_prior():
    own = Scale(mean=0.6, std=0.1, sampled=10)
    assert shrink(own, PRIOR.model_copy(update={"weight": 0})) == own
    assert shrink(None, PRIOR) == Scale(mean=PRIOR.mean, std=PRIOR.std, sampled=0)


def test_on_three_chunks_the_answer_stands_as_far_out_as_on_a_large_collection():
    """The regression behind the prior: a collection's own z cannot exceed (n-1)/sqrt(n), 1.15 for three chunks."""
    vector = np.array([1.0, 0.0])
    rows = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    sentence = np.array([[1.0, 0.0]])
    own = measure(vector, rows, None, 1.0, sentence)
    assert own.scale.z(own.best_dense) < 1.2
    prior = ScalePrior(mean=0.3, std=0.2, weight=50)
    shrunk = measure(vector, rows, prior, 1.0, sentence)
    assert shrunk.scale.z(shrunk.best_dense) > 3


def test_the_sentence_signal_is_the_best_cosine_and_stands_in_for_a_missing_dense_one():
    vector = np.array([1.0, 0.0])
    sentences = np.array([[0.6, 0.8], [0.9, np.sqrt(1 - 0.81)], [0.0, 1.0]])
    signals = measure(vector, sentences, None, 0.5, sentences)
    assert signals.sentence == pytest.approx(0.9) and signals.best_dense == 0.5
    lexical_only = measure(vector, sentences, None, None, sentences)
    assert lexical_only.best_dense == pytest.approx(0.9)
