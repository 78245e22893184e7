"""Where an index lives, behind the one interface the retriever and the bot read.

Two stores hold the same generations, segments and chunk ids:

- **files** in ``index_dir`` (the default, ``qa.stages.index``): embedded, nothing to start;
- **a Milvus server or cluster** (``store = "milvus://host:19530"``, ``qa.stages.milvus``):
  several machines' ``qa serve`` and Slack processes answer from one collection.

A build always runs on the files: they are the build's record (what each file
held, the vectors kept for unchanged text, the checksums), and a store in
an engine is published from them once they are whole. So citations, offsets,
incremental updates and every score are the same in both stores.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator
from typing import Protocol

import numpy as np

from qa.crosslingual.gloss import GlossedWord
from qa.models import Chunk
from qa.stages.ingest.base import Extraction
from qa.settings import Settings
from qa.stages import index as index_store


class Lookup(Protocol):
    def get(self, key: str, default=None): ...

    def __contains__(self, key: str) -> bool: ...


class Store(Protocol):
    """One generation of an index, opened for asking."""

    manifest: index_store.Manifest
    name: str  # the generation's name: a new one means a build switched
    lengths: np.ndarray  # per chunk id: its length in lexical terms, -1 for a removed chunk
    live: np.ndarray  # per chunk id: does its chunk exist
    aliases: Lookup
    lexicon: Lookup

    def nearest(self, vector: np.ndarray, k: int) -> np.ndarray: ...

    def vectors_at(self, ids: Iterable[int]) -> np.ndarray: ...

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray] | None: ...

    def read_ahead(self, terms: Iterable[str]) -> None:
        """The postings of these terms will be asked for next: a store across a network fetches them at once."""

    def chunks_at(self, ids: Iterable[int]) -> list[tuple[Chunk, list[GlossedWord]]]: ...

    def sentence_vectors(self, ids: Iterable[int]) -> list[np.ndarray]: ...

    def each_chunk(self) -> Iterator[tuple[int, Chunk, list[GlossedWord]]]: ...

    def extraction(self, sha256: str) -> Extraction | None:
        """The text and pages extracted from the file with these bytes, as the index quoted it (what ``qa show`` prints)."""

    def close(self) -> None: ...


def in_engine(settings: Settings) -> bool:
    return bool(settings.store)


def exists(settings: Settings) -> bool:
    if in_engine(settings):
        from qa.stages import milvus

        return milvus.exists(settings.store)
    return index_store.exists(settings.index_dir)


def read(settings: Settings) -> Store:
    """The live generation, from the store the settings name."""
    if in_engine(settings):
        from qa.stages import milvus

        return milvus.read(settings.store)
    return index_store.read(settings.index_dir)


def live_mark(settings: Settings) -> Hashable | None:
    """What changes when a build switches generations, read cheaply enough to check before every question."""
    if in_engine(settings):
        from qa.stages import milvus

        return milvus.current_name(settings.store)
    return index_store.current_mark(settings.index_dir)


def where(settings: Settings) -> str:
    """The store, as messages name it."""
    return settings.store if in_engine(settings) else str(settings.index_dir)
