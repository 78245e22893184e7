"""What the embedding model says about how well the best passages answer a question.

A raw cosine means little on its own: multilingual-e5 gives one question 0.85
against everything and another 0.78 against its own answer. Abstention reads
two things instead, both measured with the question's own vector:

- the question's **scale** over the collection: the mean and spread of its
  cosines with a fixed sample of chunks. A passage that answers stands several
  spreads above that mean; one that merely shares the subject does not. On a
  collection of a few chunks that sample says nothing, so the estimate is
  shrunk towards the model's typical scale (``ScalePrior``), with a weight of
  ``prior.weight`` chunks: three chunks barely move it, thousands decide it;
- **sentence cosines**: the question against each sentence of the best
  passage, embedded as a passage when the index was built. A passage about
  the right subject whose every sentence is beside the point scores low here.

All scoring is pure: arrays in, numbers out.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field


# Chunks the collection's scale is estimated on: enough for a stable mean and
# spread, few enough to cost under a millisecond.
SCALE_SAMPLE = 4096
# Whose sentences are compared with the question: the best passage's. Measured with each collection left out of
# the calibration (benchmarks/abstention.py), the sentences of the top one, two or three passages refused within
# 0.07 of each other on every set; the simplest is kept (when sentences were embedded at ask time it also cost a
# third of the time; they are read from the index now).
SENTENCE_PASSAGES = 1


class ScalePrior(BaseModel):
    """The model's typical question-to-chunk cosines, measured over the calibration collections."""

    mean: float
    std: float
    weight: float = Field(description="How many chunks the prior counts as: a collection far larger decides alone.")


class Scale(BaseModel):
    mean: float
    std: float
    sampled: int = Field(description="Chunks the collection's own estimate rests on.")

    def z(self, cosine: float) -> float:
        """How many spreads a cosine stands above the question's mean over the collection."""
        return (cosine - self.mean) / self.std


class Signals(BaseModel):
    """The model's evidence for one question over its passages, read by ``answer.evidence``."""

    scale: Scale
    best_dense: float = Field(description="The best dense cosine among the top passages.")
    sentence: float = Field(description="The best cosine of the question with one sentence of the best passage.")


def sample_positions(live: np.ndarray, size: int = SCALE_SAMPLE) -> np.ndarray:
    """Evenly spaced live chunk ids: the same sample for every question, spread over the whole collection."""
    ids = np.flatnonzero(live)
    if len(ids) <= size:
        return ids
    return ids[np.linspace(0, len(ids) - 1, size).round().astype(np.int64)]


def scale(cosines: np.ndarray, prior: ScalePrior | None = None) -> Scale:
    """The question's cosine mean and spread over the sample, shrunk towards the prior if one is given."""
    own = Scale(mean=float(cosines.mean()), std=float(cosines.std()), sampled=len(cosines)) if len(cosines) else None
    if prior is None:
        return own or Scale(mean=0.0, std=1.0, sampled=0)
    return shrink(own, prior)


def shrink(own: Scale | None, prior: ScalePrior) -> Scale:
    """A collection's own scale pulled towards the prior, as if the prior were ``prior.weight`` more chunks."""
    n = own.sampled if own is not None else 0
    total = n + prior.weight
    if not total:
        return Scale(mean=prior.mean, std=prior.std, sampled=0)
    own_mean, own_var = (own.mean, own.std**2) if own is not None else (0.0, 0.0)
    mean = (n * own_mean + prior.weight * prior.mean) / total
    var = (n * own_var + prior.weight * prior.std**2) / total
    return Scale(mean=mean, std=max(float(np.sqrt(var)), 1e-6), sampled=n)


def measure(
    vector: np.ndarray,
    sample: np.ndarray,
    prior: ScalePrior | None,
    best_dense: float | None,
    sentence_vectors: np.ndarray,
) -> Signals:
    """Signals from the question's vector, the collection's sample rows and the best passage's sentence rows.

    Without a prior the scale is the collection's own (the calibration
    benchmark records it so, and fits the prior afterwards).

    ``best_dense`` is None where retrieval was lexical only: the best
    sentence stands in.
    """
    cosines = sentence_vectors @ vector if len(sentence_vectors) else np.zeros(0, np.float32)
    best_sentence = float(cosines.max()) if len(cosines) else (best_dense or 0.0)
    best_dense = best_sentence if best_dense is None else best_dense
    return Signals(scale=scale(sample @ vector, prior), best_dense=best_dense, sentence=best_sentence)
