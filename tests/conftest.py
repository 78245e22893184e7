"""Shared fixtures: the real seed corpus, indexed once per session with the real model."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest

from qa import Bot, Settings
from qa import embed, onnx_encoder

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "corpus"
HEADLINE = "What did NIST sign with Korea?"
KOREAN = "002_7257b5aa37c3b2f3.txt"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path_factory):
    """No test reads the developer's qa.toml or QA_* variables."""
    import os

    for name in list(os.environ):
        if name.startswith("QA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session", autouse=True)
def _load_model_once():
    """Every test that embeds shares one loaded model: loading costs seconds."""
    original = embed.load_sentence_transformer
    embed.load_sentence_transformer = functools.lru_cache(maxsize=4)(original)
    yield
    embed.load_sentence_transformer = original


@pytest.fixture(scope="session", autouse=True)
def _export_once(tmp_path_factory):
    """Every index of the same model gets a copy of one real ONNX export: exporting costs seconds."""
    original = onnx_encoder.export
    exports = tmp_path_factory.mktemp("onnx-exports")

    def export(st, model, target):
        done = onnx_encoder.cache_dir(exports, model)
        if not onnx_encoder.is_exported(done, model):
            original(st, model, done)
        shutil.copytree(done, target, dirs_exist_ok=True)

    onnx_encoder.export = export
    yield
    onnx_encoder.export = original


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory) -> Settings:
    index_dir = tmp_path_factory.mktemp("seed-index")
    settings = Settings(corpus_dir=SEEDS, index_dir=index_dir)
    Bot.index(settings)
    return settings


@pytest.fixture(scope="session")
def seed_bot(seed_settings) -> Bot:
    return Bot.load(seed_settings)


@pytest.fixture
def corpus_copy(tmp_path) -> Path:
    """A writable copy of the seed corpus, for tests that change files."""
    target = tmp_path / "corpus"
    shutil.copytree(SEEDS, target)
    return target
