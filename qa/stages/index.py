"""Persist chunks, their vectors and their lexical terms; update them incrementally.

On disk an index is a folder of generations plus a ``CURRENT`` file naming
the live one::

    index/CURRENT            -> "gen-20261122T101500-3f2a"
    index/gen-.../manifest.json, chunks.json, dense.faiss, lexical.json, glosses.json
    index/models/<model>/   the model's ONNX export for questions (qa.stages.onnx_encoder)

A build writes a complete new generation aside and then replaces ``CURRENT``
with one atomic rename, so an interrupted build leaves the previous index
exactly as it was. Files whose content hash is unchanged keep their chunks,
vectors and terms; only changed or added files are chunked and embedded.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ValidationError

from qa.errors import BadIndexError
from qa.crosslingual.gloss import GlossedWord
from qa.models import Chunk, Document

FORMAT_VERSION = 2
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
CHUNKS = "chunks.json"
DENSE = "dense.faiss"
LEXICAL = "lexical.json"
ALIASES = "aliases.json"
LEXICON = "lexicon.json"
GLOSSES = "glosses.json"
# From this many chunks, ``ann="auto"`` stores IVF-PQ instead of a flat index:
# exact search costs time in proportion to the corpus (2.8 ms a question at
# 50,000 chunks on 2 cores, 5.5 ms at 100,000, 56 ms at 1,000,000;
# benchmarks/bench.py --ann-only), while IVF-PQ stays near 1 ms or under with
# recall@10 of 0.99 or more up to 1,000,000.
IVF_FROM_CHUNKS = 50_000
IVF_VECTORS_PER_LIST = 1000
IVF_PROBES_PER_SQRT_LIST = 7
PQ_BITS = 4  # fast-scan codes: 16 centroids a subquantizer, compared in SIMD registers
PQ_DIMENSIONS_PER_CODE = 4
# k-means is trained on a sample: this many vectors per list, and per codebook centroid.
TRAINING_PER_CENTROID = 64
# Candidates the codes propose per result asked for, rescored on the exact vectors.
IVF_REFINE_FACTOR = 10
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 128
# Above the retriever's candidate pool (100): HNSW returns at most efSearch results.
HNSW_EF_SEARCH = 128


class Manifest(BaseModel):
    """What an index was built from; an index is only reused under the same recipe."""

    format_version: int
    model: str
    dimension: int
    chunk_tokens: int
    chunk_overlap_tokens: int
    lexical_analyzer: str
    chunker: str
    glosser: str
    extractor: str = ""  # qa.stages.ingest.EXTRACTOR; empty in an index older than it
    files: dict[str, str]  # source -> sha256 of its bytes
    chunk_count: int
    built_at: str


@dataclass
class StoredIndex:
    """One generation, loaded: chunk ``i`` has vector row ``i``, term list ``i`` and glosses ``i``."""

    manifest: Manifest
    chunks: list[Chunk]
    vectors: np.ndarray
    terms: list[list[str]]
    glosses: list[list[GlossedWord]]
    aliases: dict[str, list[str]] = field(default_factory=dict)
    lexicon: dict[str, list[str]] = field(default_factory=dict)
    _faiss: object | None = field(default=None, repr=False)

    @property
    def faiss_index(self):
        """Built on first use so that commands which never search dense skip it."""
        if self._faiss is None:
            import faiss

            index = faiss.IndexFlatIP(self.manifest.dimension)
            if len(self.vectors):
                index.add(self.vectors)
            self._faiss = index
        return self._faiss

    def chunks_by_source(self) -> dict[str, list[int]]:
        positions: dict[str, list[int]] = {}
        for position, chunk in enumerate(self.chunks):
            positions.setdefault(chunk.source, []).append(position)
        return positions


def exists(index_dir: Path) -> bool:
    return (index_dir / CURRENT).is_file()


def _rebuild_hint(index_dir: Path) -> str:
    return f"rebuild it with: qa index --rebuild --index-dir {index_dir}"


def _live_generation(index_dir: Path) -> Path:
    try:
        return index_dir / (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise BadIndexError(f"no index in {index_dir}: build one with: qa index") from None
    except (OSError, UnicodeDecodeError) as err:
        raise BadIndexError(f"index in {index_dir} is unreadable ({err}); {_rebuild_hint(index_dir)}") from None


def read_manifest(index_dir: Path) -> Manifest:
    """The live generation's recipe and file hashes alone: all an up-to-date check needs."""
    return _manifest_of(_live_generation(index_dir), index_dir)


