"""The facade every face uses: build an index, load it, ask it.

The CLI, the Slack bot, the HTTP API and the tests all go through ``Bot``;
none of them reaches into the stages behind it, so a change of stage never
changes a face.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.stages import index as index_store
from qa.stages import store
from qa.stages.store import Store
from qa.stages import onnx_encoder, parallel
from qa.stages.answer import PASSAGES_READ, compose, first_stage
from qa.crosslingual.bridge import Bridge, mine_aliases
from qa.chat import Conversation
from qa.stages.chunk import CHUNKER, chunk_for_model, quotable_texts
from qa.stages.embed import Embedder, Encoder, is_bundled_e5, load_encoder
from qa.errors import BadIndexError, CorpusError, DamagedIndexError, LLMError, QAError, QuestionError, SourceError
from qa.excerpt import quote_marks
from qa.evaluate import RANKS_KEPT, CaseResult, GoldenCase, score_case
from qa.crosslingual import dictionary_worker
from qa.crosslingual.dictionary_worker import Prepared, prepare_in_background
from qa.crosslingual.gloss import GlossedWord, english_view, glossed_lexicon, glosser, words_within
from qa.crosslingual.language import detect
from qa.stages import ingest
from qa.stages.ingest.seen import stat_of
from qa.stages.lexical import ANALYZER
from qa.stages.llm import LLM, TextSink
from qa.models import Answer, Chunk, Passage, Question, SourceExcerpt, page_at
from qa.stages.analyse import analyse
from qa.stages.calibration import default_calibration
from qa.stages.rerank import Reranker
from qa.stages.signals import SENTENCE_PASSAGES, Signals, measure, sample_positions
from qa.stages.retrieve import Retriever
from qa.settings import Settings
from qa.text import has_words, unpaired_surrogate

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000

# (stage, done, total): how long work reports its progress to a face.
Progress = Callable[[str, int, int], None]


def _silent(stage: str, done: int, total: int) -> None:
    pass


@dataclass(frozen=True)
class IndexReport:
    """What one ``qa index`` run did."""

    files: int
    added: int
    changed: int
    removed: int
    chunks: int
    embedded: int  # chunks the model read
    seconds: float
    index_dir: Path
    skipped: tuple[ingest.Skipped, ...] = ()
    reused: int = 0  # chunks of edited or renamed files whose text the index already held, with its vector
    published: str | None = None  # the engine the generation was copied to (the store setting), if any

    def summary(self) -> str:
        if not (self.added or self.changed or self.removed):
            line = f"Index up to date: {self.files} files, {self.chunks} chunks in {self.index_dir} ({self.seconds:.1f}s)"
        else:
            line = (
                f"Indexed {self.files} files ({self.added} added, {self.changed} changed, {self.removed} removed): "
                f"{self.chunks} chunks, {self.embedded} embedded{f' ({self.reused} unchanged kept)' if self.reused else ''}, "
                f"in {self.index_dir} ({self.seconds:.1f}s)"
            )
        if self.published:
            line += f"; live in {self.published}"
        skipped = ingest.skipped_summary(self.skipped)
        return f"{line}; {skipped}" if skipped else line


@dataclass(frozen=True)
class IndexStatus:
    """What ``qa status`` shows; the change lists are None when the corpus folder is not there to compare.

    ``added`` lists every readable-looking file the index lacks, including one a build skipped (unreadable).
    """

    index_dir: Path
    corpus_dir: Path
    files: int
    chunks: int
    model: str
    bytes: int
    built_at: str
    added: list[str] | None
    changed: list[str] | None
    removed: list[str] | None

    @property
    def up_to_date(self) -> bool:
        return not (self.added or self.changed or self.removed)


def check_question(question: str) -> str:
    """The question stripped, or a ``QuestionError`` saying why it cannot be searched; every face applies it."""
    if not isinstance(question, str):
        raise QuestionError("the question must be text")
    bad = unpaired_surrogate(question)
    if bad is not None:
        raise QuestionError(f"the question is not valid text (an unpaired surrogate at character {bad + 1}: invalid UTF-8 or UTF-16?)")
    question = question.strip()
    if not question:
        raise QuestionError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(f"the question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}")
    if not has_words(question):
        raise QuestionError("the question has no words to search (only punctuation, symbols or emoji)")
    return question


# What asking depends on: the questions' vectors and terms must be made as the index's were.
# The rest of the recipe (chunking, glosses) matters to a build that adds to the index.
_ASKING_NEEDS = ("model", "lexical_analyzer")


def _check_recipe(manifest: index_store.Manifest, settings: Settings, index_dir: Path | str, keys: Sequence[str] | None = None) -> None:
    """Refuse an index built another way: its vectors would not match the questions', or a build would mix recipes."""
    for key, value in _recipe(settings).items():
        if keys is not None and key not in keys:
            continue
        built = getattr(manifest, key)
        if built != value:
            undo = f" (or set {key} back to {built!r})" if key in Settings.model_fields else ""
            raise BadIndexError(
                f"index in {index_dir} was built with {key}={built!r}, not {value!r}; "
                f"rebuild it with: qa index --rebuild{_store_flag(settings)}{undo}"
            )


