"""Incremental, atomic indexing on a copy of the seed corpus."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qa import Bot, Settings
from qa import index as index_store
from qa.errors import BadIndexError
from qa.evaluate import load_golden


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
        assert report.changed == 1 and report.embedded == len(german_chunks)
        for source in ("001_fde5e7576b522852.txt", "002_7257b5aa37c3b2f3.txt"):
            old = [c for c in before.chunks if c.source == source]
            new = [c for c in after.chunks if c.source == source]
            assert old == new
        # Kept vectors are the very vectors embedded before.
        kept = [i for i, c in enumerate(after.chunks) if c.source != german.name]
        was = [i for i, c in enumerate(before.chunks) if c.source != german.name]
        assert (after.vectors[kept] == before.vectors[was]).all()

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

    def test_run_only_the_live_generation_remains(self, settings):
        Bot.index(settings)
        (settings.corpus_dir / "new.txt").write_text("Ein ganz neuer Artikel über Raumfahrt.\n", encoding="utf-8")
        Bot.index(settings)
        generations = [p.name for p in settings.index_dir.iterdir() if p.name.startswith("gen-")]
        assert generations == [(settings.index_dir / "CURRENT").read_text().strip()]


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

    def test_run_missing_part_is_corruption(self, settings):
        Bot.index(settings)
        generation = settings.index_dir / (settings.index_dir / "CURRENT").read_text().strip()
        (generation / "chunks.json").write_text(json.dumps([]))
        with pytest.raises(BadIndexError, match="corrupted"):
            index_store.read(settings.index_dir)


class TestApproximate:
    def test_run_forced_hnsw_answers_like_flat(self, settings, bot):
        hnsw_settings = settings.model_copy(update={"ann": "hnsw"})
        Bot.index(hnsw_settings)
        stored = index_store.read(hnsw_settings.index_dir)
        assert type(stored.faiss_index).__name__ == "IndexHNSWFlat"
        assert stored.faiss_index.hnsw.efSearch == index_store.HNSW_EF_SEARCH
        assert (stored.vectors == bot._stored.vectors).all()
        bot = Bot.load(hnsw_settings)
        for case in load_golden(Path(__file__).parent / "golden" / "seeds.jsonl"):
            question = " ".join([*case.history, case.question])
            assert [(p.source, p.line_start) for p in bot.search(question, 5)] == [
                (p.source, p.line_start) for p in bot.search(question, 5)
            ], case.id

    def test_run_hnsw_recall_and_vectors_recoverable(self):
        rng = np.random.default_rng(0)
        centres = rng.standard_normal((50, 64), dtype=np.float32)
        vectors = centres[rng.integers(0, 50, 5000)] + 0.5 * rng.standard_normal((5000, 64), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        flat = index_store.dense_index(vectors, 64, "auto")
        hnsw = index_store.dense_index(vectors, 64, "hnsw")
        assert type(flat).__name__ == "IndexFlatIP"
        assert (hnsw.reconstruct_n(0, hnsw.ntotal) == vectors).all()
        _, truth = flat.search(vectors[:200], 10)
        _, found = hnsw.search(vectors[:200], 10)
        assert np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]) >= 0.95