def _manifest_of(generation: Path, index_dir: Path) -> Manifest:
    try:
        raw_manifest = json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise BadIndexError(f"index in {index_dir} is corrupted ({_reason(err)}); {_rebuild_hint(index_dir)}") from None
    if not isinstance(raw_manifest, dict) or raw_manifest.get("format_version") != FORMAT_VERSION:
        found = raw_manifest.get("format_version") if isinstance(raw_manifest, dict) else None
        raise BadIndexError(
            f"index in {index_dir} has format {found!r}, this qa reads format {FORMAT_VERSION}; {_rebuild_hint(index_dir)}"
        )
    try:
        return Manifest.model_validate(raw_manifest)
    except ValidationError as err:
        raise BadIndexError(f"index in {index_dir} is corrupted ({_reason(err)}); {_rebuild_hint(index_dir)}") from None


def read(index_dir: Path) -> StoredIndex:
    """Load the live generation; a damaged or foreign index is refused, never guessed at."""
    import faiss

    generation = _live_generation(index_dir)  # read once: a build may switch generations meanwhile
    manifest = _manifest_of(generation, index_dir)
    try:
        chunks = [Chunk.model_validate(c) for c in json.loads((generation / CHUNKS).read_text(encoding="utf-8"))]
        terms = json.loads((generation / LEXICAL).read_text(encoding="utf-8"))
        aliases = json.loads((generation / ALIASES).read_text(encoding="utf-8"))
        lexicon = json.loads((generation / LEXICON).read_text(encoding="utf-8"))
        glosses = [[GlossedWord(*word) for word in words] for words in json.loads((generation / GLOSSES).read_text(encoding="utf-8"))]
        dense = faiss.read_index(str(generation / DENSE))
        vectors = dense.reconstruct_n(0, dense.ntotal) if dense.ntotal else np.zeros((0, manifest.dimension), np.float32)
    except (OSError, ValueError, ValidationError, RuntimeError) as err:
        raise BadIndexError(f"index in {index_dir} is corrupted ({_reason(err)}); {_rebuild_hint(index_dir)}") from None
    if not (len(chunks) == len(terms) == len(glosses) == len(vectors) == manifest.chunk_count) or dense.d != manifest.dimension:
        raise BadIndexError(f"index in {index_dir} is corrupted (its parts disagree in size); {_rebuild_hint(index_dir)}")
    return StoredIndex(manifest, chunks, np.ascontiguousarray(vectors, dtype=np.float32), terms, glosses, aliases, lexicon, dense)


def _reason(err: Exception) -> str:
    return str(err).splitlines()[0][:200] if str(err) else type(err).__name__


def dense_kind(chunks: int, ann: str) -> str:
    """The dense index ``write`` stores for this many chunks under the ``ann`` setting.

    ``auto`` keeps exact search while it is cheap and takes IVF-PQ from
    ``IVF_FROM_CHUNKS``: about as quick to ask as HNSW, but at 1,000,000
    vectors it built in 19 s where HNSW took 11 minutes, and its codes add
    55 MiB to the exact vectors' 1,465 where HNSW's graph adds 259. IVF-PQ
    learns its codebooks from the vectors, so a corpus with fewer vectors
    than a codebook has centroids stays exact.
    """
    if ann == "auto":
        ann = "ivf" if chunks >= IVF_FROM_CHUNKS else "flat"
    if ann == "ivf" and chunks < 2**PQ_BITS:
        return "flat"
    return ann


