"""``qa index`` killed with SIGKILL at each phase: the index that survives answers, and the next build recovers.

The build runs in a child process whose own functions are wrapped to stop at a
named phase (embedding, the new segment written, the staging folder complete,
the generation published, ``CURRENT`` switched) and say so; the test then
kills it there. Killing at fixed shares of a measured run time missed phases
whenever a run came out faster than the one measured, so every phase here is
interrupted on every machine. (A killed ONNX export of a sentence-transformers
model is tests/test_harden.py's.) After each kill the surviving index must
verify and answer (it is the old generation or the new one, never a mix), and
the next ``qa index`` must leave the same index a clean build makes, with no
staging folder left over.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from qa.bot import Bot
from qa.settings import Settings
from qa.stages import index as index_store

DOCS = {
    "moon.txt": "The Artemis program returns astronauts to the Moon.\nNASA leads it with partners in Europe and Japan.\n",
    "tea.md": "# Tea\n\nGreen tea is grown in Shizuoka. The harvest starts in April.\n",
}
ADDED = {"rail.txt": "The Shinkansen opened in 1964 between Tokyo and Osaka.\nIt runs at up to 320 km/h.\n"}
PHASES = ("embedding", "segment written", "staged", "published", "switched")

# Runs ``qa index`` with the build's steps wrapped: at the phase named in
# argv[1] it prints PAUSED and waits to be killed.
DRIVER = """
import os, sys, time
import qa.bot
from qa.faces import cli
from qa.stages import index

phase = sys.argv.pop(1)

def pause(label):
    if label == phase:
        print("PAUSED", flush=True)
        time.sleep(600)

def after(module, name, label):
    original = getattr(module, name)
    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        pause(label)
        return result
    setattr(module, name, wrapped)

def before(module, name, label):
    original = getattr(module, name)
    def wrapped(*args, **kwargs):
        pause(label)
        return original(*args, **kwargs)
    setattr(module, name, wrapped)

before(qa.bot, "_embed", "embedding")
after(index, "_write_segment", "segment written")
after(index, "_build", "staged")
replace = os.replace
def replaced(source, target):
    replace(source, target)
    pause("switched" if os.path.basename(target) == "CURRENT" else "published")
os.replace = replaced
cli.run()
"""


def _command(phase: str, corpus: Path, index_dir: Path) -> list[str]:
    return [sys.executable, "-c", DRIVER, phase, "index", str(corpus), "--index-dir", str(index_dir)]


def _kill_at(phase: str, corpus: Path, index_dir: Path, log: Path) -> None:
    """Run the build until it reaches ``phase``, then SIGKILL it; fails if it never gets there."""
    with log.open("w") as errors:
        process = subprocess.Popen(_command(phase, corpus, index_dir), stdout=subprocess.PIPE, stderr=errors, text=True)
        try:
            paused = any(line.strip() == "PAUSED" for line in process.stdout)  # stops at the pause, or at EOF if the build ended first
            assert paused, f"the build never reached {phase!r}: {log.read_text()[-2000:]}"
            process.send_signal(signal.SIGKILL)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=60)
            process.stdout.close()


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

    for phase in PHASES:
        index_dir = tmp_path / f"killed-{phase.replace(' ', '-')}"
        shutil.copytree(base.index_dir, index_dir)
        _kill_at(phase, corpus, index_dir, tmp_path / f"{phase}.log")

        # The survivor is whole, old or new, and answers.
        settings = base.model_copy(update={"index_dir": index_dir})
        survivor = index_store.verify(index_dir)
        expected_files = {*DOCS, *ADDED} if phase == "switched" else {*DOCS}
        assert set(survivor.files) == expected_files, phase
        answer = Bot.load(settings, build_if_missing=False).ask("Who leads the Artemis program?")
        assert answer.citations and answer.citations[0].source == "moon.txt", phase

        # The next build recovers to what a clean build makes, and leaves nothing behind.
        Bot.index(settings)
        chunks, vectors = _data(index_dir)
        assert chunks == expected_chunks, phase
        assert np.allclose(vectors, expected_vectors, atol=1e-5), phase
        assert not [p.name for p in index_dir.iterdir() if p.name.startswith(".building-")], phase
