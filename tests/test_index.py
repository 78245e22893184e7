"""Incremental, atomic indexing on a copy of the seed corpus."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

import faiss
import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from qa import Bot, Settings
from qa.stages import index as index_store
from qa.errors import BadIndexError
from qa.evaluate import load_golden
from qa.models import Chunk, Document
from qa.stages import ingest
from qa.stages.chunk import quotable_texts
from qa.stages.ingest.seen import SETTLE_NS
from qa.stages.embed import load_encoder


@pytest.fixture
def settings(tmp_path, corpus_copy) -> Settings:
    return Settings(corpus_dir=corpus_copy, index_dir=tmp_path / "index")


class TestIncremental:
    def test_run_unchanged_corpus_embeds_nothing(self, settings):
        first = Bot.index(settings)
        assert first.embedded == first.chunks > 0
        again = Bot.index(settings)
        assert (again.embedded, again.added, again.changed, again.removed) == (0, 0, 0, 0)

    def test_run_changed_file_reembeds_only_its_chunks(self, settings):
        Bot.index(settings)
        before = index_store.read(settings.index_dir)
        german = settings.corpus_dir / "000_81784bd76aef5d8c.txt"
        german.write_text(german.read_text(encoding="utf-8") + "\nEin neuer Satz über Quantencomputer.\n", encoding="utf-8")
        report = Bot.index(settings)
        after = index_store.read(settings.index_dir)
        german_chunks = [c for c in after.chunks if c.source == german.name]
        old_german = [c for c in before.chunks if c.source == german.name]
        edited = [c for c in german_chunks if c.text not in {o.text for o in old_german}]
        # Only the chunk that holds the new sentence goes through the model; the file's other chunks keep their vectors.
        assert report.changed == 1 and (report.embedded, report.reused) == (len(edited), len(german_chunks) - len(edited)) == (1, 3)
        vector_of = {c.text: v for c, v in zip(before.chunks, before.vectors)}
        for chunk, vector in zip(after.chunks, after.vectors):
            if chunk.source == german.name and chunk not in edited:
                assert (vector == vector_of[chunk.text]).all()
        encoder = load_encoder(settings.model)
        (edited_id,) = [i for i, c, _ in after.each_chunk() if c == edited[0]]
        assert np.allclose(after.rows[edited_id], encoder.encode_documents([edited[0].text])[0], atol=1e-5)
        assert np.allclose(after.sentence_vectors([edited_id])[0], encoder.encode_documents(quotable_texts(edited[0].text)), atol=2e-3)
        for source in ("001_fde5e7576b522852.txt", "002_7257b5aa37c3b2f3.txt"):
            old = [c for c in before.chunks if c.source == source]
            new = [c for c in after.chunks if c.source == source]
            assert old == new
        # Kept vectors are the very vectors embedded before.
        kept = [i for i, c in enumerate(after.chunks) if c.source != german.name]
        was = [i for i, c in enumerate(before.chunks) if c.source != german.name]
        assert (after.vectors[kept] == before.vectors[was]).all()

    def test_run_sentence_vectors_are_the_models_and_a_build_shares_the_segments_it_keeps(self, settings):
        Bot.index(settings)
        before = index_store.read(settings.index_dir)
        (settings.corpus_dir / "notes.txt").write_text("The meeting is on Friday. It takes place in Berlin.\n", encoding="utf-8")
        Bot.index(settings)
        after = index_store.read(settings.index_dir)
        for name in (index_store.STORE, index_store.VECTORS, index_store.SENTENCES):
            kept = f"{index_store.segment_folder(0)}/{name}"
            assert os.path.samefile(before.generation / kept, after.generation / kept)
            assert after.manifest.checksums[kept] == before.manifest.checksums[kept]
        assert after.manifest.segments == [0, before.manifest.rows]
        encoder = load_encoder(settings.model)
        (note_id, note, _), = [entry for entry in after.each_chunk() if entry[1].source == "notes.txt"]
        first_id, first, _ = next(after.each_chunk())
        for chunk_id, chunk in ((note_id, note), (first_id, first)):
            expected = encoder.encode_documents(quotable_texts(chunk.text))
            assert np.allclose(after.sentence_vectors([chunk_id])[0], expected, atol=2e-3)
        assert len(after.sentence_vectors([note_id])[0]) == 2

    def test_run_renamed_file_keeps_its_vectors(self, settings):
        Bot.index(settings)
        before = index_store.read(settings.index_dir)
        korean = settings.corpus_dir / "002_7257b5aa37c3b2f3.txt"
        korean.rename(settings.corpus_dir / "renamed.txt")
        report = Bot.index(settings)
        after = index_store.read(settings.index_dir)
        assert (report.added, report.removed, report.embedded, report.reused) == (1, 1, 0, sum(1 for c in after.chunks if c.source == "renamed.txt"))
        old = {c.text: (v, s) for (i, c, _), v, s in zip(before.each_chunk(), before.vectors, before.sentence_vectors(np.flatnonzero(before.live)))}
        for (i, chunk, _), vector in zip(after.each_chunk(), after.vectors):
            assert (vector == old[chunk.text][0]).all() and (after.sentence_vectors([i])[0] == old[chunk.text][1]).all()

    def test_run_files_that_look_unchanged_are_not_read_again(self, settings, monkeypatch):
        real = ingest.time.time_ns
        monkeypatch.setattr(ingest.time, "time_ns", lambda: real() + 10 * SETTLE_NS)  # the files have settled
        Bot.index(settings)
        read = []
        original = ingest._read_one
        monkeypatch.setattr(ingest, "_read_one", lambda source, *args, **kwargs: read.append(source) or original(source, *args, **kwargs))
        german = settings.corpus_dir / "000_81784bd76aef5d8c.txt"
        german.write_text(german.read_text(encoding="utf-8") + "\nEin neuer Satz über Quantencomputer.\n", encoding="utf-8")
        report = Bot.index(settings)
        assert read == [german.name] and (report.files, report.changed) == (3, 1)
        assert Bot.status(settings).changed == []

    def test_run_added_and_removed_files(self, settings):
        Bot.index(settings)
        (settings.corpus_dir / "notes").mkdir()
        (settings.corpus_dir / "notes" / "extra.md").write_text("# Notes\n\nThe meeting is on Friday in Berlin.\n", encoding="utf-8")
        (settings.corpus_dir / "001_fde5e7576b522852.txt").unlink()
        report = Bot.index(settings)
        assert (report.added, report.removed) == (1, 1)
        sources = {c.source for c in index_store.read(settings.index_dir).chunks}
        assert sources == {"000_81784bd76aef5d8c.txt", "002_7257b5aa37c3b2f3.txt", "notes/extra.md"}
        assert report.embedded == sum(1 for c in index_store.read(settings.index_dir).chunks if c.source == "notes/extra.md")


class TestAtomic:
    def test_run_interrupted_build_keeps_previous_index(self, settings, monkeypatch):
        Bot.index(settings)
        before = (settings.index_dir / "CURRENT").read_text()
        (settings.corpus_dir / "new.txt").write_text("Ein ganz neuer Artikel über Raumfahrt.\n", encoding="utf-8")

        def crash(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(index_store, "_write_file", crash)
        with pytest.raises(KeyboardInterrupt):
            Bot.index(settings)
        monkeypatch.undo()
        assert (settings.index_dir / "CURRENT").read_text() == before
        assert not [p for p in settings.index_dir.iterdir() if p.name.startswith(".building-")]
        assert len(index_store.read(settings.index_dir).manifest.files) == 3

    def test_run_the_live_and_the_replaced_generation_remain(self, settings):
        Bot.index(settings)
        first = (settings.index_dir / "CURRENT").read_text().strip()
        for number in (1, 2):
            (settings.corpus_dir / f"new{number}.txt").write_text("Ein ganz neuer Artikel über Raumfahrt.\n", encoding="utf-8")
            Bot.index(settings, rebuild=number == 2)
            if number == 1:
                second = (settings.index_dir / "CURRENT").read_text().strip()
        generations = sorted(p.name for p in settings.index_dir.iterdir() if p.name.startswith("gen-"))
        assert first not in generations and generations == sorted([second, (settings.index_dir / "CURRENT").read_text().strip()])


class TestManifest:
    def test_run_records_recipe_and_hashes(self, settings):
        Bot.index(settings)
        stored = index_store.read(settings.index_dir)
        manifest = stored.manifest
        assert manifest.format_version == index_store.FORMAT_VERSION
        assert manifest.dimension == 384 and manifest.chunk_tokens == settings.chunk_tokens
        assert set(manifest.files) == {p.name for p in settings.corpus_dir.iterdir()}
        assert all(len(h) == 64 for h in manifest.files.values())

    def test_run_index_with_other_chunking_is_refused(self, settings):
        Bot.index(settings)
        other = settings.model_copy(update={"chunk_tokens": 100})
        with pytest.raises(BadIndexError, match="qa index --rebuild"):
            Bot.index(other)
        assert Bot.index(other, rebuild=True).chunks > 0

    def test_run_missing_part_is_damage_that_qa_index_repairs(self, settings):
        Bot.index(settings)
        generation = settings.index_dir / (settings.index_dir / "CURRENT").read_text().strip()
        vectors = generation / index_store.segment_folder(0) / index_store.VECTORS
        vectors.write_bytes(vectors.read_bytes()[:-4])
        with pytest.raises(BadIndexError, match="damaged"):
            index_store.read(settings.index_dir)
        report = Bot.index(settings)
        assert report.embedded > 0 and len(index_store.read(settings.index_dir).chunks) == report.chunks


def _clustered_vectors(count: int, dimension: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).standard_normal((50, dimension), dtype=np.float32)
    vectors = centres[rng.integers(0, 50, count)] + 0.5 * rng.standard_normal((count, dimension), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _write_synthetic(index_dir: Path, vectors: np.ndarray, ann: str) -> index_store.StoredIndex:
    """An index of one chunk per vector, for dense-index tests that need no text."""
    chunks = [Chunk(source="synthetic.txt", char_start=i, char_end=i + 1, line_start=i + 1, line_end=i + 1, text="x") for i in range(len(vectors))]
    fields = dict(model="synthetic", dimension=vectors.shape[1], chunk_tokens=200, chunk_overlap_tokens=40, lexical_analyzer="synthetic", chunker="synthetic", glosser="off")
    document = Document(source="synthetic.txt", text="x", sha256="0" * 64)
    fresh = {"synthetic.txt": index_store.FreshFile(chunks, vectors, [vectors[i : i + 1] for i in range(len(chunks))], [[] for _ in chunks], {}, {})}
    index_store.write(index_dir, None, {document.source: document.sha256}, [], fresh, {}, fields, ann)
    return index_store.read(index_dir)


class TestApproximate:
    def test_auto_takes_ivf_from_its_threshold(self):
        assert index_store.dense_kind(index_store.IVF_FROM_CHUNKS - 1, "auto") == "flat"
        assert index_store.dense_kind(index_store.IVF_FROM_CHUNKS, "auto") == "ivf"
        assert index_store.dense_kind(10_000_000, "flat") == "flat"
        assert index_store.dense_kind(52, "ivf") == "ivf"
        assert index_store.dense_kind(52, "hnsw") == "hnsw"

    def test_ivf_too_small_to_train_stays_exact(self):
        assert index_store.dense_kind(2**index_store.PQ_BITS - 1, "ivf") == "flat"
        assert index_store.dense_kind(0, "ivf") == "flat"

    def test_ivf_scans_a_smaller_share_of_lists_as_the_corpus_grows(self):
        assert index_store.ivf_lists(1_000_000) == 1000 and index_store.ivf_probes(1000) == 222
        assert index_store.ivf_probes(200) / 200 > index_store.ivf_probes(1000) / 1000
        assert index_store.ivf_lists(50_000) == 50 and index_store.ivf_probes(50) == 50
        assert index_store.ivf_lists(52) == 1 and index_store.ivf_probes(1) == 1

    @pytest.mark.parametrize("dimension, subquantizers", [(384, 96), (768, 192), (385, 77), (3, 1)])
    def test_pq_codes_split_the_dimension_evenly(self, dimension, subquantizers):
        assert index_store.pq_subquantizers(dimension) == subquantizers

    @pytest.mark.parametrize("ann, kind", [("hnsw", "IndexIDMap"), ("ivf", "IndexIVFPQFastScan")])
    def test_run_forced_approximate_index_answers_like_flat(self, settings, make_bot, ann, kind):
        approximate = Settings.load(corpus_dir=settings.corpus_dir, index_dir=settings.index_dir, ann=ann, retriever="dense")
        Bot.index(approximate)
        stored = index_store.read(approximate.index_dir)
        assert type(stored.dense_index).__name__ == kind and stored.manifest.dense == ann
        flat = make_bot(retriever="dense")
        assert flat._stored.dense_index is None and flat._stored.manifest.dense == "flat"
        assert (stored.vectors == flat._stored.vectors).all()
        bot = Bot.load(approximate)
        for case in load_golden(Path(__file__).parent / "golden" / "seeds.jsonl"):
            question = " ".join([*case.history, case.question])
            assert [(p.source, p.line_start) for p in bot.search(question, 5)] == [
                (p.source, p.line_start) for p in flat.search(question, 5)
            ], case.id

    def test_ivf_round_trips_through_write_and_read(self, tmp_path):
        vectors = _clustered_vectors(20_000, 64)
        stored = _write_synthetic(tmp_path, vectors, "ivf")
        assert type(stored.dense_index).__name__ == "IndexIVFPQFastScan"
        assert stored.dense_index.nprobe == index_store.ivf_probes(index_store.ivf_lists(20_000)) > 1
        assert (stored.vectors == vectors).all()
        assert index_store.dense_search(stored.rows, stored.dense_index, vectors[7], 10)[0] == 7

    @pytest.mark.parametrize("ann", ["hnsw", "ivf"])
    def test_approximate_recall(self, tmp_path, ann):
        vectors = _clustered_vectors(5000, 64)
        stored = _write_synthetic(tmp_path, vectors, ann)
        questions = _clustered_vectors(200, 64, seed=1)
        truth = np.argsort(-(questions @ vectors.T), axis=1)[:, :10]
        found = [index_store.dense_search(stored.rows, stored.dense_index, question, 10) for question in questions]
        assert np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]) >= 0.95

    @pytest.mark.parametrize("ann", ["flat", "ivf"])
    def test_dense_search_returns_live_ids_and_keeps_the_thread_count(self, tmp_path, ann):
        vectors = _clustered_vectors(30, 64)
        stored = _write_synthetic(tmp_path, vectors, ann)
        threads = faiss.omp_get_max_threads()
        found = index_store.dense_search(stored.rows, stored.dense_index, vectors[3], 50, stored.live)
        assert faiss.omp_get_max_threads() == threads
        assert sorted(found.tolist()) == list(range(30)) and found[0] == 3


def _postings_by_chunk(stored: index_store.StoredIndex) -> dict[str, set[tuple[str, int, int]]]:
    """Every term's postings named by chunk (source, offset) instead of id, so that two generations compare."""
    names = {chunk_id: (chunk.source, chunk.char_start) for chunk_id, chunk, _ in stored.each_chunk()}
    table: dict[str, set] = {}
    terms = {term for segment in stored._segments for (term,) in stored._query("SELECT term FROM postings", (), segment.database)}
    for term in terms:
        found = stored.postings(term)
        if found is not None:
            table[term] = {(*names[int(i)], int(tf)) for i, tf in zip(*found)}
    return table