def _store_flag(settings: Settings) -> str:
    return f" --store {settings.store}" if store.in_engine(settings) else ""


def _publish(settings: Settings, progress: Progress, notify: Callable[[str], None] | None) -> str | None:
    """Copy the live generation into the engine the settings name, unless it is live there already."""
    if not store.in_engine(settings):
        return None
    from qa.stages import milvus

    built = index_store.read(settings.index_dir)
    try:
        if milvus.current_name(settings.store) != built.name:
            progress("publishing", 0, 1)
            milvus.publish(settings.store, built, notify)
            progress("publishing", 1, 1)
    finally:
        built.close()
    return settings.store


def _recipe(settings: Settings) -> dict[str, str | int]:
    """What vectors and terms depend on: an index is only reused under the same recipe."""
    return {
        "model": settings.model,
        "chunk_tokens": settings.chunk_tokens,
        "chunk_overlap_tokens": settings.chunk_overlap_tokens,
        "lexical_analyzer": ANALYZER,
        "chunker": CHUNKER,
        # Glosses are always made: read backwards they carry English questions to German words
        # in the dictionary bridge. The setting says whether the model reads them too.
        "glosser": glosser() + ("+embedded" if settings.glosses else ""),
        "extractor": ingest.EXTRACTOR,
    }


def _export_query_encoder(settings: Settings, embedder: Encoder | None) -> None:
    """Export a sentence-transformers model to ONNX once per machine, so that questions (and later builds) run without torch.

    The export lives in the user's cache folder, shared by every index of the
    model, and is made only when missing. It is a speed-up, never a
    requirement: if it fails, indexing still succeeds and questions are
    encoded with sentence-transformers. The bundled engine needs none: it
    never imports torch.
    """
    if is_bundled_e5(settings.model):
        return
    folder = onnx_encoder.export_dir(settings.model)
    onnx_encoder.remove_leftovers(folder)
    damage = onnx_encoder.damage(folder, settings.model)
    if damage is None:
        return
    if damage != "missing":
        log.warning("the ONNX export in %s is damaged (%s); exporting it again", folder, damage)
    try:
        embedder = embedder if isinstance(embedder, Embedder) else Embedder.load(settings.model)
        onnx_encoder.export(embedder.sentence_transformer, settings.model, folder)
    except Exception as error:  # any failure: the fallback is always there
        log.warning("questions will be encoded with sentence-transformers (slower): ONNX export of %s failed: %s", settings.model, error)


def _documents_encoder(model: str) -> Encoder:
    """What embeds a build's documents: the bundled engine, else the machine's ONNX export, else sentence-transformers."""
    return load_encoder(model) if is_bundled_e5(model) else _onnx_encoder(model) or Embedder.load(model)


