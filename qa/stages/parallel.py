"""A build's work spread over Ray workers: the cores of this machine, or the machines of a Ray cluster.

``qa index --workers N`` starts a pool of N Ray actors, each holding the
model and, once a file needs them, the dictionaries. The build's new files are
split among them: each worker chunks its files, glosses them and makes their
query lexicons (``prepare``), then embeds a share of their chunks and
sentences (``encode_documents``). Reading the files stays where ``qa index``
runs, since only it sees the corpus folder, and so does writing: the workers
return chunks, glosses and vectors, and the build writes them as it would its
own, as one generation, then publishes it to the store. Ray schedules the
batches and moves the data; nothing here is a scheduler of its own.

Without ``ray_address`` the build starts a Ray instance on this machine for
its own run and stops it after. With one (``auto``, or ``ray://head:10001``)
it joins that cluster, whose nodes need qa installed as on this machine
(``install.sh``: the same dictionaries, or their glosses differ).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import numpy as np

from qa.crosslingual.dictionary_worker import Prepared, prepare_here
from qa.crosslingual.gloss import loaded_glossary
from qa.errors import QAError
from qa.models import Chunk, Document
from qa.stages.chunk import chunk_for_model
from qa.stages.embed import Encoder

# A worker's share of files at a time: enough text that Ray's cost per task vanishes, small enough to spread a corpus.
BATCH_CHARS = 200_000


class ChunkSizes(NamedTuple):
    """The settings that shape chunks, handed to the workers with their files."""

    chunk_tokens: int
    overlap_tokens: int
    max_chars: int


def _worker(load: Callable[[], Encoder]) -> type:
    """The class of the Ray actors: each loads the model once, the dictionaries when first needed.

    The loader travels inside the class (Ray pickles it with the class), so an
    actor is made with no arguments.
    """

    class Worker:
        def __init__(self) -> None:
            self.encoder = load()

        def prepare(self, documents: list[Document], sizes: ChunkSizes) -> tuple[dict[str, list[Chunk]], Prepared]:
            chunks = {d.source: chunk_for_model(d, self.encoder.count_tokens, self.encoder.max_tokens, *sizes) for d in documents}
            return chunks, prepare_here({d.source: d.text for d in documents}, list(chunks), loaded_glossary)

        def encode(self, start: int, texts: list[str]) -> tuple[int, np.ndarray]:
            return start, self.encoder.encode_documents(texts, batch_size=len(texts))

    return Worker


def _batches(documents: Sequence[Document]) -> Iterator[list[Document]]:
    batch: list[Document] = []
    size = 0
    for document in documents:
        if batch and size + len(document.text) > BATCH_CHARS:
            yield batch
            batch, size = [], 0
        batch.append(document)
        size += len(document.text)
    if batch:
        yield batch


class RayWorkers:
    """The workers of one build: ``prepare`` its new files, then ``encode_documents`` their texts."""

    def __init__(self, load: Callable[[], Encoder], workers: int, address: str = ""):
        """``load`` makes the model on a worker: a picklable function, since Ray sends it there."""
        self._load = load
        self.workers = workers
        self._address = address
        self._started_here = False
        self._actors: list = []

    def prepare(
        self, documents: Sequence[Document], sizes: ChunkSizes, on_batch: Callable[[int], None] | None = None
    ) -> tuple[dict[str, list[Chunk]], Prepared]:
        """Each document's chunks (in the order given), and its glosses and lexicon, made on the workers."""
        chunks: dict[str, list[Chunk]] = {}
        glosses, lexicons = {}, {}
        for batch_chunks, prepared in self._map("chunk and gloss", lambda actor, batch: actor.prepare.remote(batch, sizes), _batches(documents)):
            chunks.update(batch_chunks)
            glosses.update(prepared.glosses)
            lexicons.update(prepared.lexicons)
            if on_batch:
                on_batch(len(batch_chunks))
        return {d.source: chunks[d.source] for d in documents}, Prepared(glosses, lexicons)

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32, on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """The texts' passage vectors, ``batch_size`` texts to a task, in the order given."""
        blocks = {}
        batches = [(start, list(texts[start : start + batch_size])) for start in range(0, len(texts), batch_size)]
        for start, block in self._map("embed", lambda actor, batch: actor.encode.remote(*batch), batches):
            blocks[start] = block
            if on_batch:
                on_batch(len(block))
        return np.concatenate([blocks[start] for start in sorted(blocks)]) if blocks else np.zeros((0, 0), np.float32)

    def _map(self, work: str, submit: Callable, items) -> Iterator:
        """``submit``'s results for ``items`` as the workers finish them; a worker's failure fails the build in one line."""
        items = list(items)
        if not items:
            return
        actors = self._pool()
        from ray.util import ActorPool

        try:
            yield from ActorPool(actors).map_unordered(submit, items)
        except Exception as err:  # Ray wraps a worker's failure in its own errors
            reason = str(err).strip().splitlines()
            raise QAError(f"the Ray workers failed to {work}: {reason[-1] if reason else type(err).__name__}") from None

    def _pool(self) -> list:
        if not self._actors:
            ray = self._ray()
            # Each worker gets its share of the cores, so N workers never run more model threads than there are
            # cores; one that dies fails the build with its error (a rerun starts from the last generation).
            share = max(0.01, ray.cluster_resources().get("CPU", 1.0) / self.workers)
            self._actors = [ray.remote(num_cpus=share, max_restarts=0)(_worker(self._load)).remote() for _ in range(self.workers)]
        return self._actors

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

    def __enter__(self) -> "RayWorkers":
        return self

    def __exit__(self, *failure: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers, and the Ray instance this build started (a cluster it joined keeps running)."""
        if self._actors:
            import ray

            for actor in self._actors:
                ray.kill(actor)
            self._actors = []
        if self._started_here:
            import ray

            ray.shutdown()
            self._started_here = False
