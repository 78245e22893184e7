"""The index in a Milvus server or cluster: what several machines' ``qa serve`` and Slack bots answer from.

``qa index --store milvus://host:19530`` builds on the files in ``index_dir``
as always, then copies the new generation into Milvus; readers need only the
URL. The copy keeps the files' design, so nothing a question reads differs:

- ``{prefix}_chunks``: one row per chunk of a segment (its id, citation fields,
  text, glosses) with its vector, searched exactly (FLAT, inner product);
- ``{prefix}_sentences``: each quotable sentence's vector, by sentence row;
- ``{prefix}_postings``: one row per term and segment whose sparse vector maps
  chunk ids to term frequencies, so BM25 is computed from the same postings;
- ``{prefix}_state``: each generation's small parts (manifest, chunk lengths,
  sentence offsets, the bridges' catalog) and the extracted texts, as base64
  blobs, and ``CURRENT``, the live generation's name.

A segment never changes once written, and is named by its first chunk id and
the digest of its content. A publish uploads only the segments the engine
lacks, then the generation's parts, then replaces the one ``CURRENT`` row:
a reader sees the old generation or the new one, never a mix. The generation
replaced stays until the next publish, for readers that opened it a moment
ago; older ones are deleted.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import urlsplit

import numpy as np

from qa.crosslingual.gloss import GlossedWord
from qa.errors import BadIndexError, QAError
from qa.lru import LRU
from qa.models import Chunk
from qa.stages import index as index_store
from qa.stages.ingest.base import Extraction

SCHEME = "milvus"
DEFAULT_PORT = 19530
DEFAULT_PREFIX = "qa"
CURRENT = "CURRENT"
HISTORY = "HISTORY"
# Milvus caps a VARCHAR at 65,535 bytes: blobs travel in rows of this many base64 characters.
BLOB_ROW = 60_000
TEXT_LIMIT = 65_535
# Rows per insert: a few megabytes of vectors per gRPC message.
BATCH = 500
# Milvus returns at most this many results from one search.
MAX_TOP_K = 16_384
TIMEOUT_S = 30.0
# Terms whose postings a reader keeps (as BM25 does): a question reads a few dozen.
POSTINGS_CACHED = 256


def parse_url(url: str) -> tuple[str, str]:
    """``milvus://host[:port][/prefix]`` -> the server's address for pymilvus, and the collections' prefix."""
    parts = urlsplit(url)
    if parts.scheme != SCHEME or not parts.hostname:
        raise QAError(f"store {url!r} is not a Milvus URL; write it as milvus://host:{DEFAULT_PORT}[/prefix]")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise QAError(f"store {url!r} has no valid port; write it as milvus://host:{DEFAULT_PORT}[/prefix]") from None
    prefix = parts.path.strip("/") or DEFAULT_PREFIX
    if not prefix.replace("_", "").isalnum() or not prefix[0].isalpha():
        raise QAError(f"store {url!r} has a collection prefix ({prefix!r}) that is not letters, digits and _ starting with a letter")
    return f"http://{parts.hostname}:{port}", prefix


@functools.lru_cache(maxsize=8)
def _client(url: str):
    """One connection per server and process: connecting costs half a second."""
    address, _ = parse_url(url)
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise QAError("a Milvus store needs pymilvus: pip install 'qa[milvus]'") from None
    try:
        return MilvusClient(uri=address, timeout=TIMEOUT_S)
    except Exception as err:  # pymilvus raises its own and grpc's errors
        _client.cache_clear()
        raise QAError(f"cannot reach the Milvus server at {address} ({_reason(err)}); is it running?") from None


def _reason(err: Exception) -> str:
    text = str(getattr(err, "message", "") or err).strip().splitlines()
    return text[0] if text else type(err).__name__


@functools.lru_cache(maxsize=8)
def _engine(url: str) -> "_Engine":
    return _Engine(url)