def _onnx_encoder(model: str) -> onnx_encoder.OnnxEncoder | None:
    """The machine's ONNX export of the model, if it has a sound one: no torch import, a fraction of the start-up.

    Asking checks the export's file sizes only; ``qa index`` hashes it and
    repairs a damaged one.
    """
    folder = onnx_encoder.export_dir(model)
    damage = onnx_encoder.damage(folder, model, contents=False)
    if damage is None:
        try:
            return onnx_encoder.OnnxEncoder(folder)
        except Exception as error:  # a damaged export, or onnxruntime gone: still work
            damage = str(error).splitlines()[0] if str(error) else type(error).__name__
    if damage != "missing":
        log.warning("cannot load the ONNX encoder in %s (%s); using sentence-transformers (slower) until qa index repairs it", folder, damage)
    return None


def _glossed(preparing: Callable[[], Prepared], progress: Progress) -> Prepared:
    """Wait for the dictionaries' work on the changed files, showing that stage."""
    progress("glossing", 0, 1)
    prepared = preparing()
    progress("glossing", 1, 1)
    return prepared


def _counter(stage: str, total: int, progress: Progress) -> Callable[[int], None]:
    """Shows ``stage`` at 0 of ``total`` now; the result adds each batch done and shows the sum."""
    done = 0
    progress(stage, 0, total)

    def add(count: int) -> None:
        nonlocal done
        done += count
        progress(stage, done, total)

    return add


