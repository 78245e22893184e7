"""Persist chunks, their vectors and their lexical postings; open them lazily; update them incrementally.

On disk an index is a folder of generations plus a ``CURRENT`` file naming
the live one::

    index/CURRENT            -> "gen-20261122T101500-3f2a"
    index/gen-.../manifest.json   recipe, file hashes, counts, segments, checksums
                  catalog.sqlite  each file's segment, aliases, glosses read backwards, the merged lexicon
                  lengths.npy     terms per chunk id (-1: the id's chunk was removed)
                  sentence_starts.npy   chunk id i's sentences are rows starts[i]:starts[i + 1]
                  dense.faiss     IVF-PQ codes or an HNSW graph; absent for exact search
                  segments/<first id>/store.sqlite    chunks (text, lines, glosses), BM25 postings, file lexicons
                                     /vectors.f32     one float32 row per chunk id, memory-mapped
                                     /sentences.f16   one float16 row per quotable sentence

Asking opens these and reads only what a question needs: the postings of its
terms, the vector rows it scores, the texts of the chunks it returns. Nothing
is parsed whole, so opening an index costs the same at 100 chunks and at
100,000 (benchmarks/scale.py).

A segment holds a run of chunk ids and never changes once written, like a
Lucene segment: each build hard-links the segments it keeps from the
generation before and writes one new segment for the files it adds or
changes, so one changed file writes its own chunks, never a copy of
everyone's (copying the store and vectors was 1.5 s of a 5.4 s update at
100,000 chunks). A changed file's old chunks stay in their segment as holes,
masked by ``lengths``; the small newest segments are merged as they
accumulate (``segments_to_merge``), and every hole is reclaimed when holes
outnumber the live chunks. The per-file tables that every build edits are
small and live in the catalog, copied each time.

Sentence vectors are what re-reading and abstention compare a question with:
embedded at build time, an ask reads them instead of running the model over
the best passages' sentences (0.26 of a 0.33 s cold ask on the seeds).
float16 halves them at no cost to a cosine (its error is about 3e-5, against
the 0.02 spread of one question's cosines).

A build writes the next generation beside the live one and replaces
``CURRENT`` with one atomic rename, so an interrupted build leaves the
previous index exactly as it was. A chunk's id is its vector row and never
changes until compaction: a changed file's old chunks are deleted, its new
ones appended with fresh ids.

The manifest records the size and SHA-256 of every other file of its
generation; ``read`` checks them before trusting any (``checksums.py``), so
a damaged or partial index is refused naming the file, and ``qa index``
repairs it.
"""

from __future__ import annotations

import contextlib
import functools
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
from qa.stages.ingest.base import Extraction
from qa.stages.ingest.store import ExtractStore
from qa.stages.lexical import index_terms

if TYPE_CHECKING:
    from qa.stages.ingest import Unchanged

FORMAT_VERSION = 5
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
CATALOG = "catalog.sqlite"
LENGTHS = "lengths.npy"
DENSE = "dense.faiss"
SENTENCE_STARTS = "sentence_starts.npy"
SEGMENTS = "segments"
STORE = "store.sqlite"  # in each segment
VECTORS = "vectors.f32"  # in each segment
SENTENCES = "sentences.f16"  # in each segment
SENTENCE_DTYPE = np.float16
# A build folds the newest segments into the one it writes while each is at most
# this many times what the new one holds so far: segment sizes grow geometrically
# from the newest, so a collection has a handful of segments (log base 4 of its
# size) and a chunk is rewritten a handful of times in its life.
MERGE_RATIO = 4
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

