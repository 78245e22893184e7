"""Embedding spread over Ray workers: the cores of this machine, or the machines of a Ray cluster.

``qa index --workers N`` hands the build's new texts (chunks and sentences,
the model's whole share of a build) in batches to a pool of N Ray actors, each
holding the model and running it on its share of the cores. Reading,
chunking and glossing stay where ``qa index`` runs, as does everything after:
the workers return vectors, which the build writes as it would its own. Ray
schedules the batches and moves the data; nothing here is a scheduler of its own.

Without ``ray_address`` the build starts a Ray instance on this machine for
its own run and stops it after. With one (``auto``, or ``ray://head:10001``)
it joins that cluster, whose nodes need qa installed as on this machine.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

import numpy as np

from qa.errors import QAError
from qa.stages.embed import Encoder


def _worker(load: Callable[[], Encoder]) -> type:
    """The class of the Ray actors: each loads the model once, then encodes the batches it is handed.

    The loader travels inside the class (Ray pickles it with the class), so an
    actor is made with no arguments.
    """

    class Worker:
        def __init__(self) -> None:
            self.encoder = load()

        def encode(self, start: int, texts: list[str]) -> tuple[int, np.ndarray]:
            return start, self.encoder.encode_documents(texts, batch_size=len(texts))

    return Worker


class RayEncoder:
    """The ``Encoder`` of a build whose documents are embedded on Ray workers; questions and token counts stay local."""

    def __init__(self, local: Encoder, load: Callable[[], Encoder], workers: int, address: str = ""):
        """``load`` makes the model on a worker (a picklable function); ``local`` is the same model, loaded here."""
        self.local = local
        self.name, self.dimension, self.max_tokens = local.name, local.dimension, local.max_tokens
        self._load = load
        self.workers = workers
        self._address = address
        self._started_here = False

    def count_tokens(self, text: str) -> int:
        return self.local.count_tokens(text)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.local.encode_queries(texts)

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32, on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), np.float32)
        if not texts:
            return vectors
        ray = self._ray()
        from ray.util import ActorPool

        # Each worker gets its share of the cores, so N workers never run more model threads than there are cores;
        # one that dies fails the build with its error (a rerun starts from the last generation).
        share = max(0.01, ray.cluster_resources().get("CPU", 1.0) / self.workers)
        actors = [ray.remote(num_cpus=share, max_restarts=0)(_worker(self._load)).remote() for _ in range(self.workers)]
        batches = [(start, list(texts[start : start + batch_size])) for start in range(0, len(texts), batch_size)]
        try:
            for start, block in ActorPool(actors).map_unordered(lambda actor, batch: actor.encode.remote(*batch), batches):
                vectors[start : start + len(block)] = block
                if on_batch:
                    on_batch(len(block))
        except Exception as err:  # Ray wraps a worker's failure in its own errors
            reason = str(err).strip().splitlines()
            raise QAError(f"the Ray workers failed to embed: {reason[-1] if reason else type(err).__name__}") from None
        finally:
            for actor in actors:
                ray.kill(actor)
        return vectors

    def _ray(self):
        try:
            import ray
        except ImportError:
            raise QAError("--workers needs Ray: pip install 'qa[ray]'") from None
        if not ray.is_initialized():
            try:
                if self._address:
                    ray.init(address=self._address, logging_level=logging.ERROR, log_to_driver=False)
                else:
                    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
                    ray.init(num_cpus=cores, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
                    self._started_here = True
            except Exception as err:
                where = f"the Ray cluster at {self._address}" if self._address else "a local Ray instance"
                reason = str(err).strip().splitlines()
                raise QAError(f"cannot start {where}: {reason[0] if reason else type(err).__name__}") from None
        return ray

    def close(self) -> None:
        """Stop the Ray instance this build started (a cluster it joined keeps running)."""
        if self._started_here:
            import ray

            ray.shutdown()
            self._started_here = False
