"""Re-score the best candidates with a cross-encoder, which reads question and passage together.

Optional and off by default (no cross-encoder ships offline): set
``reranker`` to any sentence-transformers CrossEncoder name or local path.
The fused retrieval proposes ``RERANK_POOL`` candidates and the cross-encoder
orders them; its logit, squashed to (0, 1), becomes the passage's score.
Loading it imports torch, so a reranker makes a cold question slower.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qa.stages.embed import load_offline_first

RERANK_POOL = 20


class Reranker:
    def __init__(self, model):
        self._model = model

    @classmethod
    def load(cls, name: str) -> "Reranker":
        from sentence_transformers import CrossEncoder

        return cls(load_offline_first(CrossEncoder, name, "reranker"))

    def scores(self, question: str, texts: Sequence[str]) -> np.ndarray:
        """One score in (0, 1) per text: higher reads as a better answer to the question."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        from torch.nn import Identity

        raw = self._model.predict([(question, text) for text in texts], activation_fn=Identity(), convert_to_numpy=True)
        logits = np.asarray(raw, dtype=np.float64)
        if logits.ndim == 2:  # a model with several labels: the last one is "relevant"
            logits = logits[:, -1]
        return (1 / (1 + np.exp(-logits))).astype(np.float32)