_SEGMENT_SCHEMA = """
CREATE TABLE chunks(id INTEGER PRIMARY KEY, source TEXT NOT NULL, char_start INTEGER, char_end INTEGER,
                    line_start INTEGER, line_end INTEGER, page INTEGER, text TEXT NOT NULL, glosses TEXT);
CREATE INDEX chunks_source ON chunks(source);
CREATE TABLE postings(term TEXT PRIMARY KEY, ids BLOB NOT NULL, tfs BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE file_lexicons(source TEXT PRIMARY KEY, entries BLOB NOT NULL) WITHOUT ROWID;
"""
# ``sources``: the segment that holds each file's chunks and lexicon. ``lexicon``: every (key, word)
# the files' lexicons hold, with how many files hold it.
_CATALOG_SCHEMA = """
CREATE TABLE sources(source TEXT PRIMARY KEY, segment INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE aliases(source TEXT NOT NULL, key TEXT NOT NULL, name TEXT NOT NULL);
CREATE INDEX aliases_key ON aliases(key);
CREATE INDEX aliases_source ON aliases(source);
CREATE TABLE glossed(source TEXT NOT NULL, key TEXT NOT NULL, word TEXT NOT NULL);
CREATE INDEX glossed_key ON glossed(key);
CREATE INDEX glossed_source ON glossed(source);
CREATE TABLE lexicon(key TEXT NOT NULL, word TEXT NOT NULL, rank INTEGER NOT NULL, files INTEGER NOT NULL,
                     PRIMARY KEY(key, word)) WITHOUT ROWID;
"""


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
    segments: list[int]  # the first chunk id of each segment, ascending; a segment runs to the next one's first
    sentence_rows: int  # sentence rows written, those of removed chunks included
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


class Rows:
    """The chunk vectors of every segment, read as one matrix indexed by chunk id.

    Each segment's rows are memory-mapped; indexing gathers the rows asked
    for from the segments that hold them, in the order asked.
    """

    def __init__(self, parts: list[np.ndarray], firsts: list[int], dimension: int):
        self._parts = parts
        self._firsts = np.asarray(firsts, np.int64)
        self.shape = (sum(len(part) for part in parts), dimension)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, ids) -> np.ndarray:
        ids = np.asarray(ids)
        if ids.ndim == 0:
            return self[ids.reshape(1)][0]
        found = np.empty((len(ids), self.shape[1]), np.float32)
        if not len(ids):
            return found
        if (ids < 0).any() or (ids >= self.shape[0]).any():
            raise IndexError("chunk id out of range")
        which = np.searchsorted(self._firsts, ids, side="right") - 1
        for segment in np.unique(which):
            mine = which == segment
            found[mine] = self._parts[segment][ids[mine] - self._firsts[segment]]
        return found

    def __matmul__(self, vector: np.ndarray) -> np.ndarray:
        if not self._parts:
            return np.zeros(0, np.float32)
        return np.concatenate([part @ vector for part in self._parts])


@dataclass(frozen=True)
class _Segment:
    first: int  # its first chunk id
    database: sqlite3.Connection
    vectors: np.ndarray  # rows first:end
    sentences: np.ndarray  # rows sentence_starts[first]:sentence_starts[end]
    first_sentence: int


