"""The optional cross-encoder: loaded by path, squashed to (0, 1), and the order it gives is the order shown."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from qa.stages import index as index_store
from qa.bot import Bot
from qa.faces.cli import app
from qa.errors import ModelError
from qa.stages.rerank import RERANK_POOL, Reranker
from qa.stages.retrieve import Retriever

from conftest import CORPUS, HEADLINE, tiny_tokenizer


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory) -> Path:
    """A random two-layer BERT with one output label, saved as a CrossEncoder folder."""
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    tokenizer = tiny_tokenizer(["nist", "korea", "sign", "?"])
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, max_position_embeddings=64, num_labels=1
    )
    BertForSequenceClassification(config).save_pretrained(folder / "hf")
    tokenizer.save_pretrained(folder / "hf")
    CrossEncoder(str(folder / "hf"), device="cpu").save(str(folder / "ce"))
    return folder / "ce"


class TestReranker:
    def test_run_scores_each_text_between_zero_and_one(self, tiny_cross_encoder):
        scores = Reranker.load(str(tiny_cross_encoder)).scores("nist sign korea?", ["nist korea", "sign", "unknown words"])
        assert scores.shape == (3,) and np.all((scores > 0) & (scores < 1))
        assert len(set(scores.round(6))) > 1  # the texts are read, not ignored

    def test_run_no_texts(self, tiny_cross_encoder):
        assert Reranker.load(str(tiny_cross_encoder)).scores("nist?", []).shape == (0,)

    def test_run_unloadable_model_is_one_clear_error(self, tmp_path):
        with pytest.raises(ModelError, match="--reranker"):
            Reranker.load("no-such-org/no-such-cross-encoder")
        with pytest.raises(ModelError, match="cannot load model from"):
            Reranker.load(str(tmp_path))


class TestRetrieverWithReranker:
    def test_run_reranked_order_and_scores_are_the_rerankers(self, bot: Bot, index_dir):
        stored = index_store.read(index_dir)
        seen: list[list[str]] = []

        def reverse_the_pool(question: str, texts: list[str]) -> np.ndarray:
            seen.append(texts)
            return np.arange(1, len(texts) + 1, dtype=np.float32) / 100

        plain = Retriever(stored, bot._encode_query, "hybrid").search(bot.analyse(HEADLINE), RERANK_POOL)
        reranked = Retriever(stored, bot._encode_query, "hybrid", rerank=reverse_the_pool).search(bot.analyse(HEADLINE), 3)
        assert len(seen) == 1 and len(seen[0]) == RERANK_POOL
        assert [p.score for p in reranked] == pytest.approx([0.20, 0.19, 0.18])
        assert [(p.source, p.char_start) for p in reranked] == [(p.source, p.char_start) for p in plain[::-1][:3]]

    @pytest.mark.parametrize("read_glosses", [False, True])
    def test_run_the_reranker_reads_what_the_model_read(self, bot: Bot, index_dir, read_glosses):
        """The text by default; a glossed chunk's English rendering where the model embedded the glosses."""
        stored = index_store.read(index_dir)
        texts: list[str] = []
        rerank = lambda q, t: texts.extend(t) or np.zeros(len(t))  # noqa: E731
        Retriever(stored, bot._encode_query, "hybrid", rerank=rerank, read_glosses=read_glosses).search(bot.analyse(HEADLINE), 5)
        assert any("letter of intent" in text for text in texts) == read_glosses
        assert any("협력의향서" in text for text in texts) != read_glosses


def test_cli_ask_with_a_reranker(tmp_path, tiny_cross_encoder, index_dir):
    result = CliRunner().invoke(
        app, ["ask", HEADLINE, "--json", "--reranker", str(tiny_cross_encoder), "--index-dir", str(index_dir), "--corpus", str(CORPUS)]
    )
    assert result.exit_code == 0, result.output
    passages = json.loads(result.stdout)["passages"]
    assert passages and all(0 < p["score"] < 1 for p in passages)
