"""``qa index`` killed with SIGKILL at several phases: the index that survives answers, and the next build recovers.

A build is killed at fixed shares of its own run time (loading, chunking and
embedding, writing) and right after it switches generations (a killed ONNX
export of a sentence-transformers model is tests/test_harden.py's). After each kill the surviving index must verify and answer (it is the
old generation or the new one, never a mix), and the next ``qa index`` must
leave the same index a clean build makes, with no staging folder left over.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qa.bot import Bot
from qa.settings import Settings
from qa.stages import index as index_store

DOCS = {
    "moon.txt": "The Artemis program returns astronauts to the Moon.\nNASA leads it with partners in Europe and Japan.\n",
    "tea.md": "# Tea\n\nGreen tea is grown in Shizuoka. The harvest starts in April.\n",
}
ADDED = {"rail.txt": "The Shinkansen opened in 1964 between Tokyo and Osaka.\nIt runs at up to 320 km/h.\n"}
SHARES = (0.3, 0.6, 0.85, 0.95)


def _command(corpus: Path, index_dir: Path) -> list[str]:
    return [sys.executable, "-m", "qa.faces.cli", "index", str(corpus), "--index-dir", str(index_dir)]


def _kill_when(process: subprocess.Popen, ready, limit: float) -> bool:
    """SIGKILL the build once ``ready()`` holds; False if it ended first."""
    deadline = time.monotonic() + limit
    while process.poll() is None and time.monotonic() < deadline:
        if ready():
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.01)
    process.wait(timeout=600)
    return False


def _data(index_dir: Path) -> tuple[list, np.ndarray]:
    """What must match a clean build: every chunk with its glosses and its vector, in document order.

    Chunk ids may differ (an incremental build appends new chunks under new
    ids, a clean one numbers them from zero), so the store's bytes are no
    measure; what a question can read from it is.
    """
    index_store.verify(index_dir)  # and every file matches its checksum
    stored = index_store.read(index_dir)
    rows = sorted(stored.each_chunk(), key=lambda row: (row[1].source, row[1].char_start))
    return [(chunk, glosses) for _, chunk, glosses in rows], np.asarray(stored.rows[[i for i, _, _ in rows]])


def test_kill_9_at_every_phase_leaves_an_index_that_answers_and_recovers(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    base = Settings.load(corpus_dir=corpus, index_dir=tmp_path / "base")
    Bot.index(base)  # the generation every killed build starts from
    for name, text in ADDED.items():
        (corpus / name).write_text(text, encoding="utf-8")
    clean = base.model_copy(update={"index_dir": tmp_path / "clean"})
    Bot.index(clean)
    expected_chunks, expected_vectors = _data(clean.index_dir)

    started = time.monotonic()
    timed = tmp_path / "timed"
    shutil.copytree(base.index_dir, timed)
    subprocess.run(_command(corpus, timed), check=True, capture_output=True, timeout=600)
    run_time = time.monotonic() - started

    kills: dict[str, bool] = {}
    for label, ready in [
        *[(f"at {share:.0%} of the run", (lambda s: lambda start, d: time.monotonic() - start > s * run_time)(share)) for share in SHARES],
        ("after the switch", lambda start, d: (d / "CURRENT").read_text() != (base.index_dir / "CURRENT").read_text()),
    ]:
        index_dir = tmp_path / f"killed-{len(kills)}"
        shutil.copytree(base.index_dir, index_dir)
        start = time.monotonic()
        process = subprocess.Popen(_command(corpus, index_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kills[label] = _kill_when(process, lambda: ready(start, index_dir), 600)

        # The survivor is whole, old or new, and answers.
        settings = base.model_copy(update={"index_dir": index_dir})
        survivor = index_store.verify(index_dir)
        assert set(survivor.files) in ({*DOCS}, {*DOCS, *ADDED}), label
        answer = Bot.load(settings, build_if_missing=False).ask("Who leads the Artemis program?")
        assert answer.citations and answer.citations[0].source == "moon.txt", label

        # The next build recovers to what a clean build makes, and leaves nothing behind.
        Bot.index(settings)
        chunks, vectors = _data(index_dir)
        assert chunks == expected_chunks, label
        assert np.allclose(vectors, expected_vectors, atol=1e-5), label
        assert not [p.name for p in index_dir.iterdir() if p.name.startswith(".building-")], label
    print("\nkill -9 phases interrupted:", json.dumps(kills))
    assert sum(kills.values()) >= 3, kills  # most phases were really interrupted, not finished first
