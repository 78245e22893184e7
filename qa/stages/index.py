"""Persist chunks, their vectors and their lexical postings; open them lazily; update them incrementally.

On disk an index is a folder of generations plus a ``CURRENT`` file naming
the live one::

    index/CURRENT            -> "gen-20261122T101500-3f2a"
    index/gen-.../manifest.json   recipe, file hashes, counts
                  store.sqlite    chunks (text, lines, glosses), BM25 postings, aliases, each file's lexicon and their merge
                  vectors.f32     one float32 row per chunk id, memory-mapped
                  lengths.npy     terms per chunk id (-1: the id's chunk was removed)
                  dense.faiss     IVF-PQ codes or an HNSW graph; absent for exact search
                  sentences/      one float16 row per quotable sentence, in segments named by their first row
                  sentence_starts.npy   chunk id i's sentences are rows starts[i]:starts[i + 1]

Asking opens these and reads only what a question needs: the postings of its
terms, the vector rows it scores, the texts of the chunks it returns. Nothing
is parsed whole, so opening an index costs the same at 100 chunks and at
100,000 (benchmarks/scale.py).

Sentence vectors are what re-reading and abstention compare a question with:
embedded at build time, an ask reads them instead of running the model over
the best passages' sentences (0.26 of a 0.33 s cold ask on the seeds). They
outnumber the chunks five to one, so they are stored in immutable segments
that each build hard-links from the generation before and adds one to: a
changed file writes its own sentences, never a copy of everyone's. float16
halves them at no cost to a cosine (its error is about 3e-5, against the
0.02 spread of one question's cosines).

A build copies the live generation aside, applies the changes there and
replaces ``CURRENT`` with one atomic rename, so an interrupted build leaves
the previous index exactly as it was. A chunk's id is its vector row and
never changes: a changed file's old chunks are deleted, its new ones appended
with fresh ids, so one changed file rewrites its own rows and postings and
nothing else. The holes removed chunks leave are skipped by every search and
reclaimed when they outnumber the live chunks.

The manifest records the size and SHA-256 of every other file of its
generation; ``read`` checks them before trusting any (``checksums.py``), so
a damaged or partial index is refused naming the file, and ``qa index``
repairs it.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import json
import math
import os
import shutil
import sqlite3
import threading
import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ValidationError

from qa.checksums import FileSum, first_problem, folder_sums
from qa.crosslingual.gloss import GlossedWord
from qa.crosslingual.lexicon import MAX_TRANSLATIONS, Ranked, merge_lexicons
from qa.errors import BadIndexError, DamagedIndexError
from qa.models import Chunk, Document
from qa.stages.chunk import quotable_texts
from qa.stages.lexical import index_terms

if TYPE_CHECKING:
    from qa.stages.ingest import Unchanged

FORMAT_VERSION = 4
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
STORE = "store.sqlite"
VECTORS = "vectors.f32"
LENGTHS = "lengths.npy"
DENSE = "dense.faiss"
SENTENCES = "sentences"
SENTENCE_STARTS = "sentence_starts.npy"
SENTENCE_DTYPE = np.float16
# From this many chunks, ``ann="auto"`` stores IVF-PQ instead of exact search:
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
# Term frequencies are stored as uint16; a chunk never holds a term this often.
MAX_TF = 65535

_SCHEMA = """
CREATE TABLE chunks(id INTEGER PRIMARY KEY, source TEXT NOT NULL, char_start INTEGER, char_end INTEGER,
                    line_start INTEGER, line_end INTEGER, page INTEGER, text TEXT NOT NULL, glosses TEXT);