class _Engine:
    """The four collections of one prefix on one server, and the calls qa makes on them."""

    def __init__(self, url: str):
        self.url = url
        self.client = _client(url)
        _, prefix = parse_url(url)
        self.chunks, self.sentences, self.postings, self.state = (f"{prefix}_{part}" for part in ("chunks", "sentences", "postings", "state"))
        self._seen = False

    def call(self, method: str, *args, **kwargs):
        try:
            return getattr(self.client, method)(*args, **kwargs)
        except QAError:
            raise
        except Exception as err:
            raise QAError(f"the Milvus store at {self.url} failed ({_reason(err)})") from None

    def has_collections(self) -> bool:
        """Once seen, known: qa never drops them, and a reader asks before every question."""
        if not self._seen:
            self._seen = self.state in self.call("list_collections")
        return self._seen

    def create_collections(self, dimension: int) -> None:
        """Create what is missing; refuse a store whose vectors have another dimension."""
        from pymilvus import DataType, MilvusClient

        existing = set(self.call("list_collections"))
        if self.chunks in existing:
            fields = {f["name"]: f for f in self.call("describe_collection", self.chunks)["fields"]}
            found = int(fields["vector"].get("params", {}).get("dim", dimension))
            if found != dimension:
                raise BadIndexError(
                    f"the Milvus store at {self.url} holds {found}-dimensional vectors, this model makes {dimension}: "
                    f"publish to another prefix (milvus://host:port/other) or drop its collections"
                )

        def create(name: str, fields: list[tuple], vector: tuple[str, str, str]) -> None:
            if name in existing:
                return
            schema = MilvusClient.create_schema(auto_id=False)
            schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=TEXT_LIMIT)
            for field, kind, options in fields:
                schema.add_field(field, getattr(DataType, kind), **options)
            index = self.client.prepare_index_params()
            index.add_index(vector[0], index_type=vector[1], metric_type=vector[2])
            self.call("create_collection", name, schema=schema, index_params=index)

        segment = ("segment", "VARCHAR", {"max_length": 64})
        create(
            self.chunks,
            [
                segment,
                ("id", "INT64", {}),
                ("source", "VARCHAR", {"max_length": TEXT_LIMIT}),
                *[(name, "INT64", {}) for name in ("char_start", "char_end", "line_start", "line_end", "page")],
                ("text", "VARCHAR", {"max_length": TEXT_LIMIT}),
                ("glosses", "VARCHAR", {"max_length": TEXT_LIMIT}),
                ("vector", "FLOAT_VECTOR", {"dim": dimension}),
            ],
            ("vector", "FLAT", "IP"),
        )
        create(self.sentences, [segment, ("row", "INT64", {}), ("vector", "FLOAT_VECTOR", {"dim": dimension})], ("vector", "FLAT", "IP"))
        create(self.postings, [segment, ("postings", "SPARSE_FLOAT_VECTOR", {})], ("postings", "SPARSE_INVERTED_INDEX", "IP"))
        # Milvus wants a vector field in every collection; the state's rows are blobs.
        create(self.state, [("data", "VARCHAR", {"max_length": TEXT_LIMIT}), ("unused", "FLOAT_VECTOR", {"dim": 2})], ("unused", "FLAT", "L2"))
        for name in (self.chunks, self.sentences, self.postings, self.state):
            self.call("load_collection", name)

    def get(self, collection: str, keys: list[str], fields: list[str]) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for start in range(0, len(keys), BATCH):
            for row in self.call("get", collection, ids=keys[start : start + BATCH], output_fields=fields):
                found[row["key"]] = row
        return found

    def insert(self, collection: str, rows: list[dict]) -> None:
        for start in range(0, len(rows), BATCH):
            self.call("upsert", collection, rows[start : start + BATCH])

    def value(self, key: str) -> str | None:
        found = self.get(self.state, [key], ["data"])
        return found[key]["data"] if key in found else None

    def put_values(self, values: dict[str, str]) -> None:
        self.insert(self.state, [{"key": key, "data": data, "unused": [0.0, 0.0]} for key, data in values.items()])

    def put_blob(self, key: str, data: bytes) -> None:
        """Written in parts, then their count; a shorter blob written over a longer one drops the parts left over."""
        before = int(self.value(key) or 0)
        text = base64.b64encode(data).decode("ascii")
        rows = {f"{key}/{i:06d}": text[start : start + BLOB_ROW] for i, start in enumerate(range(0, len(text), BLOB_ROW))}
        self.put_values(rows)
        self.put_values({key: str(len(rows))})  # written last: a blob whose count is readable is whole
        self.delete_keys(self.state, [f"{key}/{i:06d}" for i in range(len(rows), before)])

    def blob(self, key: str) -> bytes | None:
        count = self.value(key)
        if count is None:
            return None
        keys = [f"{key}/{i:06d}" for i in range(int(count))]
        found = self.get(self.state, keys, ["data"])
        if len(found) != len(keys):
            raise BadIndexError(f"the Milvus store at {self.url} is damaged ({key} lacks a part); publish it again with: qa index --store {self.url}")
        return base64.b64decode("".join(found[k]["data"] for k in keys))

    def delete_blob(self, key: str) -> None:
        count = self.value(key)
        self.delete_keys(self.state, [key, *(f"{key}/{i:06d}" for i in range(int(count or 0)))])

    def delete_keys(self, collection: str, keys: list[str]) -> None:
        for start in range(0, len(keys), BATCH):
            self.call("delete", collection, ids=keys[start : start + BATCH])

    def flush(self) -> None:
        for name in (self.chunks, self.sentences, self.postings, self.state):
            self.call("flush", name)


