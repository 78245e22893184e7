"""Persist chunks, their vectors and their lexical terms; update them incrementally.

On disk an index is a folder of generations plus a ``CURRENT`` file naming
the live one::

    index/CURRENT            -> "gen-20261122T101500-3f2a"
    index/gen-.../manifest.json, chunks.json, dense.faiss, lexical.json, glosses.json
    index/models/<model>/   the model's ONNX export for questions (qa.onnx_encoder)

A build writes a complete new generation aside and then replaces ``CURRENT``
with one atomic rename, so an interrupted build leaves the previous index
exactly as it was. Files whose content hash is unchanged keep their chunks,
vectors and terms; only changed or added files are chunked and embedded.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
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
from qa.models import Chunk, Document

# (start, end, English) for one word of a chunk, offsets in the chunk's text.
Gloss = tuple[int, int, str]

FORMAT_VERSION = 2
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
CHUNKS = "chunks.json"
DENSE = "dense.faiss"
LEXICAL = "lexical.json"
ALIASES = "aliases.json"
LEXICON = "lexicon.json"
GLOSSES = "glosses.json"
# Past this many chunks, ``ann="auto"`` stores an HNSW graph instead of a flat
# index. Exact search grows with the corpus (about 65 ms a question at 200,000
# chunks on 2 cores, benchmarks/bench.py --ann) while HNSW stays near 2 ms, but
# HNSW builds slowly (minutes at that size) and approximates: small corpora
# keep exact search.
HNSW_FROM_CHUNKS = 200_000
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
    glosses: list[list[Gloss]]
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
    generation = _live_generation(index_dir)
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

    manifest = read_manifest(index_dir)
    generation = _live_generation(index_dir)
    try:
        chunks = [Chunk.model_validate(c) for c in json.loads((generation / CHUNKS).read_text(encoding="utf-8"))]
        terms = json.loads((generation / LEXICAL).read_text(encoding="utf-8"))
        aliases = json.loads((generation / ALIASES).read_text(encoding="utf-8"))
        lexicon = json.loads((generation / LEXICON).read_text(encoding="utf-8"))
        glosses = [[tuple(word) for word in words] for words in json.loads((generation / GLOSSES).read_text(encoding="utf-8"))]
        dense = faiss.read_index(str(generation / DENSE))
        vectors = dense.reconstruct_n(0, dense.ntotal) if dense.ntotal else np.zeros((0, manifest.dimension), np.float32)
    except (OSError, ValueError, ValidationError, RuntimeError) as err:
        raise BadIndexError(f"index in {index_dir} is corrupted ({_reason(err)}); {_rebuild_hint(index_dir)}") from None
    if not (len(chunks) == len(terms) == len(glosses) == len(vectors) == manifest.chunk_count) or dense.d != manifest.dimension:
        raise BadIndexError(f"index in {index_dir} is corrupted (its parts disagree in size); {_rebuild_hint(index_dir)}")
    return StoredIndex(manifest, chunks, np.ascontiguousarray(vectors, dtype=np.float32), terms, glosses, aliases, lexicon, dense)


def _reason(err: Exception) -> str:
    return str(err).splitlines()[0][:200] if str(err) else type(err).__name__


def dense_index(vectors: np.ndarray, dimension: int, ann: str = "auto"):
    """Exact inner-product search, or an HNSW graph (``ann``: auto, flat or hnsw).

    Both keep the vectors themselves, so ``read`` recovers them for the next
    incremental build whichever was written.
    """
    import faiss

    if ann == "hnsw" or (ann == "auto" and len(vectors) >= HNSW_FROM_CHUNKS):
        index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        index = faiss.IndexFlatIP(dimension)
    if len(vectors):
        index.add(vectors)
    return index


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
    _write_file(index_dir / f".{CURRENT}.tmp", name + "\n")
    os.replace(index_dir / f".{CURRENT}.tmp", index_dir / CURRENT)
    _fsync_dir(index_dir)
    for old in index_dir.iterdir():
        if old.is_dir() and old.name.startswith(("gen-", ".building-")) and old.name not in (name,):
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
    fresh: dict[str, tuple[list[Chunk], np.ndarray, list[list[str]], list[list[Gloss]]]],
    aliases: dict[str, list[str]],
    lexicon: dict[str, list[str]],
    manifest_fields: dict,
) -> StoredIndex:
    """The next generation: kept parts of unchanged files plus fresh parts, in corpus order."""
    kept = previous.chunks_by_source() if previous else {}
    chunks: list[Chunk] = []
    rows: list[np.ndarray] = []
    terms: list[list[str]] = []
    glosses: list[list[Gloss]] = []
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
    return StoredIndex(manifest, chunks, vectors, terms, glosses, aliases, lexicon)