class StoredIndex:
    """One generation, opened: the parts a question needs are read when it needs them.

    Chunk ids are rows of ``rows`` (the segments' vectors, memory-mapped) and
    of ``lengths``; ``live`` marks the ids whose chunk still exists. The
    databases are opened once, shared by threads, and never written: a
    generation is immutable once published, and stays readable by whoever
    opened it even after a later build deletes it.
    """

    def __init__(self, generation: Path, manifest: Manifest, index_dir: Path):
        self.generation = generation
        self.manifest = manifest
        self._index_dir = index_dir
        self._segments: list[_Segment] = []
        try:
            self.lengths = np.load(generation / LENGTHS)
            self.sentence_starts = np.load(generation / SENTENCE_STARTS)
            if len(self.lengths) != manifest.rows:
                raise DamagedIndexError(f"index in {index_dir} is damaged (its parts disagree in size); {_repair_hint(index_dir)}")
            if len(self.sentence_starts) != manifest.rows + 1 or self.sentence_starts[-1] != manifest.sentence_rows:
                raise DamagedIndexError(f"index in {index_dir} is damaged (its sentences disagree with its chunks); {_repair_hint(index_dir)}")
            self._catalog = _open_database(generation / CATALOG)
            bounds = [*manifest.segments, manifest.rows]
            for first, end in zip(bounds, bounds[1:]):
                self._segments.append(_open_segment(generation, first, end, self.sentence_starts, manifest.dimension))
            self.dense_index = _read_dense(generation) if manifest.dense != "flat" else None
        except (OSError, ValueError, sqlite3.Error, RuntimeError) as err:
            raise DamagedIndexError(f"index in {index_dir} is damaged ({_reason(err)}); {_repair_hint(index_dir)}") from None
        self.rows = Rows([segment.vectors for segment in self._segments], manifest.segments, manifest.dimension)
        self._firsts = np.asarray(manifest.segments, np.int64)
        self._by_first = {segment.first: segment for segment in self._segments}
        self.live = self.lengths >= 0
        self._lock = threading.Lock()
        self.aliases = _Lookup(self._aliases)
        self.lexicon = _Lookup(self._lexicon)

    def _query(self, sql: str, parameters: Iterable = (), database: sqlite3.Connection | None = None) -> list[tuple]:
        """Rows of one query on the catalog, or on a segment's store."""
        try:
            with self._lock:
                return (database or self._catalog).execute(sql, tuple(parameters)).fetchall()
        except sqlite3.Error as err:
            raise DamagedIndexError(f"index in {self._index_dir} is damaged ({_reason(err)}); {_repair_hint(self._index_dir)}") from None

    def _segment_of(self, chunk_id: int) -> _Segment:
        return self._segments[int(np.searchsorted(self._firsts, chunk_id, side="right")) - 1]

    def nearest(self, vector: np.ndarray, k: int) -> np.ndarray:
        """Ids of the ``k`` live chunks whose vectors are nearest the question's, best first."""
        return dense_search(self.rows, self.dense_index, vector, k, self.live)

    def vectors_at(self, ids: Iterable[int]) -> np.ndarray:
        """The chunk vectors of these ids (float32), in the order asked."""
        return self.rows[np.asarray(ids, dtype=np.int64)]

    def read_ahead(self, terms: Iterable[str]) -> None:
        """Postings are read from the segments' stores when asked for: a lookup on this machine is cheaper than a batch."""

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The ids of the live chunks that hold ``term`` (ascending) and how often each holds it."""
        ids, tfs = [], []
        for segment in self._segments:
            found = self._query("SELECT ids, tfs FROM postings WHERE term = ?", (term,), segment.database)
            if found:
                ids.append(np.frombuffer(found[0][0], dtype=np.int32))
                tfs.append(np.frombuffer(found[0][1], dtype=np.uint16))
        if not ids:
            return None
        ids_found, tfs_found = (ids[0], tfs[0]) if len(ids) == 1 else (np.concatenate(ids), np.concatenate(tfs))
        keep = self.live[ids_found]
        if not keep.all():
            ids_found, tfs_found = ids_found[keep], tfs_found[keep]
        return (ids_found, tfs_found) if len(ids_found) else None

    def chunks_at(self, ids: Iterable[int]) -> list[tuple[Chunk, list[GlossedWord]]]:
        """The chunks with these ids and their glosses, in the order asked."""
        ids = [int(i) for i in ids]
        by_segment: dict[int, list[int]] = defaultdict(list)
        for chunk_id in ids:
            if 0 <= chunk_id < self.manifest.rows:
                by_segment[self._segment_of(chunk_id).first].append(chunk_id)
        rows = {}
        for segment in self._segments:
            wanted = by_segment.get(segment.first, [])
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                for row in self._query(f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE id IN ({','.join('?' * len(part))})", part, segment.database):
                    rows[row[0]] = _chunk_of(row)
        missing = [i for i in ids if i not in rows]
        if missing:
            raise DamagedIndexError(f"index in {self._index_dir} is damaged (no chunk {missing[0]}); {_repair_hint(self._index_dir)}")
        return [rows[i] for i in ids]

    def sentence_vectors(self, ids: Iterable[int]) -> list[np.ndarray]:
        """Each chunk's sentence vectors (float32, one row per quotable sentence), in the order asked."""
        found = []
        for chunk_id in ids:
            start, end = int(self.sentence_starts[chunk_id]), int(self.sentence_starts[chunk_id + 1])
            segment = self._segment_of(chunk_id)
            found.append(np.asarray(segment.sentences[start - segment.first_sentence : end - segment.first_sentence], dtype=np.float32))
        return found

    def vectors_by_text(self, sources: Iterable[str], view: Callable[[Chunk, list[GlossedWord]], str]) -> dict[str, np.ndarray]:
        """What the model made of these files' chunks and sentences, keyed by the text it read (``view`` of a chunk).

        An edited file is mostly the text it was: its unchanged chunks and
        sentences need no model, since a vector depends on the text alone
        (and the recipe check guarantees the same model).
        """
        ids = self.ids_of(sources)
        known: dict[str, np.ndarray] = {}
        for (chunk, glosses), row, sentences in zip(self.chunks_at(ids), self.rows[ids], self.sentence_vectors(ids)):
            known.update(zip(quotable_texts(chunk.text), sentences))
            known[view(chunk, glosses)] = row  # float32: a chunk's own row beats a float16 sentence row
        return known

    def each_chunk(self) -> Iterator[tuple[int, Chunk, list[GlossedWord]]]:
        """Every live chunk in id order, read as it goes: for tools and evaluation, never for asking."""
        for segment in self._segments:
            for row in self._query(f"SELECT {_CHUNK_COLUMNS} FROM chunks ORDER BY id", (), segment.database):
                if self.live[row[0]]:
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
        return self.rows[np.flatnonzero(self.live)]

    def segment_of_files(self, sources: Iterable[str]) -> dict[str, int]:
        """The first chunk id of the segment that holds each of these files."""
        sources = list(sources)
        found: dict[str, int] = {}
        for start in range(0, len(sources), 500):
            part = sources[start : start + 500]
            found.update(self._query(f"SELECT source, segment FROM sources WHERE source IN ({','.join('?' * len(part))})", part))
        return found

    def ids_of(self, sources: Iterable[str]) -> list[int]:
        by_segment: dict[int, list[str]] = defaultdict(list)
        for source, first in self.segment_of_files(sources).items():
            by_segment[first].append(source)
        ids: list[int] = []
        for segment in self._segments:
            wanted = by_segment.get(segment.first, [])
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                marks = ",".join("?" * len(part))
                ids += [r[0] for r in self._query(f"SELECT id FROM chunks WHERE source IN ({marks})", part, segment.database) if self.live[r[0]]]
        return sorted(ids)

    def _aliases(self, key: str) -> list[str]:
        return catalog_aliases(self._query, key)

    def _lexicon(self, key: str) -> list[str]:
        return catalog_lexicon(self._query, key)

    @property
    def name(self) -> str:
        return self.generation.name

    def extraction(self, sha256: str) -> Extraction | None:
        """The text and pages extracted from the file with these bytes, as the index quoted it."""
        return ExtractStore(self._index_dir, self.manifest.extractor).load(sha256)

    def segment_parts(self) -> list[SegmentParts]:
        """Each segment's whole content, for copying the generation into another store."""
        bounds = [*self.manifest.segments, self.manifest.rows]
        parts = []
        for segment, end in zip(self._segments, bounds[1:]):
            name = f"{segment_folder(segment.first)}/{STORE}"
            parts.append(
                SegmentParts(
                    first=segment.first,
                    end=end,
                    digest=self.manifest.checksums[name].sha256,
                    vectors=segment.vectors,
                    sentences=segment.sentences,
                    first_sentence=segment.first_sentence,
                    chunk_rows=functools.partial(self._segment_chunks, segment),
                    postings=functools.partial(self._segment_postings, segment),
                )
            )
        return parts

    def _segment_chunks(self, segment: _Segment) -> Iterator[tuple[int, Chunk, list[GlossedWord]]]:
        for row in self._query(f"SELECT {_CHUNK_COLUMNS} FROM chunks ORDER BY id", (), segment.database):
            yield (row[0], *_chunk_of(row))

    def _segment_postings(self, segment: _Segment) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        for term, ids, tfs in self._query("SELECT term, ids, tfs FROM postings ORDER BY term", (), segment.database):
            yield term, np.frombuffer(ids, dtype=np.int32), np.frombuffer(tfs, dtype=np.uint16)

    def file_lexicon(self, source: str) -> Ranked:
        """The ranked lexicon the build made of one file (``qa.crosslingual.lexicon.ranked``); empty for a file it does not hold."""
        first = self.segment_of_files([source]).get(source)
        if first is None:
            return {}
        found = self._query("SELECT entries FROM file_lexicons WHERE source = ?", (source,), self._by_first[first].database)
        return _unpack(found[0][0]) if found else {}

    def close(self) -> None:
        self._catalog.close()
        for segment in self._segments:
            segment.database.close()