CREATE INDEX chunks_source ON chunks(source);
CREATE TABLE postings(term TEXT PRIMARY KEY, ids BLOB NOT NULL, tfs BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE aliases(source TEXT NOT NULL, key TEXT NOT NULL, name TEXT NOT NULL);
CREATE INDEX aliases_key ON aliases(key);
CREATE INDEX aliases_source ON aliases(source);
CREATE TABLE glossed(source TEXT NOT NULL, key TEXT NOT NULL, word TEXT NOT NULL);
CREATE INDEX glossed_key ON glossed(key);
CREATE INDEX glossed_source ON glossed(source);
"""
# Each file's ranked lexicon, and every (key, word) they hold with how many files hold it.
_LEXICON_SCHEMA = """
CREATE TABLE file_lexicons(source TEXT PRIMARY KEY, entries BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE lexicon(key TEXT NOT NULL, word TEXT NOT NULL, rank INTEGER NOT NULL, files INTEGER NOT NULL,
                     PRIMARY KEY(key, word)) WITHOUT ROWID;
"""
# Before per-file lexicons a generation held the merged lexicon alone, ``dictionary(key, words)``:
# it still answers questions, and the next build replaces it (``_update_lexicon``).
_LEGACY_LEXICON = "dictionary"


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
    chunk_count: int  # live chunks
    rows: int  # chunk ids handed out, holes included: rows of vectors.f32
    dense: str  # flat, ivf or hnsw
    sentence_segments: list[int] = []  # the first sentence row of each file under sentences/, ascending
    sentence_rows: int = 0  # sentence rows written, those of removed chunks included
    built_at: str
    checksums: dict[str, FileSum] = {}  # every other file of the generation -> its size and hash


@dataclass(frozen=True)
class FreshFile:
    """One added or changed file's parts, made by the build: chunk ``i`` has vector row ``i`` and sentence vectors ``sentences[i]``."""

    chunks: list[Chunk]
    vectors: np.ndarray
    sentences: list[np.ndarray]  # per chunk, one row per quotable sentence (chunk.quotable_texts)
    glosses: list[list[GlossedWord]]
    aliases: dict[str, list[str]]  # mined from the file: Latin term -> local names
    glossed: dict[str, list[str]]  # its glosses read backwards: english key -> words as written


class _Lookup:
    """A read-only mapping over one SQL query, with the ``get`` the bridges use."""

    def __init__(self, fetch: Callable[[str], list[str]]):
        self._fetch = fetch

    def get(self, key: str, default=None):
        found = self._fetch(key)
        return found if found else default

    def __contains__(self, key: str) -> bool:
        return bool(self._fetch(key))


class StoredIndex:
    """One generation, opened: the parts a question needs are read when it needs them.

    Chunk ids are rows of ``rows`` (the vectors, memory-mapped) and of
    ``lengths``; ``live`` marks the ids whose chunk still exists. The database
    is opened once, shared by threads, and never written: a generation is
    immutable once published, and stays readable by whoever opened it even
    after a later build deletes it.
    """

    def __init__(self, generation: Path, manifest: Manifest, index_dir: Path):
        self.generation = generation
        self.manifest = manifest
        self._index_dir = index_dir
        try:
            self.lengths = np.load(generation / LENGTHS)
            size = (generation / VECTORS).stat().st_size
            if len(self.lengths) != manifest.rows or size != manifest.rows * manifest.dimension * 4:
                raise DamagedIndexError(f"index in {index_dir} is damaged (its parts disagree in size); {_repair_hint(index_dir)}")
            self.rows = (
                np.memmap(generation / VECTORS, dtype=np.float32, mode="r", shape=(manifest.rows, manifest.dimension))
                if manifest.rows
                else np.zeros((0, manifest.dimension), np.float32)
            )
            self.sentence_starts = np.load(generation / SENTENCE_STARTS)
            self._sentence_segments = _open_segments(generation, manifest)
            if len(self.sentence_starts) != manifest.rows + 1 or self.sentence_starts[-1] != manifest.sentence_rows:
                raise DamagedIndexError(f"index in {index_dir} is damaged (its sentences disagree with its chunks); {_repair_hint(index_dir)}")
            self._db = sqlite3.connect(f"file:{generation / STORE}?mode=ro&immutable=1", uri=True, check_same_thread=False)
            self._db.execute("SELECT 1 FROM chunks LIMIT 1").fetchall()
            self.dense_index = _read_dense(generation) if manifest.dense != "flat" else None
        except (OSError, ValueError, sqlite3.Error, RuntimeError) as err:
            raise DamagedIndexError(f"index in {index_dir} is damaged ({_reason(err)}); {_repair_hint(index_dir)}") from None
        self.live = self.lengths >= 0
        self._lock = threading.Lock()
        tables = {name for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        self.has_file_lexicons = "file_lexicons" in tables
        self.aliases = _Lookup(self._aliases)
        self.lexicon = _Lookup(self._lexicon)

    def _query(self, sql: str, parameters: Iterable = ()) -> list[tuple]:
        try:
            with self._lock:
                return self._db.execute(sql, tuple(parameters)).fetchall()
        except sqlite3.Error as err:
            raise DamagedIndexError(f"index in {self._index_dir} is damaged ({_reason(err)}); {_repair_hint(self._index_dir)}") from None

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The ids of the chunks that hold ``term`` (ascending) and how often each holds it."""
        found = self._query("SELECT ids, tfs FROM postings WHERE term = ?", (term,))
        if not found:
            return None
        return np.frombuffer(found[0][0], dtype=np.int32), np.frombuffer(found[0][1], dtype=np.uint16)

    def chunks_at(self, ids: Iterable[int]) -> list[tuple[Chunk, list[GlossedWord]]]:
        """The chunks with these ids and their glosses, in the order asked."""
        ids = [int(i) for i in ids]
        rows = {}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            for row in self._query(f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE id IN ({','.join('?' * len(part))})", part):
                rows[row[0]] = _chunk_of(row)
        missing = [i for i in ids if i not in rows]
        if missing:
            raise DamagedIndexError(f"index in {self._index_dir} is damaged (no chunk {missing[0]}); {_repair_hint(self._index_dir)}")
        return [rows[i] for i in ids]

    def sentence_vectors(self, ids: Iterable[int]) -> list[np.ndarray]:
        """Each chunk's sentence vectors (float32, one row per quotable sentence), in the order asked."""
        firsts = self.manifest.sentence_segments
        found = []
        for chunk_id in ids:
            start, end = int(self.sentence_starts[chunk_id]), int(self.sentence_starts[chunk_id + 1])
            if start == end:
                found.append(np.zeros((0, self.manifest.dimension), np.float32))
                continue
            segment = bisect.bisect_right(firsts, start) - 1  # a chunk's sentences are written in one segment
            first = firsts[segment]
            found.append(np.asarray(self._sentence_segments[segment][start - first : end - first], dtype=np.float32))
        return found

    def vectors_by_text(self, sources: Iterable[str], view: Callable[[Chunk, list[GlossedWord]], str]) -> dict[str, np.ndarray]:
        """What the model made of these files' chunks and sentences, keyed by the text it read (``view`` of a chunk).

        An edited file is mostly the text it was: its unchanged chunks and
        sentences need no model, since a vector depends on the text alone
        (and the recipe check guarantees the same model).
        """
        ids = self.ids_of(sources)
        known: dict[str, np.ndarray] = {}
        for (chunk, glosses), row, sentences in zip(self.chunks_at(ids), self.rows[ids] if ids else [], self.sentence_vectors(ids)):
            known.update(zip(quotable_texts(chunk.text), sentences))
            known[view(chunk, glosses)] = np.asarray(row, np.float32)  # float32: a chunk's own row beats a float16 sentence row
        return known

    def each_chunk(self) -> Iterator[tuple[int, Chunk, list[GlossedWord]]]:
        """Every live chunk in id order, read as it goes: for tools and evaluation, never for asking."""
        for row in self._query(f"SELECT {_CHUNK_COLUMNS} FROM chunks ORDER BY id"):
            yield (row[0], *_chunk_of(row))

    @property
    def chunks(self) -> list[Chunk]:
        return [chunk for _, chunk, _ in self.each_chunk()]

    @property
    def glosses(self) -> list[list[GlossedWord]]:
        return [glosses for _, _, glosses in self.each_chunk()]

    @property
    def vectors(self) -> np.ndarray:
        """The live chunks' vectors, in the order of ``chunks``."""
        return np.asarray(self.rows[np.flatnonzero(self.live)])

    def ids_of(self, sources: Iterable[str]) -> list[int]:
        sources = list(sources)
        ids: list[int] = []
        for start in range(0, len(sources), 500):
            part = sources[start : start + 500]
            ids += [r[0] for r in self._query(f"SELECT id FROM chunks WHERE source IN ({','.join('?' * len(part))})", part)]
        return sorted(ids)

    def _aliases(self, key: str) -> list[str]:
        return list(dict.fromkeys(name for (name,) in self._query("SELECT name FROM aliases WHERE key = ? ORDER BY rowid", (key,))))

    def _lexicon(self, key: str) -> list[str]:
        if self.has_file_lexicons:
            words = [word for (word,) in self._query("SELECT word FROM lexicon WHERE key = ? ORDER BY rank, word LIMIT ?", (key, MAX_TRANSLATIONS))]
        else:
            found = self._query(f"SELECT words FROM {_LEGACY_LEXICON} WHERE key = ?", (key,))
            words = json.loads(found[0][0]) if found else []
        glossed = [word for (word,) in self._query("SELECT word FROM glossed WHERE key = ? ORDER BY rowid", (key,))]
        return merge_lexicons({key: words}, {key: glossed})[key]

    def file_lexicon(self, source: str) -> Ranked:
        """The ranked lexicon the build made of one file (``qa.crosslingual.lexicon.ranked``); empty before per-file lexicons."""
        if not self.has_file_lexicons:
            return {}
        found = self._query("SELECT entries FROM file_lexicons WHERE source = ?", (source,))
        return _unpack(found[0][0]) if found else {}

    def close(self) -> None:
        self._db.close()


_CHUNK_COLUMNS = "id, source, char_start, char_end, line_start, line_end, page, text, glosses"


def _chunk_of(row: tuple) -> tuple[Chunk, list[GlossedWord]]:
    _, source, char_start, char_end, line_start, line_end, page, text, glosses = row
    chunk = Chunk(source=source, char_start=char_start, char_end=char_end, line_start=line_start, line_end=line_end, page=page, text=text)
    return chunk, [GlossedWord(*word) for word in json.loads(glosses)] if glosses else []


def _segment_name(first_row: int) -> str:
    return f"{SENTENCES}/{first_row:012d}.f16"


def _open_segments(generation: Path, manifest: Manifest) -> list[np.ndarray]:
    """The sentence segments, memory-mapped; each must hold exactly the rows up to the next one's first."""
    bounds = [*manifest.sentence_segments, manifest.sentence_rows]
    segments = []
    for first, end in zip(bounds, bounds[1:]):
        path = generation / _segment_name(first)
        if path.stat().st_size != (end - first) * manifest.dimension * np.dtype(SENTENCE_DTYPE).itemsize:
            raise ValueError(f"{_segment_name(first)} has the wrong size")
        segments.append(np.memmap(path, dtype=SENTENCE_DTYPE, mode="r", shape=(end - first, manifest.dimension)))
    return segments


def _read_dense(generation: Path):
    """The approximate index, memory-mapped where FAISS can (an HNSW graph; IVF codes are small and read)."""
    import faiss

    return faiss.read_index(str(generation / DENSE), faiss.IO_FLAG_MMAP)


def exists(index_dir: Path) -> bool:
    return (index_dir / CURRENT).is_file()


def check_folder(index_dir: Path) -> None:
    """Refuse an index path that names a file, before anything tries to make folders under it."""
    if index_dir.exists() and not index_dir.is_dir():
        raise BadIndexError(f"index path {index_dir} is a file, not a folder; choose another with --index-dir")


def _repair_hint(index_dir: Path) -> str:
    return f"repair it with: qa index --index-dir {index_dir}"


def _live_generation(index_dir: Path) -> Path:
    try:
        return index_dir / (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise BadIndexError(f"no index in {index_dir}: build one with: qa index") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DamagedIndexError(f"index in {index_dir} is unreadable ({_reason(err)}); {_repair_hint(index_dir)}") from None


def read_manifest(index_dir: Path) -> Manifest:
    """The live generation's recipe and file hashes alone: all an up-to-date check needs."""
    return _manifest_of(_live_generation(index_dir), index_dir)


def _manifest_of(generation: Path, index_dir: Path) -> Manifest:
    try:
        raw_manifest = json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:
        raise DamagedIndexError(f"index in {index_dir} is damaged: {MANIFEST} is unreadable ({_reason(err)}); {_repair_hint(index_dir)}") from None
    if not isinstance(raw_manifest, dict) or raw_manifest.get("format_version") != FORMAT_VERSION:
        found = raw_manifest.get("format_version") if isinstance(raw_manifest, dict) else None
        raise DamagedIndexError(
            f"index in {index_dir} has format {found!r}, this qa reads format {FORMAT_VERSION}; {_repair_hint(index_dir)}"
        )
    try:
        manifest = Manifest.model_validate(raw_manifest)
    except ValidationError as err:
        raise DamagedIndexError(f"index in {index_dir} is damaged: {MANIFEST} is invalid ({_reason(err)}); {_repair_hint(index_dir)}") from None
    if not manifest.checksums:
        raise DamagedIndexError(f"index in {index_dir} is damaged: {MANIFEST} lists no files; {_repair_hint(index_dir)}")
    return manifest


def verify(index_dir: Path, contents: bool = True) -> Manifest:
    """The live generation's manifest, once every file it lists is there with its size (and, with ``contents``, its hash)."""
    generation = _live_generation(index_dir)
    manifest = _manifest_of(generation, index_dir)
    _check_files(generation, manifest, index_dir, contents)
    return manifest


# Opening an index hashes its files up to this size and checks the sizes of the
# rest: a flipped byte in a small collection's vectors is caught on every ask,
# while a 100,000-chunk index opens without reading hundreds of megabytes.
# ``qa index`` and ``qa index --verify`` hash everything.
HASHED_ON_OPEN = 32 * 1024 * 1024


def _check_files(generation: Path, manifest: Manifest, index_dir: Path, contents: bool | int = True) -> None:
    problem = first_problem(generation, manifest.checksums, contents)
    if problem:
        raise DamagedIndexError(f"index in {index_dir} is damaged: {problem}; {_repair_hint(index_dir)}")


def read(index_dir: Path) -> StoredIndex:
    """Open the live generation; a damaged or foreign index is refused, never guessed at."""
    generation = _live_generation(index_dir)  # read once: a build may switch generations meanwhile
    manifest = _manifest_of(generation, index_dir)
    _check_files(generation, manifest, index_dir, contents=HASHED_ON_OPEN)
    return StoredIndex(generation, manifest, index_dir)


def _reason(err: Exception) -> str:
    return str(err).splitlines()[0][:200] if str(err) else type(err).__name__


def dense_kind(chunks: int, ann: str) -> str:
    """The dense index ``write`` stores for this many chunks under the ``ann`` setting.

    ``auto`` keeps exact search while it is cheap and takes IVF-PQ from
    ``IVF_FROM_CHUNKS``: about as quick to ask as HNSW, but at 1,000,000
    vectors it built in 19 s where HNSW took 11 minutes, and its codes take
    48 bytes a vector where HNSW's graph takes 270. IVF-PQ learns its
    codebooks from the vectors, so a corpus with fewer vectors than a codebook
    has centroids stays exact.
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
    """IVF-PQ codes that propose candidates; ``dense_search`` rescores them on the exact vectors.

    The exact vectors stay in ``vectors.f32`` alone, memory-mapped, so the
    codes index is small (48 bytes a 384-d vector) and reads in milliseconds.
    """
    import faiss

    lists = ivf_lists(len(vectors))
    index = faiss.IndexIVFPQFastScan(
        faiss.IndexFlatIP(dimension), dimension, lists, pq_subquantizers(dimension), PQ_BITS, faiss.METRIC_INNER_PRODUCT
    )
    index.nprobe = ivf_probes(lists)
    # A small corpus has fewer vectors than faiss wants for training and would
    # print a warning per codebook; its candidates cover it whole anyway.
    index.cp.min_points_per_centroid = index.pq.cp.min_points_per_centroid = 1
    sample = TRAINING_PER_CENTROID * max(lists, 2**PQ_BITS)
    # k-means is thousands of short steps: at 1,000,000 vectors it trained in 5 s
    # on one thread whether the other core was busy or not, in 31 s on both
    # with it busy, 2.8 s with it free.
    with _one_faiss_thread():
        index.train(np.ascontiguousarray(vectors[:: max(1, len(vectors) // sample)]))
    return index


def dense_index(vectors: np.ndarray, ids: np.ndarray, dimension: int, kind: str):
    """IVF-PQ codes or an HNSW graph over the vectors with these ids (``kind`` from ``dense_kind``, not flat)."""
    import faiss

    if kind == "ivf":
        index = _ivf_pq(vectors, dimension)
    else:
        graph = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        graph.hnsw.efSearch = HNSW_EF_SEARCH
        index = faiss.IndexIDMap(graph)
    if len(vectors):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))
    return index


def dense_search(rows: np.ndarray, approximate, question: np.ndarray, k: int, live: np.ndarray | None = None) -> np.ndarray:
    """Ids of the ``k`` live rows nearest one question vector, best first.

    Without an approximate index every row is scored (memory-mapped, so the
    rows are read, not loaded); IVF-PQ codes or an HNSW graph propose
    ``IVF_REFINE_FACTOR`` times as many candidates, rescored on their exact
    rows. One question is a millisecond of work or less, so FAISS runs on one
    thread: IVF-PQ on 1,000,000 vectors took 8 ms a question on 2 threads
    with the other core busy, 1 ms on one. ``live`` marks the rows whose
    chunk exists (an approximate index holds those alone).
    """
    question = np.asarray(question, dtype=np.float32).reshape(-1)
    if approximate is None:
        ids = np.flatnonzero(live) if live is not None and not live.all() else None
        scores = (rows if ids is None else rows[ids]) @ question
        best = _best(scores, k)
        return best if ids is None else ids[best]
    with _one_faiss_thread():
        _, found = approximate.search(question.reshape(1, -1), k * IVF_REFINE_FACTOR)
    found = np.unique(found[0][found[0] >= 0])
    return found[_best(rows[found] @ question, k)]


def _best(scores: np.ndarray, k: int) -> np.ndarray:
    if k < len(scores):
        top = np.argpartition(-scores, k)[:k]
        return top[np.argsort(-scores[top], kind="stable")]
    return np.argsort(-scores, kind="stable")


def write(
    index_dir: Path,
    previous: StoredIndex | None,
    files: dict[str, str],
    drop: Iterable[str],
    fresh: dict[str, FreshFile],
    lexicons: dict[str, Ranked],
    manifest_fields: dict,
    ann: str = "auto",
) -> Manifest:
    """Write the next generation beside the live one, then switch to it atomically.

    It is the previous generation less the chunks of the sources in ``drop``
    (removed or changed files), plus the ``fresh`` files' parts under new ids;
    ``files`` maps every file of the corpus to the SHA-256 of its bytes.
    ``lexicons`` holds the ranked lexicons of the files whose lexicon is new:
    the fresh ones, or every file when the previous generation predates
    per-file lexicons; the dropped files' lexicons leave with them.
    When holes outnumber the live chunks, the generation is written compacted.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    name = f"gen-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    staging = index_dir / f".building-{name}"
    staging.mkdir()
    try:
        manifest = _build(staging, previous, files, list(drop), fresh, lexicons, manifest_fields, ann)
        for part in staging.rglob("*"):  # on disk before the switch: a crash never publishes a half-flushed part
            if part.is_file():
                _fsync_file(part)
            else:
                _fsync_dir(part)
        manifest = manifest.model_copy(update={"checksums": folder_sums(staging, skip=(MANIFEST,), known=_linked_sums(previous, staging))})
        _write_file(staging / MANIFEST, manifest.model_dump_json(indent=2))
        _fsync_dir(staging)
        os.replace(staging, index_dir / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        previous_name: str | None = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):  # none yet, or a damaged one this build replaces
        previous_name = None
    _write_file(index_dir / f".{CURRENT}.tmp", name + "\n")
    os.replace(index_dir / f".{CURRENT}.tmp", index_dir / CURRENT)
    _fsync_dir(index_dir)
    # The generation just replaced stays until the next build: a reader that opened it
    # a moment ago (a server answering while qa index runs) can still finish.
    for old in index_dir.iterdir():
        if old.is_dir() and old.name.startswith(("gen-", ".building-")) and old.name not in (name, previous_name):
            shutil.rmtree(old, ignore_errors=True)
    return manifest


def _build(
    staging: Path,
    previous: StoredIndex | None,
    files: dict[str, str],
    drop: list[str],
    fresh: dict[str, FreshFile],
    lexicons: dict[str, Ranked],
    manifest_fields: dict,
    ann: str,
) -> Manifest:
    dimension = manifest_fields["dimension"]
    dead = previous.ids_of(drop) if previous is not None else []
    if previous is not None and _needs_compacting(previous, len(dead), sum(len(f.chunks) for f in fresh.values())):
        return _compacted(staging, previous, files, drop, fresh, lexicons, manifest_fields, ann)
    if previous is not None:
        shutil.copyfile(previous.generation / STORE, staging / STORE)
        shutil.copyfile(previous.generation / VECTORS, staging / VECTORS)
        (staging / SENTENCES).mkdir()
        for first in previous.manifest.sentence_segments:
            _link(previous.generation / _segment_name(first), staging / _segment_name(first))
        segments = list(previous.manifest.sentence_segments)
        sentence_starts = previous.sentence_starts.copy()
        lengths = previous.lengths.copy()
        dead_chunks = previous.chunks_at(dead)
        previous_kind = previous.manifest.dense
    else:
        (staging / SENTENCES).mkdir()
        segments = []
        sentence_starts = np.zeros(1, np.int64)
        lengths = np.zeros(0, np.int32)
        dead_chunks = []
        previous_kind = "flat"
    database = sqlite3.connect(staging / STORE)
    try:
        if previous is None:
            database.executescript(_SCHEMA + _LEXICON_SCHEMA)
        first = len(lengths)
        new_ids, new_lengths, new_terms = [], [], []
        with database:
            for start in range(0, len(dead), 500):
                part = dead[start : start + 500]
                database.execute(f"DELETE FROM chunks WHERE id IN ({','.join('?' * len(part))})", part)
            for table in ("aliases", "glossed"):
                for start in range(0, len(drop), 500):
                    part = drop[start : start + 500]
                    database.execute(f"DELETE FROM {table} WHERE source IN ({','.join('?' * len(part))})", part)
            next_id = first
            chunk_rows, alias_rows, glossed_rows = [], [], []
            for source, parts in fresh.items():
                for chunk, glosses in zip(parts.chunks, parts.glosses):
                    terms = index_terms(chunk.text)
                    chunk_rows.append(
                        (next_id, chunk.source, chunk.char_start, chunk.char_end, chunk.line_start, chunk.line_end, chunk.page, chunk.text,
                         json.dumps(glosses, ensure_ascii=False) if glosses else None)
                    )
                    new_ids.append(next_id)
                    new_lengths.append(len(terms))
                    new_terms.append(terms)
                    next_id += 1
                alias_rows += [(source, key, name) for key, names in parts.aliases.items() for name in names]
                glossed_rows += [(source, key, word) for key, words in parts.glossed.items() for word in words]
            database.executemany(f"INSERT INTO chunks({_CHUNK_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", chunk_rows)
            database.executemany("INSERT INTO aliases VALUES (?,?,?)", alias_rows)
            database.executemany("INSERT INTO glossed VALUES (?,?,?)", glossed_rows)
            _update_lexicon(database, previous, drop, lexicons)
            _update_postings(database, [index_terms(chunk.text) for chunk, _ in dead_chunks], dead, new_terms, new_ids, fresh_index=previous is None)
    finally:
        database.close()
    lengths = np.concatenate([lengths, np.asarray(new_lengths, np.int32)]).astype(np.int32)
    lengths[dead] = -1
    np.save(staging / LENGTHS, lengths)
    new_vectors = [parts.vectors for parts in fresh.values() if len(parts.chunks)]
    with open(staging / VECTORS, "ab") as handle:
        for block in new_vectors:
            handle.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())
        handle.flush()
        os.fsync(handle.fileno())
    new_sentences = [rows for parts in fresh.values() for rows in parts.sentences]
    sentence_rows = int(sentence_starts[-1])
    if sum(len(rows) for rows in new_sentences):
        segments.append(sentence_rows)
        with open(staging / _segment_name(sentence_rows), "wb") as handle:
            for rows in new_sentences:
                handle.write(np.ascontiguousarray(rows, dtype=SENTENCE_DTYPE).tobytes())
    counts = np.asarray([len(rows) for rows in new_sentences], np.int64)
    sentence_starts = np.concatenate([sentence_starts, sentence_rows + np.cumsum(counts)]).astype(np.int64)
    np.save(staging / SENTENCE_STARTS, sentence_starts)
    live = int((lengths >= 0).sum())
    kind = dense_kind(live, ann)
    if kind != "flat":
        rows = np.memmap(staging / VECTORS, dtype=np.float32, mode="r", shape=(len(lengths), dimension)) if len(lengths) else np.zeros((0, dimension), np.float32)
        _write_dense(staging, previous, previous_kind, kind, rows, lengths, np.asarray(dead, np.int64), np.asarray(new_ids, np.int64), dimension)
    return Manifest(
        format_version=FORMAT_VERSION,
        files=files,
        chunk_count=live,
        rows=len(lengths),
        dense=kind,
        sentence_segments=segments,
        sentence_rows=int(sentence_starts[-1]),
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **manifest_fields,
    )


def _needs_compacting(previous: StoredIndex, dying: int, adding: int) -> bool:
    holes = int((~previous.live).sum()) + dying
    live = int(previous.live.sum()) - dying + adding
    return holes > max(live, 1000)


def _compacted(staging, previous, files, drop, fresh, lexicons, manifest_fields, ann) -> Manifest:
    """A from-scratch write of the kept chunks and the fresh ones: ids dense again, the holes gone."""
    kept_sources = sorted({chunk.source for chunk in previous.chunks} - set(drop))
    kept: dict[str, FreshFile] = {}
    for source in kept_sources:
        ids = previous.ids_of([source])
        parts = previous.chunks_at(ids)
        aliases: dict[str, list[str]] = defaultdict(list)
        glossed: dict[str, list[str]] = defaultdict(list)
        for table, into in (("aliases", aliases), ("glossed", glossed)):
            for key, value in previous._query(f"SELECT key, {'name' if table == 'aliases' else 'word'} FROM {table} WHERE source = ? ORDER BY rowid", (source,)):
                into[key].append(value)
        kept[source] = FreshFile(
            [c for c, _ in parts], np.asarray(previous.rows[ids]), previous.sentence_vectors(ids), [g for _, g in parts], dict(aliases), dict(glossed)
        )
    kept_lexicons = {source: previous.file_lexicon(source) for source in kept_sources}
    return _build(staging, None, files, [], {**kept, **fresh}, {**kept_lexicons, **lexicons}, manifest_fields, ann)


def _update_lexicon(database: sqlite3.Connection, previous: StoredIndex | None, drop: list[str], lexicons: dict[str, Ranked]) -> None:
    """Take the dropped and renewed files' lexicons out, put the new ones in, and keep each pair's count of files.

    ``lexicon`` holds every (key, word) some file's lexicon has, with its rank
    and how many files have it; a question reads a key's best-ranked words.
    A file's own lexicon is kept (compressed) so that it can leave again
    without reading any other file.
    """
    if previous is not None and not previous.has_file_lexicons:  # an older generation: its merged lexicon goes
        database.execute(f"DROP TABLE IF EXISTS {_LEGACY_LEXICON}")
        for statement in filter(str.strip, _LEXICON_SCHEMA.split(";")):
            database.execute(statement)
    counts: Counter[tuple[str, str]] = Counter()
    ranks: dict[tuple[str, str], int] = {}
    leaving = sorted(set(drop) | set(lexicons)) if previous is not None and previous.has_file_lexicons else []
    for start in range(0, len(leaving), 500):
        part = leaving[start : start + 500]
        marks = ",".join("?" * len(part))
        for (entries,) in database.execute(f"SELECT entries FROM file_lexicons WHERE source IN ({marks})", part):
            for key, words in _unpack(entries).items():
                counts.update({(key, word): -1 for word in words})
        database.execute(f"DELETE FROM file_lexicons WHERE source IN ({marks})", part)
    for source, lexicon in lexicons.items():
        database.execute("INSERT INTO file_lexicons VALUES (?,?)", (source, _pack(lexicon)))
        for key, words in lexicon.items():
            for word, rank in words.items():
                counts[(key, word)] += 1
                ranks[(key, word)] = rank
    database.executemany(
        "INSERT INTO lexicon VALUES (?,?,?,?) ON CONFLICT(key, word) DO UPDATE SET files = files + excluded.files",
        ((key, word, ranks.get((key, word), 0), change) for (key, word), change in counts.items() if change),
    )
    database.execute("DELETE FROM lexicon WHERE files <= 0")


def _pack(lexicon: Ranked) -> bytes:
    return zlib.compress(json.dumps(lexicon, ensure_ascii=False, separators=(",", ":")).encode())


def _unpack(entries: bytes) -> Ranked:
    return json.loads(zlib.decompress(entries))


def _update_postings(
    database: sqlite3.Connection,
    dead_terms: list[list[str]],
    dead_ids: list[int],
    new_terms: list[list[str]],
    new_ids: list[int],
    fresh_index: bool,
) -> None:
    """Take the dead ids out of their terms' postings and append the new ids (all above every old id)."""
    removed: dict[str, list[int]] = defaultdict(list)
    for chunk_id, terms in zip(dead_ids, dead_terms):
        for term in set(terms):
            removed[term].append(chunk_id)
    added: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for chunk_id, terms in zip(new_ids, new_terms):
        for term, count in Counter(terms).items():
            ids, tfs = added[term]
            ids.append(chunk_id)
            tfs.append(min(count, MAX_TF))
    if fresh_index:
        database.executemany(
            "INSERT INTO postings VALUES (?,?,?)",
            ((term, np.asarray(ids, np.int32).tobytes(), np.asarray(tfs, np.uint16).tobytes()) for term, (ids, tfs) in added.items()),
        )
        return
    for term in set(removed) | set(added):
        row = database.execute("SELECT ids, tfs FROM postings WHERE term = ?", (term,)).fetchone()
        ids = np.frombuffer(row[0], np.int32) if row else np.zeros(0, np.int32)
        tfs = np.frombuffer(row[1], np.uint16) if row else np.zeros(0, np.uint16)
        if term in removed:
            keep = ~np.isin(ids, removed[term])
            ids, tfs = ids[keep], tfs[keep]
        if term in added:
            ids = np.concatenate([ids, np.asarray(added[term][0], np.int32)])
            tfs = np.concatenate([tfs, np.asarray(added[term][1], np.uint16)])
        if len(ids):
            database.execute("INSERT OR REPLACE INTO postings VALUES (?,?,?)", (term, ids.tobytes(), tfs.tobytes()))
        elif row:
            database.execute("DELETE FROM postings WHERE term = ?", (term,))


def _write_dense(staging, previous, previous_kind, kind, rows, lengths, dead, new_ids, dimension) -> None:
    """IVF codes are updated in place of a retraining when the previous generation has them; HNSW is rebuilt."""
    import faiss

    index = None
    if previous is not None and previous_kind == kind == "ivf" and previous.dense_index is not None:
        index = faiss.read_index(str(previous.generation / DENSE))  # a copy to change, not the mapped one
        if len(dead):
            index.remove_ids(dead)
        if len(new_ids):
            index.add_with_ids(np.ascontiguousarray(rows[new_ids]), new_ids)
    if index is None:
        ids = np.flatnonzero(lengths >= 0)
        index = dense_index(np.asarray(rows[ids]), ids, dimension, kind)
    faiss.write_index(index, str(staging / DENSE))


def _linked_sums(previous: StoredIndex | None, staging: Path) -> dict:
    """The recorded sums of the files ``staging`` shares with the previous generation: those need no reading."""
    if previous is None:
        return {}
    shared = {}
    for name, total in previous.manifest.checksums.items():
        mine, theirs = staging / name, previous.generation / name
        if name.startswith(f"{SENTENCES}/") and mine.exists() and theirs.exists() and os.path.samefile(mine, theirs):
            shared[name] = total
    return shared


def _link(source: Path, target: Path) -> None:
    """Share an immutable file between generations; copy it where the file system has no hard links."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _write_file(path: Path, content: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@contextlib.contextmanager
def build_lock(index_dir: Path, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """One builder at a time per index folder; a second says whom it waits for, then waits its turn.

    The holder writes its process id into the lock file, so the one waiting can name it.
    """
    check_folder(index_dir)
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BadIndexError(f"cannot make the index folder {index_dir}: {error.strerror or error}") from None
    descriptor = os.open(index_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                holder = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip() or "unknown"
                on_wait(holder)
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(descriptor, 0)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


@dataclass
class Changes:
    """How the corpus differs from what the index holds."""

    added: list[Document]
    changed: list[Document]
    removed: list[str]
    unchanged: list[Document | Unchanged]

    @property
    def to_embed(self) -> list[Document]:
        return self.added + self.changed

    @property
    def changed_sources(self) -> list[str]:
        return [d.source for d in self.changed]

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def diff(documents: list[Document], previous: Manifest | None, unread: Sequence[Unchanged] = ()) -> Changes:
    """``documents`` were read; ``unread`` files were not, since they look as they did when indexed."""
    known = previous.files if previous else {}
    current = {d.source for d in documents} | {d.source for d in unread}
    return Changes(
        added=[d for d in documents if d.source not in known],
        changed=[d for d in documents if d.source in known and known[d.source] != d.sha256],
        removed=sorted(set(known) - current),
        unchanged=[*(d for d in documents if known.get(d.source) == d.sha256), *unread],
    )