def _embed(
    embedder: Encoder | parallel.RayWorkers | None,
    texts: list[str],
    sentences: list[list[str]],
    known: dict[str, np.ndarray],
    dimension: int,
    batch_size: int,
    progress: Progress,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The chunks' vectors, and each chunk's sentence vectors, in one batch through the model.

    Sentences are embedded as passages too: re-reading and abstention compare
    the question with them. A text met twice (the sentences that overlapping
    chunks share) is embedded once, and a text in ``known`` not at all.
    """
    every_text = dict.fromkeys([*texts, *(sentence for chunk_sentences in sentences for sentence in chunk_sentences)])
    to_encode = [text for text in every_text if text not in known]
    on_batch = _counter("embedding chunks and sentences", len(to_encode), progress)
    encoded = embedder.encode_documents(to_encode, batch_size, on_batch) if to_encode and embedder is not None else np.zeros((0, dimension), np.float32)
    vector_of = {**known, **dict(zip(to_encode, encoded))}
    rows = [np.asarray([vector_of[text] for text in chunk_sentences], np.float32).reshape(-1, dimension) for chunk_sentences in sentences]
    return np.asarray([vector_of[text] for text in texts], np.float32).reshape(len(texts), dimension), rows


class Bot:
    """A loaded index and the model to query it: ``Bot.load().ask("...")``.

    Several threads may ask at once (the Slack and HTTP faces do): the stages
    keep no state between questions, and the models loaded on first use are
    loaded once, under a lock.
    """

    def __init__(self, settings: Settings, stored: Store, embedder: Encoder | None = None):
        """``embedder`` encodes the questions if given; by default the bundled engine, or a model's ONNX export if any."""
        self.settings = settings
        self._encoder: Encoder | None = embedder
        self._reranker: Reranker | None = None
        self._loading = threading.Lock()
        self._llm = LLM.from_settings(settings)
        # Retrieval is CPU-bound and its parts promise no thread safety, so the
        # threads of a server take turns at it; an LLM call, which may take
        # up to llm_timeout, is made outside the lock, so one slow answer
        # never holds up another question.
        self._searching = threading.RLock()
        self._open(stored)
        self._followed = store.live_mark(settings)

    def _open(self, stored: Store) -> None:
        self._stored = stored
        self._retriever = Retriever(
            stored,
            self._encode_query,
            self.settings.retriever,
            Bridge(stored.aliases, stored.lexicon, self.settings.bridges),
            self._rerank if self.settings.reranker else None,
            read_glosses=self.settings.glosses,
        )
        self._scale_sample: np.ndarray | None = None

    def _follow_index(self) -> None:
        """Answer from the index's live generation: a server or a Slack bot picks up what ``qa index`` wrote.

        One cheap look per question (a stat of ``index/CURRENT``, or one key
        read in Milvus) says whether a build switched generations; the new one is opened between two questions (under the
        retrieval lock), and one that cannot be opened leaves the bot
        answering from the generation it has, with a warning.
        """
        mark = store.live_mark(self.settings)
        if mark == self._followed:
            return
        with self._searching:
            if mark == self._followed:
                return
            self._followed = mark
            try:
                stored = store.read(self.settings)
                _check_recipe(stored.manifest, self.settings, store.where(self.settings), _ASKING_NEEDS)
            except QAError as error:
                log.warning("still answering from %s: the new index cannot be opened (%s)", self._stored.name, error)
                return
            if stored.name != self._stored.name:
                self._open(stored)

    @classmethod
    def load(
        cls,
        settings: Settings | None = None,
        *,
        build_if_missing: bool = True,
        progress: Progress = _silent,
        notify: Callable[[str], None] | None = None,
    ) -> "Bot":
        """Open the index named by the settings, building it first if there is none."""
        settings = settings or Settings.load()
        if not store.exists(settings):
            if not build_if_missing:
                raise BadIndexError(f"no index in {store.where(settings)}: build one with: qa index{_store_flag(settings)}")
            cls.index(settings, progress=progress, notify=notify)
        stored = store.read(settings)
        _check_recipe(stored.manifest, settings, store.where(settings), _ASKING_NEEDS)
        return cls(settings, stored)

    @staticmethod
    def index(
        settings: Settings, *, rebuild: bool = False, progress: Progress = _silent, notify: Callable[[str], None] | None = None
    ) -> IndexReport:
        """Bring the index up to date with the corpus, embedding only what changed.

        ``notify`` hears, once, that the build waits for another one; the wait
        is not counted in the report's time.

        A first build that fails (no documents, Ctrl-C) removes the index
        folder it created, so a mistake leaves nothing behind; a failed update
        leaves the live index as it was.
        """
        folders = [settings.index_dir, *settings.index_dir.parents]
        created = next((folder for folder in reversed(folders) if not folder.exists()), None)
        try:
            return Bot._update(settings, rebuild, progress, notify)
        except BaseException:
            if created is not None:
                shutil.rmtree(created, ignore_errors=True)
            raise

    @staticmethod
    def status(settings: Settings) -> IndexStatus:
        """What the index holds and how the corpus has changed since it was built; reads no vectors."""
        manifest = index_store.read_manifest(settings.index_dir)
        # Generations share their segments (hard links): each file counts once, as the disk holds it.
        size = sum({(stat.st_dev, stat.st_ino): stat.st_size for stat in (path.stat() for path in settings.index_dir.rglob("*") if path.is_file())}.values())
        now: dict[str, str] | None = None
        if settings.corpus_dir.is_dir():
            # Hashes of the bytes alone, as the manifest keeps them: nothing is extracted, and a file
            # that looks as it did when it was indexed is not read.
            seen = ingest.SeenFiles(settings.index_dir)
            now = {}
            for source, path in ingest.find_files(settings.corpus_dir, settings.include, settings.exclude):
                if path.suffix.lower() in ingest.READERS:
                    try:
                        now[source] = seen.hash_of(source, stat_of(path)) or hashlib.sha256(path.read_bytes()).hexdigest()
                    except OSError:
                        continue
        built = manifest.files
        return IndexStatus(
            index_dir=settings.index_dir,
            corpus_dir=settings.corpus_dir,
            files=len(manifest.files),
            chunks=manifest.chunk_count,
            model=manifest.model,
            bytes=size,
            built_at=manifest.built_at,
            added=None if now is None else sorted(set(now) - set(built)),
            changed=None if now is None else sorted(source for source in now if source in built and built[source] != now[source]),
            removed=None if now is None else sorted(set(built) - set(now)),
        )

    @staticmethod
    def _update(settings: Settings, rebuild: bool, progress: Progress, notify: Callable[[str], None] | None) -> IndexReport:
        corpus_dir, index_dir = settings.corpus_dir, settings.index_dir

        def waiting(holder: str) -> None:
            if notify is not None:
                notify(f"waiting for the build in process {holder} (index {index_dir})")

        with index_store.build_lock(index_dir, waiting):
            started = time.perf_counter()
            if not settings.workers:  # the workers gloss a build's files themselves
                dictionary_worker.start()
            previous = None
            if index_store.exists(index_dir) and not rebuild:
                try:  # checked as opening checks it; a segment it merges is hashed whole (index_store.write)
                    previous = index_store.read(index_dir)
                except DamagedIndexError as error:
                    log.warning("%s; rebuilding the whole index", str(error).split("; repair it")[0])
                else:
                    _check_recipe(previous.manifest, settings, index_dir)
            manifest = previous.manifest if previous is not None else None
            store = ingest.ExtractStore(index_dir)
            # Files that look as they did when indexed are not read again.
            seen = ingest.SeenFiles(index_dir)
            corpus = ingest.read_corpus(
                corpus_dir,
                settings.include,
                settings.exclude,
                store,
                progress,
                settings.max_file_bytes,
                settings.max_line_chars,
                seen,
                manifest.files if manifest is not None else None,
            )
            if corpus.skipped and settings.strict:
                raise CorpusError(f"{corpus.skipped_summary()} (--strict), first {corpus.skipped[0]}")
            documents = corpus.documents
            if not corpus.hashes:
                raise CorpusError(ingest.no_documents(corpus_dir, corpus))
            skipped = tuple(corpus.skipped)
            changes = index_store.diff(documents, manifest, corpus.unchanged)
            if manifest is not None and not changes.any:  # the files are checked, and the manifest says nothing changed
                seen.save()
                _export_query_encoder(settings, None)
                published = _publish(settings, progress, notify)
                return IndexReport(len(corpus.hashes), 0, 0, 0, manifest.chunk_count, 0, time.perf_counter() - started, index_dir, skipped, published=published)

            # The bundled engine maps its weights in an instant, and one that cannot run on this CPU must say
            # so before any work starts; a sentence-transformers model loads while the dictionaries work.
            bundled = load_encoder(settings.model) if is_bundled_e5(settings.model) else None
            sizes = parallel.ChunkSizes(settings.chunk_tokens, settings.chunk_overlap_tokens, settings.max_chunk_chars)
            # The workers start on first use, and stop when the build leaves the block below, whatever happens in it.
            workers = parallel.RayWorkers(functools.partial(_documents_encoder, settings.model), settings.workers, settings.ray_address) if settings.workers and changes.to_embed else None
            # Only the added and changed files are read for glosses and lexicons: by the workers, or in the dictionaries' process.
            if workers is None:
                preparing = prepare_in_background({d.source: d.text for d in changes.to_embed}, [d.source for d in changes.to_embed])
            # Once the machine has the model's ONNX export, a build needs no torch either:
            # one changed file costs seconds, not the import of sentence-transformers.
            encoder: Encoder | None = None
            fresh_chunks: dict[str, list[Chunk]] = {}
            if changes.to_embed:
                progress("loading model", 0, 1)
                encoder = bundled or _documents_encoder(settings.model)
                progress("loading model", 1, 1)
            with workers or contextlib.nullcontext():
                if workers is not None:
                    done = _counter("chunking and glossing on the workers", len(changes.to_embed), progress)
                    fresh_chunks, on_workers = workers.prepare(changes.to_embed, sizes, done)
                    preparing = lambda: on_workers  # noqa: E731
                elif encoder is not None:
                    for number, document in enumerate(changes.to_embed, start=1):
                        fresh_chunks[document.source] = chunk_for_model(document, encoder.count_tokens, encoder.max_tokens, *sizes)
                        progress("chunking", number, len(changes.to_embed))
                # The default model reads the text itself, so it embeds while the dictionaries gloss in their own
                # process; an English-only model (glosses = true) reads a chunk's English glosses where it has
                # them, for it cannot read Chinese or Korean text, and German only in part (the default model
                # reads the text better than its glosses: XQuAD de hit@1 0.835 against 0.811, dense alone).
                prepared = _glossed(preparing, progress) if settings.glosses else None

                def view(chunk: Chunk, glosses: list[GlossedWord] | None = None) -> str:
                    """The text the model reads of a chunk: its English glosses where the model embeds them."""
                    if prepared is None:
                        return chunk.text
                    if glosses is None:
                        glosses = words_within(prepared.glosses.get(chunk.source, []), chunk.char_start, chunk.char_end)
                    return english_view(glosses, chunk.text)

                chunks_in_order = [chunk for chunks in fresh_chunks.values() for chunk in chunks]
                texts = [view(chunk) for chunk in chunks_in_order]
                # An edited file's unchanged chunks and sentences, and a renamed file's, keep the vectors the index holds.
                known = previous.vectors_by_text([*changes.changed_sources, *changes.removed], view) if previous is not None and texts else {}
                dimension = encoder.dimension if encoder is not None else manifest.dimension
                reused = sum(1 for text in texts if text in known)
                vectors, sentence_rows = _embed(
                    workers or encoder,
                    texts, [quotable_texts(chunk.text) for chunk in chunks_in_order], known, dimension, settings.batch_size, progress
                )
            if prepared is None:
                prepared = _glossed(preparing, progress)
            fresh_glosses = {
                source: [words_within(prepared.glosses.get(source, []), c.char_start, c.char_end) for c in chunks]
                for source, chunks in fresh_chunks.items()
            }
            fresh = {}
            row = 0
            by_source = {d.source: d for d in changes.to_embed}
            for source, chunks in fresh_chunks.items():
                glosses = fresh_glosses[source]
                fresh[source] = index_store.FreshFile(
                    chunks,
                    vectors[row : row + len(chunks)],
                    sentence_rows[row : row + len(chunks)],
                    glosses,
                    mine_aliases(by_source[source].text),
                    glossed_lexicon([c.text for c in chunks], glosses),
                )
                row += len(chunks)
            progress("writing", 0, 1)
            written = index_store.write(
                index_dir,
                previous,
                corpus.hashes,
                [*changes.changed_sources, *changes.removed],
                fresh,
                prepared.lexicons,
                {**_recipe(settings), "dimension": dimension},
                settings.ann,
            )
            progress("writing", 1, 1)
            seen.save()
            # The generation just replaced may still be read, so its extractions stay too.
            store.prune(set(written.files.values()) | set(manifest.files.values() if manifest else ()))
            _export_query_encoder(settings, encoder)
            published = _publish(settings, progress, notify)
        return IndexReport(
            files=len(corpus.hashes),
            added=len(changes.added),
            changed=len(changes.changed),
            removed=len(changes.removed),
            chunks=written.chunk_count,
            embedded=len(texts) - reused,
            reused=reused,
            seconds=time.perf_counter() - started,
            index_dir=index_dir,
            skipped=skipped,
            published=published,
        )

    @staticmethod
    def verify(settings: Settings) -> str:
        """Check every file of the index against its checksum, that it loads, and the model export; a line saying what was checked.

        Raises the ``BadIndexError`` naming the first damaged file.
        """
        index_dir = settings.index_dir
        index_store.check_folder(index_dir)
        if not index_store.exists(index_dir):
            raise BadIndexError(f"no index in {index_dir}: build one with: qa index")
        manifest = index_store.verify(index_dir)
        _check_recipe(manifest, settings, index_dir)
        stored = index_store.read(index_dir)
        if is_bundled_e5(settings.model):
            export = "the bundled engine (no export needed)"
        else:
            folder = onnx_encoder.export_dir(settings.model)
            damage = onnx_encoder.damage(folder, settings.model)
            if damage not in (None, "missing"):
                raise DamagedIndexError(f"the ONNX export in {folder} is damaged: {damage}; repair it with: qa index --index-dir {index_dir}")
            export = "its ONNX export intact" if damage is None else "no ONNX export (questions use sentence-transformers)"
        return (
            f"Index in {index_dir} verified: {len(manifest.checksums)} files match their checksums, "
            f"{len(stored.chunks)} chunks of {len(manifest.files)} documents load, {export}"
        )

    def _question_encoder(self) -> Encoder:
        if self._encoder is None:
            with self._loading:
                if self._encoder is None:
                    self._encoder = self._load_query_encoder()
        return self._encoder

    def _encode_query(self, question: str) -> np.ndarray:
        return self._question_encoder().encode_queries([question])[0]

    def _rerank(self, question: str, texts: list[str]) -> np.ndarray:
        if self._reranker is None:
            with self._loading:
                if self._reranker is None:
                    self._reranker = Reranker.load(self.settings.reranker)
        return self._reranker.scores(question, texts)

    def _load_query_encoder(self) -> Encoder:
        """The bundled engine, or the machine's ONNX export of a model when it has one: no torch import either way."""
        if is_bundled_e5(self.settings.model):
            return load_encoder(self.settings.model)
        return _onnx_encoder(self.settings.model) or Embedder.load(self.settings.model)

    def search(self, question: str, k: int | None = None) -> list[Passage]:
        """The top passages for a question, best first."""
        question = check_question(question)
        self._follow_index()
        with self._searching:
            return self._retriever.search(self.analyse(question), k or self.settings.top_k)

    def ask(
        self,
        question: str,
        k: int | None = None,
        history: Sequence[str | Answer] | None = None,
        on_text: TextSink | None = None,
    ) -> Answer:
        """Answer from the documents, citing every quoted sentence.

        ``history`` holds the earlier turns of the same conversation, as answers
        or as bare questions (replayed, extractively, so that a golden file's
        follow-ups are read exactly as a live conversation's). With an LLM
        configured the reply is the model's, streamed to ``on_text`` when given;
        without one, or when it fails, it is the extractive answer.
        """
        question = check_question(question)
        self._follow_index()
        turns: list[Answer] = []
        for earlier in list(history or [])[-self.settings.conversation_turns :]:
            turns.append(earlier if isinstance(earlier, Answer) else self._extractive(check_question(earlier), turns, k, condense=False))
        answer = self._extractive(question, turns, k, condense=True)
        if self._llm is None or answer.abstained:  # what the documents do not answer, the LLM is not asked to
            return answer
        return self._llm.answer(question, answer.passages, answer, on_text)

    def _extractive(self, question: str, turns: list[Answer], k: int | None, condense: bool) -> Answer:
        """Analyse the question in its conversation, retrieve for it, and quote the best evidence."""
        warnings = []
        standalone = None
        if condense and turns and self._llm is not None:
            try:
                standalone = self._llm.condense(question, turns)
            except LLMError as error:
                warnings.append(f"{error}; the follow-up was searched with the conversation's entities")
        with self._searching:
            analysed = self.analyse(question, turns, standalone)
            passages = self._retriever.search(analysed, k or self.settings.top_k)
            answer = compose(analysed, passages, self._abstain_below(), signals=self.signals(analysed, first_stage(passages)))
        searched = None if analysed.search == question else analysed.search
        return answer.model_copy(update={"searched": searched, "warnings": warnings})

    def signals(self, question: Question, passages: list[Passage], own_scale: bool = False) -> Signals | None:
        """The model's evidence that the passages answer the question; None where nothing is indexed.

        The question's scale is shrunk towards the calibration's prior when
        it was fitted for this model, unless ``own_scale`` asks for the
        collection's alone (what the calibration benchmark records).
        """
        if not passages or not self._stored.manifest.chunk_count:
            return None
        calibration = default_calibration()
        prior = calibration.scale_prior if calibration.model == self.settings.model and not own_scale else None
        vector = self._retriever.question_vector(question)
        ids = [passage.chunk_id for passage in passages[:SENTENCE_PASSAGES] if passage.chunk_id is not None]
        sentences = np.concatenate([np.zeros((0, len(vector)), np.float32), *self._stored.sentence_vectors(ids)])
        best = max((p.dense for p in passages[:PASSAGES_READ] if p.dense is not None), default=None)
        if self._scale_sample is None:
            self._scale_sample = self._stored.vectors_at(sample_positions(self._stored.live))
        return measure(vector, self._scale_sample, prior, best, sentences)

    def _abstain_below(self) -> float:
        """The setting, else the calibrated threshold, which holds only for the model it was fitted with: another never abstains."""
        if self.settings.abstain_below is not None:
            return self.settings.abstain_below
        calibration = default_calibration()
        return calibration.threshold if calibration.model == self.settings.model else 0.0

    def analyse(self, question: str, turns: Sequence[Answer] = (), standalone: str | None = None) -> Question:
        """The question analysed once against this index's vocabulary and bridges, in its conversation."""
        earlier = [turn.analysis or analyse(turn.question) for turn in turns]
        return analyse(question, earlier, self._retriever.bridge, self._retriever.knows, standalone)

    def source(
        self,
        source: str,
        line_start: int,
        line_end: int | None = None,
        context: int = 3,
        *,
        char_start: int | None = None,
        char_end: int | None = None,
    ) -> SourceExcerpt:
        """Cited lines with ``context`` lines around them, from the text the index quoted.

        Read from the extraction stored at indexing time, so a PDF citation is
        checked without the PDF, and a file edited since shows what was cited.
        Only documents in the index are read, by id, never another path. A
        citation's ``char_start``/``char_end`` mark its quote exactly in the
        cited lines (``marked``), as the chat page highlights it.
        """
        line_end = line_start if line_end is None else line_end
        sha256 = self._stored.manifest.files.get(source)
        if sha256 is None:
            raise SourceError(f"no indexed file is named {source!r}")
        extraction = self._stored.extraction(sha256)
        if extraction is None:
            raise SourceError(f"the index holds no stored text of {source}; rebuild it with: qa index --rebuild")
        lines = [line.removesuffix("\r") for line in extraction.text.split("\n")]
        if lines and lines[-1] == "":
            lines.pop()
        if line_start > line_end:
            raise SourceError(f"lines {line_start}-{line_end} run backwards; write the first line first")
        if line_start < 1 or line_end > len(lines):
            raise SourceError(f"{source} has lines 1-{len(lines)}; there is no line {line_start if line_start < 1 else line_end}")
        first = max(1, line_start - context)
        last = min(len(lines), line_end + context)
        offset = sum(len(line) + 1 for line in lines[: line_start - 1])
        marked = []
        if char_start is not None or char_end is not None:
            if char_start is None or char_end is None or not 0 <= char_start < char_end <= len(extraction.text):
                raise SourceError(f"characters {char_start}-{char_end} are not a span of {source}, which has {len(extraction.text)}")
            marked = quote_marks(extraction.text, char_start, char_end, line_start, line_end)
        return SourceExcerpt(
            source=source,
            page=page_at(extraction.pages, offset),
            line_start=line_start,
            line_end=line_end,
            first_line=first,
            lines=lines[first - 1 : last],
            total_lines=len(lines),
            marked=marked,
        )

    def conversation(self) -> "Conversation":
        """A conversation whose follow-ups are understood against its earlier turns."""
        return Conversation(self)

    def document_languages(self) -> dict[str, str]:
        """Each indexed file's language, guessed from its indexed text."""
        texts: dict[str, list[str]] = {}
        for _, chunk, _ in self._stored.each_chunk():
            texts.setdefault(chunk.source, []).append(chunk.text)
        return {source: detect(" ".join(parts)) for source, parts in texts.items()}

    def evaluate(self, cases: list[GoldenCase], progress: Progress = _silent) -> list[CaseResult]:
        """Ask every golden question and score retrieval and answer against it."""
        languages = self.document_languages()
        results = []
        for number, case in enumerate(cases, start=1):
            answer = self.ask(case.question, k=max(self.settings.top_k, RANKS_KEPT), history=case.history)
            results.append(score_case(case, answer, languages.get(case.source or "")))
            progress("evaluating", number, len(cases))
        return results