_CHUNK_COLUMNS = "id, source, char_start, char_end, line_start, line_end, page, text, glosses"


@dataclass(frozen=True)
class SegmentParts:
    """One segment as written: chunk ids ``first:end`` (removed ones included, masked by ``lengths``)."""

    first: int
    end: int
    digest: str  # the SHA-256 of its store: names this content wherever it is copied
    vectors: np.ndarray  # rows first:end
    sentences: np.ndarray  # rows first_sentence:, float16
    first_sentence: int
    chunk_rows: Callable[[], Iterator[tuple[int, Chunk, list[GlossedWord]]]]
    postings: Callable[[], Iterator[tuple[str, np.ndarray, np.ndarray]]]  # term, ids, term frequencies


def catalog_aliases(query: Callable[[str, tuple], list[tuple]], key: str) -> list[str]:
    """The local names a catalog maps a Latin term to, first mined first."""
    return list(dict.fromkeys(name for (name,) in query("SELECT name FROM aliases WHERE key = ? ORDER BY rowid", (key,))))


def catalog_lexicon(query: Callable[[str, tuple], list[tuple]], key: str) -> list[str]:
    """A catalog's translations of an English key: the dictionary's ranked words, then the glosses read backwards."""
    words = [word for (word,) in query("SELECT word FROM lexicon WHERE key = ? ORDER BY rank, word LIMIT ?", (key, MAX_TRANSLATIONS))]
    glossed = [word for (word,) in query("SELECT word FROM glossed WHERE key = ? ORDER BY rowid", (key,))]
    return merge_lexicons({key: words}, {key: glossed})[key]


