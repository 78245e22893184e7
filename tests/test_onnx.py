"""The ONNX query encoder: same vectors and rankings as sentence-transformers, and no torch when asking."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from qa import Bot, Settings
from qa.stages import index as index_store
from qa.stages import onnx_encoder
from qa.faces.cli import app
from qa.stages.chunk import split_sentences
from qa.stages.embed import Embedder
from qa.evaluate import load_golden
from conftest import CORPUS as SEEDS, HEADLINE, REPO as ROOT, tiny_tokenizer

# Asking must import none of these: the model's and the dictionaries' machinery is for indexing.
HEAVY = ("torch", "transformers", "sentence_transformers", "jieba", "kiwipiepy", "wordfreq", "hanja")
XQUAD = ROOT.parent / "shared" / "bench" / "xquad"


def sentences(limit: int = 400) -> list[str]:
    """Multilingual texts: the seed corpus's lines and sentences, plus XQuAD articles where present."""
    files = sorted(SEEDS.glob("*.txt")) + sorted(XQUAD.glob("*/corpus/*.txt"))[:6]
    found: dict[str, None] = {}
    for path in files:
        text = path.read_text(encoding="utf-8")
        for span in split_sentences(text):
            for piece in (text[span.start : span.end], *text[span.start : span.end].split("\n")):
                if len(piece.strip()) > 3:
                    found[piece.strip()] = None
    return list(found)[:limit]


def export_of(settings: Settings) -> Path:
    return onnx_encoder.cache_dir(settings.index_dir, settings.model)


# The ONNX path serves sentence-transformers models; the bundled default needs none.
ST_MODEL = "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def st_settings(tmp_path_factory) -> Settings:
    """The seeds indexed with a sentence-transformers model (the bundled English one), exported to ONNX."""
    settings = Settings(corpus_dir=SEEDS, index_dir=tmp_path_factory.mktemp("st-index"), model=ST_MODEL)
    Bot.index(settings)
    return settings


class TestEquivalence:
    def test_run_vectors_match_sentence_transformers(self, st_settings):
        texts = sentences()
        assert len(texts) >= 200
        ours = onnx_encoder.OnnxEncoder(export_of(st_settings))
        theirs = Embedder.load(st_settings.model)
        for mine, reference in (
            (ours.encode_queries(texts), theirs.encode_queries(texts)),
            (ours.encode_documents(texts), theirs.encode_documents(texts)),
        ):
            assert mine.shape == reference.shape
            assert np.min(np.sum(mine * reference, axis=1)) >= 0.999

    def test_run_same_top5_on_golden_questions(self, st_settings):
        stored = index_store.read(st_settings.index_dir)
        onnx_bot = Bot(st_settings, stored)
        st_bot = Bot(st_settings, stored, embedder=Embedder.load(st_settings.model))
        cases = load_golden(ROOT / "tests" / "golden" / "seeds.jsonl")
        for case in cases:
            question = " ".join([*case.history, case.question])
            ours = [(p.source, p.line_start) for p in onnx_bot.search(question, 5)]
            theirs = [(p.source, p.line_start) for p in st_bot.search(question, 5)]
            assert ours == theirs, case.id
        assert isinstance(onnx_bot._encoder, onnx_encoder.OnnxEncoder)