def ivf_lists(chunks: int) -> int:
    """Inverted lists of about a thousand vectors each.

    A question scans a share of the lists (``ivf_probes``) plus every list's
    centroid; lists this size keep the centroid scan negligible up to a few
    million chunks and the k-means training that finds them to seconds.
    """
    return max(1, round(chunks / IVF_VECTORS_PER_LIST))


def ivf_probes(lists: int) -> int:
    """Lists scanned per question: seven times the square root of their count, or all of them.

    The share of lists that recall@10 >= 0.95 needs falls as the corpus grows:
    on the synthetic vectors of benchmarks/bench.py --ann it was 40% of 50
    lists, 30% of 200 and under 20% of 1,000, about as 1/sqrt(lists) falls.
    Seven times the square root meets each with a margin; scanning 4-bit codes
    is cheap enough that a small corpus is scanned whole.
    """
    return min(lists, math.ceil(IVF_PROBES_PER_SQRT_LIST * math.sqrt(lists)))


def pq_subquantizers(dimension: int) -> int:
    """About four dimensions per 4-bit code, 48 bytes a 384-d vector; the count must divide the dimension."""
    return max(m for m in range(1, max(1, dimension // PQ_DIMENSIONS_PER_CODE) + 1) if dimension % m == 0)


@contextlib.contextmanager
def _one_faiss_thread() -> Iterator[None]:
    """FAISS on the calling thread alone, for work made of short parallel steps.

    Every OpenMP step waits for its slowest thread, and a thread whose core
    another process holds waits out that process's time slice. The setting is
    per thread, so other threads keep every core.
    """
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


def _ivf_pq(vectors: np.ndarray, dimension: int):
    """IVF-PQ codes propose candidates; the exact vectors beside them rescore them.

    Keeping the exact vectors in the index lets ``read`` recover them like
    any other kind's, and makes its results exact scores, ordered as flat
    search would order them.
    """
    import faiss

    lists = ivf_lists(len(vectors))
    codes = faiss.IndexIVFPQFastScan(
        faiss.IndexFlatIP(dimension), dimension, lists, pq_subquantizers(dimension), PQ_BITS, faiss.METRIC_INNER_PRODUCT
    )
    codes.nprobe = ivf_probes(lists)
    # A small corpus has fewer vectors than faiss wants for training and would
    # print a warning per codebook; its candidates cover it whole anyway.
    codes.cp.min_points_per_centroid = codes.pq.cp.min_points_per_centroid = 1
    index = faiss.IndexRefineFlat(codes)
    index.k_factor = IVF_REFINE_FACTOR
    sample = TRAINING_PER_CENTROID * max(lists, 2**PQ_BITS)
    # k-means is thousands of short steps: at 1,000,000 vectors it trained in 5 s
    # on one thread whether the other core was busy or not, in 31 s on both
    # with it busy, 2.8 s with it free.
    with _one_faiss_thread():
        index.train(vectors[:: max(1, len(vectors) // sample)])
    return index


def dense_index(vectors: np.ndarray, dimension: int, ann: str = "auto"):
    """Exact inner-product search, IVF-PQ or an HNSW graph, as ``dense_kind`` decides.

    Each keeps the vectors themselves, so ``read`` recovers them for the next
    incremental build whichever was written.
    """
    import faiss

    kind = dense_kind(len(vectors), ann)
    if kind == "ivf":
        index = _ivf_pq(vectors, dimension)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        index = faiss.IndexFlatIP(dimension)
    if len(vectors):
        index.add(vectors)
    return index


def dense_search(index, question: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` vectors nearest one question vector, best first.

    One question is a millisecond of work or less, so it runs on one thread:
    IVF-PQ on 1,000,000 vectors took 8 ms a question on 2 threads with the
    other core busy, 1 ms on one.
    """
    with _one_faiss_thread():
        _, found = index.search(question.reshape(1, -1), k)
    return found[0][found[0] >= 0]


def write(index_dir: Path, stored: StoredIndex, ann: str = "auto") -> None:
    """Write a new generation beside the live one, then switch to it atomically."""
    import faiss

    index_dir.mkdir(parents=True, exist_ok=True)
    name = f"gen-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    staging = index_dir / f".building-{name}"
    staging.mkdir()
    try:
        _write_file(staging / CHUNKS, json.dumps([c.model_dump() for c in stored.chunks], ensure_ascii=False))
        _write_file(staging / LEXICAL, json.dumps(stored.terms, ensure_ascii=False))
        _write_file(staging / GLOSSES, json.dumps(stored.glosses, ensure_ascii=False))
        _write_file(staging / ALIASES, json.dumps(stored.aliases, ensure_ascii=False))
        _write_file(staging / LEXICON, json.dumps(stored.lexicon, ensure_ascii=False))
        faiss.write_index(dense_index(stored.vectors, stored.manifest.dimension, ann), str(staging / DENSE))
        _write_file(staging / MANIFEST, stored.manifest.model_dump_json(indent=2))
        os.replace(staging, index_dir / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = (index_dir / CURRENT).read_text(encoding="utf-8").strip() if (index_dir / CURRENT).is_file() else None
    _write_file(index_dir / f".{CURRENT}.tmp", name + "\n")
    os.replace(index_dir / f".{CURRENT}.tmp", index_dir / CURRENT)
    _fsync_dir(index_dir)
    # The generation just replaced stays until the next build: a reader that opened it
    # a moment ago (a server answering while qa index runs) can still finish.
    for old in index_dir.iterdir():
        if old.is_dir() and old.name.startswith(("gen-", ".building-")) and old.name not in (name, previous):
            shutil.rmtree(old, ignore_errors=True)


def _write_file(path: Path, content: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """One builder at a time per index folder; a second waits its turn."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class Changes:
    """How the corpus differs from what the index holds."""

    added: list[Document]
    changed: list[Document]
    removed: list[str]
    unchanged: list[Document]

    @property
    def to_embed(self) -> list[Document]:
        return self.added + self.changed

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def diff(documents: list[Document], previous: Manifest | None) -> Changes:
    known = previous.files if previous else {}
    current = {d.source for d in documents}
    return Changes(
        added=[d for d in documents if d.source not in known],
        changed=[d for d in documents if d.source in known and known[d.source] != d.sha256],
        removed=sorted(set(known) - current),
        unchanged=[d for d in documents if known.get(d.source) == d.sha256],
    )


def assemble(
    documents: list[Document],
    previous: StoredIndex | None,
    changes: Changes,
    fresh: dict[str, tuple[list[Chunk], np.ndarray, list[list[str]], list[list[GlossedWord]]]],
    manifest_fields: dict,
) -> StoredIndex:
    """The next generation's chunks, vectors, terms and glosses: kept parts of unchanged files plus fresh ones.

    The corpus-wide parts, aliases and lexicon, are the caller's to add once the chunks are known.
    """
    kept = previous.chunks_by_source() if previous else {}
    chunks: list[Chunk] = []
    rows: list[np.ndarray] = []
    terms: list[list[str]] = []
    glosses: list[list[GlossedWord]] = []
    unchanged = {d.source for d in changes.unchanged}
    for document in documents:
        if document.source in unchanged and previous is not None:
            positions = kept.get(document.source, [])
            chunks.extend(previous.chunks[p] for p in positions)
            rows.append(previous.vectors[positions] if positions else np.zeros((0, manifest_fields["dimension"]), np.float32))
            terms.extend(previous.terms[p] for p in positions)
            glosses.extend(previous.glosses[p] for p in positions)
        else:
            new_chunks, new_vectors, new_terms, new_glosses = fresh[document.source]
            chunks.extend(new_chunks)
            rows.append(new_vectors)
            terms.extend(new_terms)
            glosses.extend(new_glosses)
    vectors = np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, manifest_fields["dimension"]), np.float32)
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        files={d.source: d.sha256 for d in documents},
        chunk_count=len(chunks),
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **manifest_fields,
    )
    return StoredIndex(manifest, chunks, vectors, terms, glosses)