def _chunk_of(row: tuple) -> tuple[Chunk, list[GlossedWord]]:
    _, source, char_start, char_end, line_start, line_end, page, text, glosses = row
    chunk = Chunk(source=source, char_start=char_start, char_end=char_end, line_start=line_start, line_end=line_end, page=page, text=text)
    return chunk, [GlossedWord(*word) for word in json.loads(glosses)] if glosses else []


def _open_database(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise FileNotFoundError(f"{path.name} is missing")
    database = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
    database.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    return database


def segment_folder(first: int) -> str:
    return f"{SEGMENTS}/{first:012d}"


def _segment_files(first: int) -> list[str]:
    return [f"{segment_folder(first)}/{name}" for name in (STORE, VECTORS, SENTENCES)]


def _open_segment(generation: Path, first: int, end: int, sentence_starts: np.ndarray, dimension: int) -> _Segment:
    vectors, sentences = _segment_rows(generation, first, end, sentence_starts, dimension)
    return _Segment(first, _open_database(generation / segment_folder(first) / STORE), vectors, sentences, int(sentence_starts[first]))


def _segment_rows(generation: Path, first: int, end: int, sentence_starts: np.ndarray, dimension: int) -> tuple[np.ndarray, np.ndarray]:
    """A segment's chunk and sentence vectors, memory-mapped; each file must hold exactly the rows of its ids."""
    folder = generation / segment_folder(first)
    first_sentence, end_sentence = int(sentence_starts[first]), int(sentence_starts[end])
    parts = []
    for name, dtype, count in ((VECTORS, np.float32, end - first), (SENTENCES, SENTENCE_DTYPE, end_sentence - first_sentence)):
        path = folder / name
        if path.stat().st_size != count * dimension * np.dtype(dtype).itemsize:
            raise ValueError(f"{segment_folder(first)}/{name} has the wrong size")
        parts.append(np.memmap(path, dtype=dtype, mode="r", shape=(count, dimension)) if count else np.zeros((0, dimension), dtype))
    return parts[0], parts[1]


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


def current_mark(index_dir: Path) -> tuple[int, int] | None:
    """What identifies the live generation's ``CURRENT`` file without reading it: a build replaces the file (a new inode)."""
    try:
        stat = (index_dir / CURRENT).stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns


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
# ``qa index`` does the same before it builds on a generation, and hashes every
# segment it merges before reading it, so damage is never carried into a file
# with a fresh checksum; a segment it keeps is shared, not read, and was hashed
# when it was written. ``qa index --verify`` hashes everything.
HASHED_ON_OPEN = 32 * 1024 * 1024


def _check_files(generation: Path, manifest: Manifest, index_dir: Path, contents: bool | int = True) -> None:
    problem = first_problem(generation, manifest.checksums, contents)
    if problem:
        raise DamagedIndexError(f"index in {index_dir} is damaged: {problem}; {_repair_hint(index_dir)}")


def read(index_dir: Path) -> StoredIndex:
    """Open the live generation; a damaged or foreign index is refused, never guessed at.

    A build deletes the generation before the one it replaces: one that
    vanishes while it is being opened is no damage when ``CURRENT`` has moved
    on meanwhile, and the new live generation is opened instead.
    """
    while True:
        generation = _live_generation(index_dir)  # read once: a build may switch generations meanwhile
        try:
            manifest = _manifest_of(generation, index_dir)
            _check_files(generation, manifest, index_dir, contents=HASHED_ON_OPEN)
            return StoredIndex(generation, manifest, index_dir)
        except DamagedIndexError:
            if generation.is_dir() or _live_generation(index_dir) == generation:
                raise


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
    ``lexicons`` holds the fresh files' ranked lexicons; the dropped files'
    lexicons leave with them. When holes outnumber the live chunks, the
    generation is written compacted.
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
    adding = sum(len(f.chunks) for f in fresh.values())
    if previous is not None and _needs_compacting(previous, len(dead), adding):
        return _compacted(staging, previous, files, drop, fresh, lexicons, manifest_fields, ann)
    (staging / SEGMENTS).mkdir()
    if previous is not None:
        shutil.copyfile(previous.generation / CATALOG, staging / CATALOG)
        lengths = previous.lengths.copy()
        sentence_starts = previous.sentence_starts.copy()
        segments = list(previous.manifest.segments)
    else:
        lengths = np.zeros(0, np.int32)
        sentence_starts = np.zeros(1, np.int64)
        segments = []
    lengths[dead] = -1
    first_new_id = len(lengths)
    merged: list[int] = []
    if fresh:
        sizes = [end - first for first, end in zip(segments, [*segments[1:], first_new_id])]
        merged = segments[len(segments) - segments_to_merge(sizes, adding) :]
        segments = segments[: len(segments) - len(merged)]
    for first in segments:  # kept as they are: shared with the previous generation, not copied
        (staging / segment_folder(first)).mkdir()
        for name in _segment_files(first):
            _link(previous.generation / name, staging / name)
    catalog = sqlite3.connect(staging / CATALOG)
    try:
        with catalog:
            if previous is None:
                catalog.executescript(_CATALOG_SCHEMA)
            new_first = merged[0] if merged else first_new_id
            _update_catalog(catalog, previous, drop, fresh, lexicons, merged, new_first)
    finally:
        catalog.close()
    if fresh:
        new_lengths, sentence_counts = _write_segment(
            staging / segment_folder(new_first), previous, merged, {*drop, *fresh}, first_new_id, fresh, lexicons, lengths, dimension
        )
        segments.append(new_first)
        lengths = np.concatenate([lengths, new_lengths]).astype(np.int32)
        sentence_starts = np.concatenate([sentence_starts, sentence_starts[-1] + np.cumsum(sentence_counts, dtype=np.int64)]).astype(np.int64)
    np.save(staging / LENGTHS, lengths)
    np.save(staging / SENTENCE_STARTS, sentence_starts)
    live = int((lengths >= 0).sum())
    kind = dense_kind(live, ann)
    if kind != "flat":
        bounds = [*segments, len(lengths)]
        rows = Rows([_segment_rows(staging, first, end, sentence_starts, dimension)[0] for first, end in zip(bounds, bounds[1:])], segments, dimension)
        new_ids = np.arange(first_new_id, len(lengths), dtype=np.int64)
        previous_kind = previous.manifest.dense if previous is not None else "flat"
        _write_dense(staging, previous, previous_kind, kind, rows, lengths, np.asarray(dead, np.int64), new_ids, dimension)
    return Manifest(
        format_version=FORMAT_VERSION,
        files=files,
        chunk_count=live,
        rows=len(lengths),
        dense=kind,
        segments=segments,
        sentence_rows=int(sentence_starts[-1]),
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **manifest_fields,
    )


def segments_to_merge(sizes: list[int], adding: int) -> int:
    """How many of the newest segments (``sizes``: chunk ids per segment, oldest first) a build adding ``adding`` chunks folds into its own.

    A segment is folded while it holds at most ``MERGE_RATIO`` times what the
    new segment holds so far, so small segments never pile up, and the one
    segment of a large collection is rewritten only once the segments after
    it hold a quarter as much: a chunk is rewritten a logarithmic number of
    times, as in an LSM tree.
    """
    total, count = adding, 0
    while count < len(sizes) and sizes[-1 - count] <= MERGE_RATIO * total:
        total += sizes[-1 - count]
        count += 1
    return count


def _update_catalog(
    catalog: sqlite3.Connection,
    previous: StoredIndex | None,
    drop: list[str],
    fresh: dict[str, FreshFile],
    lexicons: dict[str, Ranked],
    merged: list[int],
    new_first: int,
) -> None:
    """The per-file tables: the dropped files' rows out, the fresh files' in, each file's segment up to date."""
    leaving = sorted(set(drop) | set(fresh))
    for start in range(0, len(leaving), 500):
        part = leaving[start : start + 500]
        marks = ",".join("?" * len(part))
        for table in ("aliases", "glossed", "sources"):
            catalog.execute(f"DELETE FROM {table} WHERE source IN ({marks})", part)
    catalog.executemany("INSERT INTO aliases VALUES (?,?,?)", ((source, key, name) for source, parts in fresh.items() for key, names in parts.aliases.items() for name in names))
    catalog.executemany("INSERT INTO glossed VALUES (?,?,?)", ((source, key, word) for source, parts in fresh.items() for key, words in parts.glossed.items() for word in words))
    if merged:
        catalog.execute(f"UPDATE sources SET segment = ? WHERE segment IN ({','.join('?' * len(merged))})", (new_first, *merged))
    catalog.executemany("INSERT INTO sources VALUES (?,?)", ((source, new_first) for source in fresh))
    # Every (key, word) some file's lexicon holds, with its rank and how many files hold it;
    # a file's own lexicon stays in its segment, so that it can leave without reading any other file.
    counts: Counter[tuple[str, str]] = Counter()
    ranks: dict[tuple[str, str], int] = {}
    if previous is not None:
        for source in previous.segment_of_files(leaving):
            for key, words in previous.file_lexicon(source).items():
                counts.update({(key, word): -1 for word in words})
    for source in fresh:
        for key, words in lexicons.get(source, {}).items():
            for word, rank in words.items():
                counts[(key, word)] += 1
                ranks[(key, word)] = rank
    catalog.executemany(
        "INSERT INTO lexicon VALUES (?,?,?,?) ON CONFLICT(key, word) DO UPDATE SET files = files + excluded.files",
        ((key, word, ranks.get((key, word), 0), change) for (key, word), change in counts.items() if change),
    )
    catalog.execute("DELETE FROM lexicon WHERE files <= 0")


def _write_segment(
    folder: Path,
    previous: StoredIndex | None,
    merged: list[int],
    leaving: set[str],
    first_new_id: int,
    fresh: dict[str, FreshFile],
    lexicons: dict[str, Ranked],
    lengths: np.ndarray,
    dimension: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One new segment: the live parts of the ``merged`` segments, then the fresh files' chunks from ``first_new_id`` on.

    Vector and sentence rows are carried over byte for byte, holes included,
    so that every id keeps its row; chunks and postings of removed chunks are
    left behind. Returns the fresh chunks' term counts and sentence counts.
    """
    folder.mkdir()
    database = sqlite3.connect(folder / STORE)
    # Per term: the merged segments' postings (arrays), then the fresh chunks' ids and counts (lists).
    postings: dict[str, tuple[list[np.ndarray], list[np.ndarray], list[int], list[int]]] = defaultdict(lambda: ([], [], [], []))
    try:
        database.executescript(_SEGMENT_SCHEMA)
        with database, open(folder / VECTORS, "wb") as vectors, open(folder / SENTENCES, "wb") as sentences:
            for first in merged:
                old = previous.generation / segment_folder(first)
                problem = first_problem(previous.generation, {name: previous.manifest.checksums[name] for name in _segment_files(first)})
                if problem:
                    raise DamagedIndexError(f"index in {previous.generation.parent} is damaged: {problem}; rebuild it with: qa index --rebuild")
                for name, handle in ((VECTORS, vectors), (SENTENCES, sentences)):
                    with open(old / name, "rb") as part:
                        shutil.copyfileobj(part, handle, 1 << 20)
                _copy_live(database, old / STORE, lengths, postings, previous, first, leaving)
            new_lengths, sentence_counts, chunk_rows = [], [], []
            next_id = first_new_id
            for source, parts in fresh.items():
                for chunk, glosses, chunk_sentences in zip(parts.chunks, parts.glosses, parts.sentences):
                    terms = index_terms(chunk.text)
                    chunk_rows.append(
                        (next_id, chunk.source, chunk.char_start, chunk.char_end, chunk.line_start, chunk.line_end, chunk.page, chunk.text,
                         json.dumps(glosses, ensure_ascii=False) if glosses else None)
                    )
                    for term, count in Counter(terms).items():
                        postings[term][2].append(next_id)
                        postings[term][3].append(min(count, MAX_TF))
                    new_lengths.append(len(terms))
                    sentence_counts.append(len(chunk_sentences))
                    sentences.write(np.ascontiguousarray(chunk_sentences, dtype=SENTENCE_DTYPE).tobytes())
                    next_id += 1
                if len(parts.chunks):
                    vectors.write(np.ascontiguousarray(parts.vectors, dtype=np.float32).tobytes())
            database.executemany(f"INSERT INTO chunks({_CHUNK_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", chunk_rows)
            database.executemany("INSERT INTO file_lexicons VALUES (?,?)", ((source, _pack(lexicons.get(source, {}))) for source in fresh))
            database.executemany(
                "INSERT INTO postings VALUES (?,?,?)",
                (
                    (term, np.concatenate([*old_ids, np.asarray(ids, np.int32)]).tobytes(), np.concatenate([*old_tfs, np.asarray(tfs, np.uint16)]).tobytes())
                    for term, (old_ids, old_tfs, ids, tfs) in postings.items()
                ),
            )
    finally:
        database.close()
    return np.asarray(new_lengths, np.int32), np.asarray(sentence_counts, np.int64)


def _copy_live(
    database: sqlite3.Connection, old_store: Path, lengths: np.ndarray, postings: dict, previous: StoredIndex, first: int, leaving: set[str]
) -> None:
    """A merged segment's live chunks and postings, and the lexicons of the files it still holds (none ``leaving``), into the new segment."""
    old = _open_database(old_store)
    try:
        database.executemany(
            f"INSERT INTO chunks({_CHUNK_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
            (row for row in old.execute(f"SELECT {_CHUNK_COLUMNS} FROM chunks ORDER BY id") if lengths[row[0]] >= 0),
        )
        for term, ids, tfs in old.execute("SELECT term, ids, tfs FROM postings"):
            ids, tfs = np.frombuffer(ids, np.int32), np.frombuffer(tfs, np.uint16)
            keep = lengths[ids] >= 0
            if keep.any():
                postings[term][0].append(ids[keep])
                postings[term][1].append(tfs[keep])
        lexicons = old.execute("SELECT source, entries FROM file_lexicons").fetchall()
        still = previous.segment_of_files(source for source, _ in lexicons)
        database.executemany(
            "INSERT INTO file_lexicons VALUES (?,?)", ((source, entries) for source, entries in lexicons if still.get(source) == first and source not in leaving)
        )
    finally:
        old.close()


def _needs_compacting(previous: StoredIndex, dying: int, adding: int) -> bool:
    holes = int((~previous.live).sum()) + dying
    live = int(previous.live.sum()) - dying + adding
    return holes > max(live, 1000)


def _compacted(staging, previous, files, drop, fresh, lexicons, manifest_fields, ann) -> Manifest:
    """A from-scratch write of the kept files and the fresh ones: ids dense again, the holes gone."""
    kept_sources = sorted(source for source in previous.segment_of_files(files) if source not in drop and source not in fresh)
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
            [c for c, _ in parts], previous.rows[ids], previous.sentence_vectors(ids), [g for _, g in parts], dict(aliases), dict(glossed)
        )
    kept_lexicons = {source: previous.file_lexicon(source) for source in kept_sources}
    return _build(staging, None, files, [], {**kept, **fresh}, {**kept_lexicons, **lexicons}, manifest_fields, ann)


def _pack(lexicon: Ranked) -> bytes:
    return zlib.compress(json.dumps(lexicon, ensure_ascii=False, separators=(",", ":")).encode())


def _unpack(entries: bytes) -> Ranked:
    return json.loads(zlib.decompress(entries))


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
        index = dense_index(rows[ids], ids, dimension, kind)
    faiss.write_index(index, str(staging / DENSE))


def _linked_sums(previous: StoredIndex | None, staging: Path) -> dict:
    """The recorded sums of the files ``staging`` shares with the previous generation: those need no reading."""
    if previous is None:
        return {}
    shared = {}
    for name, total in previous.manifest.checksums.items():
        mine, theirs = staging / name, previous.generation / name
        if name.startswith(f"{SEGMENTS}/") and mine.exists() and theirs.exists() and os.path.samefile(mine, theirs):
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