def _pairs(lexicon: dict[str, dict[str, int]]) -> set[tuple[str, str]]:
    return {(key, word) for key, words in lexicon.items() for word in words}


def _lexicon_table(stored: index_store.StoredIndex) -> dict[tuple[str, str], tuple[int, int]]:
    """Every (key, word) of the collection's lexicon, with its rank and how many files hold it."""
    return {(key, word): (rank, files) for key, word, rank, files in stored._query("SELECT key, word, rank, files FROM lexicon")}


def _by_key(stored: index_store.StoredIndex) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for (key, word), (rank, _) in _lexicon_table(stored).items():
        table.setdefault(key, {})[word] = rank
    return table


def _reseal(index_dir: Path, generation: Path) -> None:
    """Record a hand-changed generation's new checksums, as the build that wrote it would have."""
    from qa.checksums import folder_sums

    manifest = index_store.read_manifest(index_dir)
    manifest = manifest.model_copy(update={"checksums": folder_sums(generation, skip=(index_store.MANIFEST,))})
    (generation / index_store.MANIFEST).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")


class TestLazyStore:
    def test_run_incremental_build_equals_a_fresh_one(self, settings, tmp_path):
        """Changed, added and removed files leave postings, aliases, chunks and vectors as a rebuild makes them."""
        Bot.index(settings)
        korean = settings.corpus_dir / "002_7257b5aa37c3b2f3.txt"
        korean.write_text(korean.read_text(encoding="utf-8").replace("NIST", "NIST와 KIAT", 1), encoding="utf-8")
        (settings.corpus_dir / "001_fde5e7576b522852.txt").unlink()
        (settings.corpus_dir / "new.txt").write_text("국립표준기술연구소(NIST) signed again.\n", encoding="utf-8")
        Bot.index(settings)
        updated = index_store.read(settings.index_dir)
        rebuilt_settings = settings.model_copy(update={"index_dir": tmp_path / "rebuilt"})
        Bot.index(rebuilt_settings)
        rebuilt = index_store.read(rebuilt_settings.index_dir)
        assert updated.manifest.rows > updated.manifest.chunk_count == rebuilt.manifest.chunk_count
        assert _postings_by_chunk(updated) == _postings_by_chunk(rebuilt)
        assert sorted(updated.chunks, key=lambda c: (c.source, c.char_start)) == sorted(rebuilt.chunks, key=lambda c: (c.source, c.char_start))
        # In another order (a changed file's aliases come last): a bridge takes the best of them, whatever the order.
        assert set(updated.aliases.get("nist")) == set(rebuilt.aliases.get("nist")) and "국립표준기술연구소" in updated.aliases.get("nist")
        order = lambda stored: np.argsort([f"{c.source}\0{c.char_start:09d}" for c in stored.chunks])  # noqa: E731
        assert np.allclose(updated.vectors[order(updated)], rebuilt.vectors[order(rebuilt)], atol=1e-5)
        # The query lexicon too, though the build read the changed and added files alone.
        assert _lexicon_table(updated) == _lexicon_table(rebuilt)
        assert {s: updated.file_lexicon(s) for s in updated.manifest.files} == {s: rebuilt.file_lexicon(s) for s in rebuilt.manifest.files}
        assert updated.lexicon.get("korea") == rebuilt.lexicon.get("korea") and "Südkorea" in updated.lexicon.get("korea")
        # And the answers.
        questions = [case.question for case in load_golden(Path(__file__).parent / "golden" / "seeds.jsonl")]
        answers = [[(p.source, p.line_start, p.line_end) for p in Bot.load(s).search(q, 5)] for s in (settings, rebuilt_settings) for q in questions]
        assert answers[: len(questions)] == answers[len(questions) :]

    def test_run_a_removed_files_lexicon_leaves_with_it(self, settings):
        """Words only the removed file used leave the lexicon; words other files still use stay, counted once less."""
        Bot.index(settings)
        chinese = settings.corpus_dir / "001_fde5e7576b522852.txt"
        stored = index_store.read(settings.index_dir)
        before = _lexicon_table(stored)
        only_there = {pair for pair in _pairs(stored.file_lexicon(chinese.name)) if before[pair][1] == 1}
        assert only_there, "the Chinese seed adds words of its own to the lexicon"
        chinese.unlink()
        Bot.index(settings)
        after_index = index_store.read(settings.index_dir)
        after = _lexicon_table(after_index)
        assert not only_there & set(after) and after_index.file_lexicon(chinese.name) == {}
        remaining = [path.read_text(encoding="utf-8") for path in settings.corpus_dir.iterdir()]
        assert all(any(word in text or word.casefold() in text.casefold() for text in remaining) for _, word in after)
        assert after == {pair: (rank, sum(pair in _pairs(after_index.file_lexicon(s)) for s in after_index.manifest.files)) for pair, (rank, _) in after.items()}

    def test_run_many_updates_merge_segments_and_equal_a_fresh_build(self, settings, tmp_path):
        """Small builds fold the newest segments together; whatever was merged, the index is the one a rebuild makes."""
        Bot.index(settings)
        german = settings.corpus_dir / "000_81784bd76aef5d8c.txt"
        text = german.read_text(encoding="utf-8")
        seen = []
        for number in range(6):
            (settings.corpus_dir / f"note{number % 3}.txt").write_text(f"Meeting {number}: the partners met in Berlin on day {number}.\n", encoding="utf-8")
            german.write_text(text + f"\nSatz Nummer {number} über Quantencomputer.\n", encoding="utf-8")
            Bot.index(settings)
            seen.append(index_store.read(settings.index_dir).manifest.segments)
        assert any(len(segments) > 1 for segments in seen) and any(b[-1] == a[-1] for a, b in zip(seen, seen[1:])), seen  # folded into the newest
        updated = index_store.read(settings.index_dir)
        assert len(updated.manifest.segments) <= 3
        rebuilt_settings = settings.model_copy(update={"index_dir": tmp_path / "rebuilt"})
        Bot.index(rebuilt_settings)
        rebuilt = index_store.read(rebuilt_settings.index_dir)
        assert _postings_by_chunk(updated) == _postings_by_chunk(rebuilt)
        key = lambda stored: sorted(zip((c.model_dump_json() for c in stored.chunks), stored.vectors.tolist()))  # noqa: E731
        assert [c for c, _ in key(updated)] == [c for c, _ in key(rebuilt)]
        assert np.allclose([v for _, v in key(updated)], [v for _, v in key(rebuilt)], atol=1e-5)
        assert _lexicon_table(updated) == _lexicon_table(rebuilt)
        assert {s: updated.file_lexicon(s) for s in updated.manifest.files} == {s: rebuilt.file_lexicon(s) for s in rebuilt.manifest.files}
        for chunk_id, chunk, _ in updated.each_chunk():
            (twin,) = [i for i, c, _ in rebuilt.each_chunk() if c == chunk]
            assert np.allclose(updated.sentence_vectors([chunk_id])[0], rebuilt.sentence_vectors([twin])[0], atol=2e-3)

    def test_run_removed_chunks_are_never_found(self, settings):
        Bot.index(settings)
        (settings.corpus_dir / "002_7257b5aa37c3b2f3.txt").unlink()
        Bot.index(settings)
        bot = Bot.load(settings)
        assert not bot._stored.live.all()
        for retriever in ("dense", "lexical", "hybrid"):
            bot = Bot.load(settings.model_copy(update={"retriever": retriever}))
            assert all(p.source != "002_7257b5aa37c3b2f3.txt" for p in bot.search("What did NIST sign with Korea?", 20))

    def test_holes_are_compacted_when_they_outnumber_the_live_chunks(self, tmp_path):
        vectors = _clustered_vectors(1500, 16)
        first = _write_synthetic(tmp_path, vectors, "flat")
        fields = {key: getattr(first.manifest, key) for key in ("model", "dimension", "chunk_tokens", "chunk_overlap_tokens", "lexical_analyzer", "chunker", "glosser")}
        chunks = [Chunk(source="small.txt", char_start=0, char_end=1, line_start=1, line_end=1, text="y")]
        document = Document(source="small.txt", text="y", sha256="1" * 64)
        fresh = {"small.txt": index_store.FreshFile(chunks, vectors[:1], [vectors[:1]], [[]], {}, {})}
        index_store.write(tmp_path, first, {document.source: document.sha256}, ["synthetic.txt"], fresh, {}, fields)
        compacted = index_store.read(tmp_path)
        assert compacted.manifest.rows == compacted.manifest.chunk_count == 1 and compacted.chunks == chunks
        assert compacted.manifest.segments == [0] and np.allclose(compacted.sentence_vectors([0])[0], vectors[:1], atol=1e-3)

    def test_a_damaged_segment_is_never_merged_into_a_fresh_one(self, settings, monkeypatch):
        """Past the size an ask hashes, a build checks a segment's contents before it merges it, never launders the damage."""
        Bot.index(settings)
        (settings.corpus_dir / "note.txt").write_text("The partners met in Berlin.\n", encoding="utf-8")
        Bot.index(settings)
        stored = index_store.read(settings.index_dir)
        newest = stored.generation / index_store.segment_folder(stored.manifest.segments[-1]) / index_store.VECTORS
        data = bytearray(newest.read_bytes())
        data[5] ^= 0xFF
        newest.write_bytes(bytes(data))
        monkeypatch.setattr(index_store, "HASHED_ON_OPEN", 0)  # as if every file were too big to hash on opening
        (settings.corpus_dir / "note.txt").write_text("The partners met in Berlin again.\n", encoding="utf-8")
        with pytest.raises(BadIndexError, match=r"vectors.f32 does not match its checksum .*; rebuild it with: qa index --rebuild"):
            Bot.index(settings)
        assert Bot.index(settings, rebuild=True).chunks == stored.manifest.chunk_count

    def test_a_truncated_sentence_segment_is_damage(self, tmp_path):
        stored = _write_synthetic(tmp_path, _clustered_vectors(20, 16), "flat")
        segment = stored.generation / index_store.segment_folder(0) / index_store.SENTENCES
        segment.write_bytes(segment.read_bytes()[:-2])
        with pytest.raises(BadIndexError, match="damaged"):
            index_store.read(tmp_path)

    def test_a_waiting_build_names_the_one_it_waits_for(self, tmp_path):
        heard = []
        with index_store.build_lock(tmp_path):
            waiting = threading.Thread(target=lambda: index_store.build_lock(tmp_path, heard.append).__enter__())
            waiting.start()
            waiting.join(0.5)
            assert heard == [str(os.getpid())] and waiting.is_alive()
        waiting.join(5)
        assert not waiting.is_alive()