class TestQueryPath:
    def run_python(self, script: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=120, cwd=ROOT)

    @pytest.mark.parametrize("model", ["default", "sentence-transformers"])
    def test_run_bot_ask_imports_no_torch(self, seed_settings, st_settings, model):
        settings = seed_settings if model == "default" else st_settings
        done = self.run_python(
            f"""
            import sys
            from qa import Bot, Settings
            answer = Bot.load(Settings(index_dir={str(settings.index_dir)!r}, model={settings.model!r})).ask({HEADLINE!r})
            assert answer.citations, answer
            print([name for name in {HEAVY!r} if name in sys.modules])
            """
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[]"

    def test_run_cli_ask_imports_no_torch(self, seed_settings):
        done = self.run_python(
            f"""
            import json, sys
            from qa.faces.cli import app
            try:
                app(["ask", {HEADLINE!r}, "--json", "--index-dir", {str(seed_settings.index_dir)!r}])
            except SystemExit as exit:
                assert not exit.code, exit.code
            print(json.dumps([name for name in {HEAVY!r} if name in sys.modules]))
            """
        )
        assert done.returncode == 0, done.stderr
        answer, _, imported = done.stdout.rpartition("\n[")
        assert json.loads(answer)["citations"]
        assert imported.strip() == "]"

    def test_run_export_is_shared_by_generations(self, tmp_path, corpus_copy):
        settings = Settings(corpus_dir=corpus_copy, index_dir=tmp_path / "index", model=ST_MODEL)
        Bot.index(settings)
        meta = export_of(settings) / onnx_encoder.META
        written = meta.stat().st_mtime_ns
        (corpus_copy / "new.txt").write_text("Ein ganz neuer Artikel über Raumfahrt.\n", encoding="utf-8")
        Bot.index(settings)
        Bot.index(settings)
        assert meta.stat().st_mtime_ns == written
        assert [p.name for p in (settings.index_dir / "models").iterdir()] == [export_of(settings).name]

    def test_run_failed_export_falls_back_to_sentence_transformers(self, tmp_path, corpus_copy, monkeypatch, caplog):
        def broken(*args, **kwargs):
            raise onnx_encoder.ExportError("unsupported")

        monkeypatch.setattr(onnx_encoder, "export", broken)
        settings = Settings(corpus_dir=corpus_copy, index_dir=tmp_path / "index", model=ST_MODEL)
        assert Bot.index(settings).chunks > 0
        assert "ONNX export" in caplog.text
        assert not export_of(settings).exists()
        bot = Bot.load(settings)
        assert bot.ask(HEADLINE).citations
        assert isinstance(bot._encoder, Embedder)

    def test_run_damaged_export_falls_back(self, tmp_path, corpus_copy, caplog):
        settings = Settings(corpus_dir=corpus_copy, index_dir=tmp_path / "index", model=ST_MODEL)
        Bot.index(settings)
        (export_of(settings) / onnx_encoder.MODEL).write_bytes(b"not a model")
        bot = Bot.load(settings)
        assert bot.ask(HEADLINE).citations
        assert isinstance(bot._encoder, Embedder)
        assert "cannot load the ONNX encoder" in caplog.text

    def test_run_unchanged_index_exports_when_missing(self, tmp_path, corpus_copy):
        settings = Settings(corpus_dir=corpus_copy, index_dir=tmp_path / "index", model=ST_MODEL)
        Bot.index(settings)
        import shutil

        shutil.rmtree(settings.index_dir / "models")
        assert Bot.index(settings).embedded == 0
        assert onnx_encoder.is_exported(export_of(settings), settings.model)


TINY_CORPUS = {
    "rivers.txt": "The Rhine flows through Basel and Cologne.\nThe Danube flows through Vienna and Budapest.\n",
    "food.txt": "Bread is baked in an oven.\nCheese is made from milk.\n",
}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A random two-layer BERT with a word-level vocabulary, e5-style prompts, prompt-free mean pooling and a Dense layer."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-model")
    words = sorted({w for text in TINY_CORPUS.values() for w in re.findall(r"\w+|[^\w\s]", text.lower())} | {"query", "passage", ":", "which", "river", "?"})
    tokenizer = tiny_tokenizer(words)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder / "hf")
    tokenizer.save_pretrained(folder / "hf")
    modules = [
        Transformer(str(folder / "hf"), max_seq_length=64),
        Pooling(32, pooling_mode="mean", include_prompt=False),
        Dense(32, 24, activation_function=torch.nn.Tanh()),
        Normalize(),
    ]
    model = SentenceTransformer(modules=modules, prompts={"query": "query: ", "document": "passage: "}, device="cpu")
    model.save(str(folder / "st"))
    assert json.loads((folder / "st" / "config_sentence_transformers.json").read_text())["prompts"]["query"] == "query: "
    return folder / "st"


def test_run_tiny_model_with_prompts_and_other_dimension(tmp_path, tiny_model):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in TINY_CORPUS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    index_dir = tmp_path / "index"
    runner = CliRunner()
    result = runner.invoke(app, ["index", str(corpus), "--model", str(tiny_model), "--index-dir", str(index_dir)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["ask", "Which river flows through Vienna?", "--json", "--model", str(tiny_model), "--index-dir", str(index_dir), "--retriever", "dense"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["passages"]) > 0

    settings = Settings(corpus_dir=corpus, index_dir=index_dir, model=str(tiny_model))
    assert index_store.read(index_dir).manifest.dimension == 24
    ours = onnx_encoder.OnnxEncoder(export_of(settings))
    assert ours.prompts == {"query": "query: ", "document": "passage: "}
    theirs = Embedder.load(str(tiny_model))
    texts = [line for text in TINY_CORPUS.values() for line in text.splitlines()] + ["Which river flows through Vienna?", "x"]
    for mine, reference in ((ours.encode_queries(texts), theirs.encode_queries(texts)), (ours.encode_documents(texts), theirs.encode_documents(texts))):
        assert mine.shape == (len(texts), 24)
        assert np.min(np.sum(mine * reference, axis=1)) >= 0.999
        # A random model maps every text close to one vector: compare closer than cosine can.
        assert np.abs(mine - reference).max() < 2e-5
    # ... closer than the query and document prompts move a vector, so a wrong prompt would show.
    assert np.abs(ours.encode_queries(texts) - ours.encode_documents(texts)).max() > 1e-4