def _segment_name(first: int, digest: str) -> str:
    return f"{first:012d}-{digest[:16]}"


def _blob_key(generation: str, part: str) -> str:
    return f"generation/{generation}/{part}"


def _extraction_key(extractor: str, sha256: str) -> str:
    return f"extraction/{extractor}/{sha256}"


def current_name(url: str) -> str | None:
    """The live generation's name: one primary-key read, cheap enough before every question."""
    engine = _engine(url)
    if not engine.has_collections():
        return None
    return engine.value(CURRENT)


def exists(url: str) -> bool:
    return current_name(url) is not None


def read(url: str) -> "MilvusStore":
    """The live generation, opened; an error that says what to do when there is none."""
    engine = _engine(url)
    name = current_name(url)
    tries = 3
    while True:
        if name is None:
            raise BadIndexError(f"no index in {url}: build one with: qa index --store {url}")
        try:
            return MilvusStore(engine, name)
        except BadIndexError:
            # Two publishes since CURRENT was read collect the generation it named: open the live one instead.
            moved, tries = current_name(url), tries - 1
            if moved == name or not tries:
                raise
            name = moved


class MilvusStore:
    """One generation in Milvus, opened: the same answers as ``index.StoredIndex`` over the files it came from."""

    def __init__(self, engine: _Engine, name: str):
        self._engine = engine
        self.name = name
        header = engine.value(_blob_key(name, "segments"))
        parts = {part: engine.blob(_blob_key(name, part)) for part in ("manifest", "lengths", "sentence_starts", "catalog")}
        if header is None or any(data is None for data in parts.values()):
            raise BadIndexError(f"the Milvus store at {engine.url} lacks generation {name}; publish it again with: qa index --store {engine.url}")
        self.manifest = index_store.Manifest.model_validate_json(parts["manifest"])
        self.lengths = np.load(io.BytesIO(parts["lengths"]))
        self.sentence_starts = np.load(io.BytesIO(parts["sentence_starts"]))
        self.live = self.lengths >= 0
        self._names = json.loads(header)
        self._firsts = np.asarray(self.manifest.segments, np.int64)
        self._in_generation = f"segment in {json.dumps(self._names)}"
        # The catalog is an SQLite file, read where it lands: a temporary copy, deleted on close.
        self._catalog_file = tempfile.NamedTemporaryFile(prefix="qa-catalog-", suffix=".sqlite")
        self._catalog_file.write(parts["catalog"])
        self._catalog_file.flush()
        self._catalog = sqlite3.connect(f"file:{self._catalog_file.name}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        # A generation never changes: a term's postings, once fetched, hold until the store is closed.
        self._postings: LRU[str, tuple] = LRU(POSTINGS_CACHED)
        self.aliases = index_store._Lookup(lambda key: index_store.catalog_aliases(self._query, key))
        self.lexicon = index_store._Lookup(lambda key: index_store.catalog_lexicon(self._query, key))

    def _query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._catalog.execute(sql, parameters).fetchall()

    def _segment_of(self, chunk_id: int) -> str:
        return self._names[int(np.searchsorted(self._firsts, chunk_id, side="right")) - 1]

    def _chunk_keys(self, ids: Iterable[int]) -> list[str]:
        return [f"{self._segment_of(i)}/{i}" for i in ids]

    def nearest(self, vector: np.ndarray, k: int) -> np.ndarray:
        """The engine's exact search over this generation's segments; removed chunks are skipped."""
        if k <= 0 or not self.manifest.chunk_count:
            return np.zeros(0, np.int64)
        dead = int((~self.live).sum())
        limit = min(MAX_TOP_K, k + dead)
        found = self._engine.call(
            "search", self._engine.chunks, [np.asarray(vector, np.float32).reshape(-1).tolist()], limit=limit,
            filter=self._in_generation, output_fields=["id"], search_params={"metric_type": "IP"},
        )[0]
        ids = np.asarray([hit["entity"]["id"] for hit in found], np.int64)
        ids = ids[self.live[ids]] if len(ids) else ids
        if len(ids) < min(k, self.manifest.chunk_count) and dead + k > MAX_TOP_K:
            # More holes than one search returns: ask for the live ids alone.
            alive = ",".join(str(i) for i in np.flatnonzero(self.live))
            found = self._engine.call(
                "search", self._engine.chunks, [np.asarray(vector, np.float32).reshape(-1).tolist()], limit=min(k, MAX_TOP_K),
                filter=f"{self._in_generation} and id in [{alive}]", output_fields=["id"], search_params={"metric_type": "IP"},
            )[0]
            ids = np.asarray([hit["entity"]["id"] for hit in found], np.int64)
        return ids[:k]

    def vectors_at(self, ids: Iterable[int]) -> np.ndarray:
        ids = [int(i) for i in ids]
        keys = self._chunk_keys(ids)
        found = self._engine.get(self._engine.chunks, keys, ["vector"])
        self._check(keys, found)
        return np.asarray([found[key]["vector"] for key in keys], np.float32).reshape(len(ids), self.manifest.dimension)

    def read_ahead(self, terms: Iterable[str]) -> None:
        """One request for every term a question will score, instead of one per term."""
        wanted = [term for term in dict.fromkeys(terms) if self._postings.get(term) is None]
        if not wanted:
            return
        found = self._engine.get(self._engine.postings, [f"{name}/{term}" for term in wanted for name in self._names], ["postings"])
        for term in wanted:
            self._postings.put(term, (self._merged([found[key] for name in self._names if (key := f"{name}/{term}") in found]),))

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        cached = self._postings.get(term)
        if cached is None:
            self.read_ahead([term])
            cached = self._postings.get(term)
        return cached[0]

    def _merged(self, rows: list[dict]) -> tuple[np.ndarray, np.ndarray] | None:
        """One term's postings over the generation's segments: ids ascending, removed chunks left out."""
        pairs = sorted((int(i), tf) for row in rows for i, tf in _sparse_items(row["postings"]))
        if not pairs:
            return None
        ids = np.asarray([i for i, _ in pairs], np.int32)
        tfs = np.asarray([tf for _, tf in pairs], np.float32).astype(np.uint16)
        keep = self.live[ids]
        ids, tfs = ids[keep], tfs[keep]
        return (ids, tfs) if len(ids) else None

    def chunks_at(self, ids: Iterable[int]) -> list[tuple[Chunk, list[GlossedWord]]]:
        ids = [int(i) for i in ids]
        keys = self._chunk_keys(ids)
        found = self._engine.get(self._engine.chunks, keys, _CHUNK_FIELDS)
        self._check(keys, found)
        return [_chunk_of(found[key]) for key in keys]

    def sentence_vectors(self, ids: Iterable[int]) -> list[np.ndarray]:
        spans = [(int(self.sentence_starts[i]), int(self.sentence_starts[i + 1]), self._segment_of(int(i))) for i in ids]
        keys = [f"{name}/{row}" for start, end, name in spans for row in range(start, end)]
        found = self._engine.get(self._engine.sentences, keys, ["vector"])
        self._check(keys, found)
        return [
            np.asarray([found[f"{name}/{row}"]["vector"] for row in range(start, end)], np.float32).reshape(end - start, self.manifest.dimension)
            for start, end, name in spans
        ]

    def each_chunk(self) -> Iterator[tuple[int, Chunk, list[GlossedWord]]]:
        rows = []
        iterator = self._engine.call("query_iterator", self._engine.chunks, batch_size=1000, filter=self._in_generation, output_fields=_CHUNK_FIELDS)
        while batch := iterator.next():
            rows += [row for row in batch if self.live[row["id"]]]
        iterator.close()
        for row in sorted(rows, key=lambda row: row["id"]):
            yield (row["id"], *_chunk_of(row))

    def extraction(self, sha256: str) -> Extraction | None:
        data = self._engine.blob(_extraction_key(self.manifest.extractor, sha256))
        if data is None:
            return None
        stored = json.loads(data)
        return Extraction(stored["text"], tuple(stored["pages"]))

    def _check(self, keys: list[str], found: dict) -> None:
        missing = [key for key in keys if key not in found]
        if missing:
            raise BadIndexError(f"the Milvus store at {self._engine.url} is damaged (no row {missing[0]}); publish it again with: qa index --store {self._engine.url}")

    def close(self) -> None:
        self._catalog.close()
        self._catalog_file.close()


_CHUNK_FIELDS = ["id", "source", "char_start", "char_end", "line_start", "line_end", "page", "text", "glosses"]


def _sparse_items(vector) -> Iterable[tuple[int, float]]:
    return vector.items() if hasattr(vector, "items") else zip(*vector)


def _chunk_of(row: dict) -> tuple[Chunk, list[GlossedWord]]:
    chunk = Chunk(
        source=row["source"], char_start=row["char_start"], char_end=row["char_end"], line_start=row["line_start"],
        line_end=row["line_end"], page=None if row["page"] < 0 else row["page"], text=row["text"],
    )
    return chunk, [GlossedWord(*word) for word in json.loads(row["glosses"])] if row["glosses"] else []


def _chunk_row(name: str, chunk_id: int, chunk: Chunk, glosses: list[GlossedWord], vector: np.ndarray) -> dict:
    row = {
        "key": f"{name}/{chunk_id}", "segment": name, "id": chunk_id, "source": chunk.source, "char_start": chunk.char_start,
        "char_end": chunk.char_end, "line_start": chunk.line_start, "line_end": chunk.line_end,
        "page": -1 if chunk.page is None else chunk.page, "text": chunk.text,
        "glosses": json.dumps([list(word) for word in glosses], ensure_ascii=False) if glosses else "",
        "vector": np.asarray(vector, np.float32).tolist(),
    }
    for field in ("source", "text", "glosses"):
        if len(row[field].encode("utf-8")) > TEXT_LIMIT:
            raise QAError(f"chunk {chunk_id} of {chunk.source} has a {field} over Milvus's {TEXT_LIMIT} bytes; index with smaller chunks (chunk_tokens)")
    return row


def publish(url: str, stored: index_store.StoredIndex, notify: Callable[[str], None] | None = None) -> str:
    """Copy a generation built on the files into Milvus and make it the live one there; returns its name.

    Segments the engine already holds (by name: first id and digest) are not
    sent again, so a changed file costs its own segment, not the collection.
    """
    engine = _engine(url)
    engine.create_collections(stored.manifest.dimension)
    parts = stored.segment_parts()
    names = [_segment_name(part.first, part.digest) for part in parts]
    present = engine.get(engine.state, [f"segment/{name}" for name in names], ["data"])
    for part, name in zip(parts, names):
        if f"segment/{name}" in present:
            continue
        if notify:
            notify(f"sending segment {name} ({part.end - part.first} chunks) to {url}")
        _send_segment(engine, part, name, stored.sentence_starts)
        engine.flush()
        engine.put_values({f"segment/{name}": str(part.end - part.first)})  # written last: a named segment is whole
    extractions = {_extraction_key(stored.manifest.extractor, sha256): sha256 for sha256 in stored.manifest.files.values()}
    sent = engine.get(engine.state, list(extractions), ["data"])
    for key, sha256 in extractions.items():
        if key not in sent and (extraction := stored.extraction(sha256)) is not None:
            engine.put_blob(key, json.dumps({"text": extraction.text, "pages": list(extraction.pages)}, ensure_ascii=False).encode("utf-8"))
    name = stored.name
    for part_name, data in (
        ("manifest", stored.manifest.model_dump_json().encode("utf-8")),
        ("lengths", _npy(stored.lengths)),
        ("sentence_starts", _npy(stored.sentence_starts)),
        ("catalog", (stored.generation / index_store.CATALOG).read_bytes()),
    ):
        engine.put_blob(_blob_key(name, part_name), data)
    engine.put_values({_blob_key(name, "segments"): json.dumps(names)})
    engine.flush()
    history = json.loads(engine.blob(HISTORY) or b"[]")
    previous = engine.value(CURRENT)
    engine.put_values({CURRENT: name})  # the switch: one row, replaced at once
    engine.flush()
    kept = [entry for entry in history if entry["name"] == previous != name] + [{"name": name, "segments": names, "extractions": list(extractions)}]
    _collect(engine, [entry for entry in history if entry["name"] not in (name, previous)], kept)
    engine.put_blob(HISTORY, json.dumps(kept).encode("utf-8"))  # it names every file's extracted text: a blob
    engine.flush()
    return name


def _collect(engine: _Engine, old: list[dict], kept: list[dict]) -> None:
    """Delete generations no reader can hold any more, with the segments and extracted texts only they used."""
    segments = {name for entry in kept for name in entry["segments"]}
    extractions = {key for entry in kept for key in entry.get("extractions", [])}
    for entry in old:
        for part in ("manifest", "lengths", "sentence_starts", "catalog"):
            engine.delete_blob(_blob_key(entry["name"], part))
        engine.delete_keys(engine.state, [_blob_key(entry["name"], "segments")])
        for name in entry["segments"]:
            if name not in segments:
                engine.delete_keys(engine.state, [f"segment/{name}"])
                for collection in (engine.chunks, engine.sentences, engine.postings):
                    engine.call("delete", collection, filter=f'segment == "{name}"')
        for key in entry.get("extractions", []):
            if key not in extractions:
                engine.delete_blob(key)


def _send_segment(engine: _Engine, part: index_store.SegmentParts, name: str, sentence_starts: np.ndarray) -> None:
    rows = []
    for chunk_id, chunk, glosses in part.chunk_rows():
        rows.append(_chunk_row(name, chunk_id, chunk, glosses, part.vectors[chunk_id - part.first]))
        if len(rows) == BATCH:
            engine.insert(engine.chunks, rows)
            rows = []
    engine.insert(engine.chunks, rows)
    start, end = part.first_sentence, int(sentence_starts[part.end])
    for offset in range(start, end, BATCH):
        stop = min(end, offset + BATCH)
        vectors = np.asarray(part.sentences[offset - start : stop - start], np.float32)
        engine.insert(engine.sentences, [{"key": f"{name}/{row}", "segment": name, "row": row, "vector": vector.tolist()} for row, vector in zip(range(offset, stop), vectors)])
    rows = []
    for term, ids, tfs in part.postings():
        rows.append({"key": f"{name}/{term}", "segment": name, "postings": {int(i): float(tf) for i, tf in zip(ids, tfs)}})
        if len(rows) == BATCH:
            engine.insert(engine.postings, rows)
            rows = []
    engine.insert(engine.postings, rows)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def serve_lite(data_dir: str, port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> None:
    """Run milvus-lite (a Milvus server in Python, for tests and laptops) as a Milvus server treats its clients.

    pymilvus pings an idle connection every 10 s, which Milvus permits; a stock
    gRPC server in Python allows one ping in 5 minutes and closes the
    connection after two more ("Too many pings"), and the client's reconnect
    then failed. The pings are allowed here as Milvus allows them.
    """
    import grpc
    from milvus_lite.adapter.grpc import server

    plain = grpc.server

    def permissive(*args, options=(), **kwargs):
        allowed = [("grpc.http2.min_ping_interval_without_data_ms", 5000), ("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_ping_strikes", 0)]
        return plain(*args, options=[*options, *allowed], **kwargs)

    grpc.server = permissive
    server.run_server(data_dir, host=host, port=port)


if __name__ == "__main__":  # python -m qa.stages.milvus DATA_DIR [PORT]
    import sys

    serve_lite(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_PORT)