class TestMergePolicy:
    @given(st.lists(st.integers(0, 10_000), max_size=12), st.integers(0, 10_000))
    def test_folds_exactly_the_newest_segments_within_the_ratio(self, sizes, adding):
        count = index_store.segments_to_merge(sizes, adding)
        assert 0 <= count <= len(sizes)
        total = adding
        for size in reversed(sizes[len(sizes) - count :]):
            assert size <= index_store.MERGE_RATIO * total
            total += size
        if count < len(sizes):
            assert sizes[len(sizes) - count - 1] > index_store.MERGE_RATIO * total

    @hsettings(max_examples=30)
    @given(st.lists(st.integers(1, 50), min_size=1, max_size=400), st.integers(0, 100_000))
    def test_segments_stay_few_and_chunks_are_rewritten_a_few_times(self, builds, base):
        """Simulated builds of a few chunks each on a collection of ``base``: segments stay logarithmic in number."""
        import math

        sizes = [base] if base else []
        rewritten = 0
        for adding in builds:
            count = index_store.segments_to_merge(sizes, adding)
            rewritten += sum(sizes[len(sizes) - count :])
            sizes = [*sizes[: len(sizes) - count], sum(sizes[len(sizes) - count :]) + adding]
            total = sum(sizes)
            assert len(sizes) <= 2 + math.log(total, index_store.MERGE_RATIO) * 2
        assert rewritten <= base + sum(builds) * (2 + 2 * math.log(base + sum(builds), index_store.MERGE_RATIO))


class TestRows:
    @given(st.lists(st.integers(1, 20), max_size=5), st.booleans(), st.data())
    def test_segments_read_as_one_matrix(self, sizes, empty_last, data):
        """Any split into segments (the newest may be empty) reads as the one matrix: gathered rows in the order asked, and products."""
        sizes = [*sizes, 0] if empty_last else sizes
        whole = np.random.default_rng(len(sizes)).standard_normal((sum(sizes), 4)).astype(np.float32)
        firsts = [int(f) for f in np.cumsum([0, *sizes[:-1]])] if sizes else []
        rows = index_store.Rows([whole[f : f + n] for f, n in zip(firsts, sizes)], firsts, 4)
        assert rows.shape == whole.shape and np.array_equal(rows[np.arange(len(whole))], whole)
        ids = data.draw(st.lists(st.integers(0, len(whole) - 1), max_size=30)) if len(whole) else []
        assert np.array_equal(rows[np.asarray(ids, np.int64)], whole[ids].reshape(len(ids), 4))
        vector = np.ones(4, np.float32)
        assert np.allclose(rows @ vector, whole @ vector, atol=1e-5)  # another BLAS kernel per part: another order of sums
        if len(whole):
            with pytest.raises(IndexError):
                rows[[len(whole)]]


class TestFollow:
    def test_run_a_loaded_bot_answers_from_the_generation_a_later_build_writes(self, settings, caplog):
        """A server's bot picks up what qa index wrote at its next question; a generation it cannot open leaves it answering as it was."""
        Bot.index(settings)
        bot = Bot.load(settings, build_if_missing=False)
        question = "Where will the pier festival take place?"
        assert all(p.source != "festival.txt" for p in bot.search(question, 5))
        (settings.corpus_dir / "festival.txt").write_text("The pier festival takes place in Lisbon on 12 May.\n", encoding="utf-8")
        Bot.index(settings)
        assert bot.search(question, 5)[0].source == "festival.txt"
        assert bot.ask(question).citations[0].source == "festival.txt"
        opened = bot._stored.generation
        current = settings.index_dir / "CURRENT"
        current.write_text("gen-that-is-not-there\n", encoding="utf-8")
        with caplog.at_level("WARNING"):
            assert bot.ask(question).citations[0].source == "festival.txt"
        assert bot._stored.generation == opened and "still answering from" in caplog.text
        current.write_text(opened.name + "\n", encoding="utf-8")
        assert bot.search(question, 5)[0].source == "festival.txt" and bot._stored.generation == opened


def test_a_generation_deleted_while_it_is_opened_is_no_damage(settings, monkeypatch):
    """Opening reads CURRENT, then the generation; two builds in between delete it: the new live one is opened."""
    Bot.index(settings)
    (settings.corpus_dir / "note.txt").write_text("The partners met in Berlin.\n", encoding="utf-8")
    Bot.index(settings)
    live = index_store._live_generation(settings.index_dir)
    gone = settings.index_dir / "gen-20000101T000000-gone00"
    calls = []
    real = index_store._live_generation
    monkeypatch.setattr(index_store, "_live_generation", lambda index_dir: calls.append(1) or (gone if len(calls) == 1 else real(index_dir)))
    assert index_store.read(settings.index_dir).generation == live and len(calls) == 3
    monkeypatch.setattr(index_store, "_live_generation", lambda index_dir: gone)  # CURRENT names it still: damage
    with pytest.raises(BadIndexError, match="damaged"):
        index_store.read(settings.index_dir)
