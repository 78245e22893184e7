"""``qa index --workers N``: the model runs on Ray workers, and the index is the one a build in one process makes.

Ray starts a local instance for the build (``ray.init`` on this machine), as
it does for a user without a cluster; without Ray installed the module is
skipped with the reason, and fails instead where QA_REQUIRE_RAY is set (CI sets it).
"""

from __future__ import annotations

import functools
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa.bot import Bot
from qa.errors import QAError
from qa.settings import Settings
from qa.stages import index as index_store
from qa.stages import parallel
from qa.stages.embed import load_encoder
from tests.conftest import CORPUS, HEADLINE, HEADLINE_SOURCE, MACHINE_VARIABLES

try:
    import ray  # noqa: F401
except ImportError:
    if os.environ.get("QA_REQUIRE_RAY"):
        raise RuntimeError("QA_REQUIRE_RAY is set but ray is missing: install.sh installs qa[dev], which brings it") from None
    pytest.skip("ray is not installed (pip install 'qa[ray]'; install.sh does it)", allow_module_level=True)


def _contents(index_dir: Path) -> dict[tuple, tuple]:
    """Every chunk with its glosses, its vector and its sentences' vectors, by where it cites."""
    stored = index_store.read(index_dir)
    ids = np.flatnonzero(stored.live)
    rows = list(stored.each_chunk())
    sentences = stored.sentence_vectors(ids)
    return {
        (chunk.source, chunk.char_start, chunk.char_end): (chunk.text, glosses, stored.vectors_at([chunk_id])[0], sentences[i])
        for i, (chunk_id, chunk, glosses) in enumerate(rows)
    }


def _catalog(index_dir: Path) -> dict[str, list[tuple]]:
    """The generation's lexicon, glosses read backwards and aliases: what the workers' glossing leads to."""
    generation = index_dir / (index_dir / index_store.CURRENT).read_text(encoding="utf-8").strip()
    catalog = sqlite3.connect(generation / index_store.CATALOG)
    try:
        return {table: sorted(catalog.execute(f"SELECT * FROM {table}")) for table in ("lexicon", "glossed", "aliases")}
    finally:
        catalog.close()


def _assert_same(left: Path, right: Path) -> None:
    a, b = _contents(left), _contents(right)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key][:2] == b[key][:2], key
        assert np.allclose(a[key][2], b[key][2], atol=1e-6) and np.allclose(a[key][3], b[key][3], atol=1e-6), key
    assert _catalog(left) == _catalog(right)


def test_a_build_on_two_ray_workers_is_the_build_in_one_process(tmp_path: Path, corpus_copy: Path, index_dir: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QA_") or k in MACHINE_VARIABLES}
    built = subprocess.run(
        [sys.executable, "-m", "qa.faces.cli", "index", str(corpus_copy), "--index-dir", str(tmp_path / "index"), "--workers", "2"],
        capture_output=True, text=True, env=clean, cwd=tmp_path, timeout=600,
    )
    assert built.returncode == 0, built.stderr
    assert built.stderr.strip().splitlines()[-1].startswith("Indexed 3 files"), built.stderr  # Ray's own logging stays out of the way
    assert any(glosses for _, glosses, *_ in _contents(tmp_path / "index").values())  # the Korean and Chinese seeds are glossed
    _assert_same(tmp_path / "index", index_dir)

    # An update embeds only its new text on the workers, and still equals a build in one process.
    (corpus_copy / "rail.txt").write_text("The Shinkansen opened in 1964 between Tokyo and Osaka.\nIt runs at up to 320 km/h.\n", encoding="utf-8")
    stages = set()
    report = Bot.index(Settings.load(corpus_dir=corpus_copy, index_dir=tmp_path / "index", workers=2), progress=lambda stage, *_: stages.add(stage))
    assert (report.added, report.embedded) == (1, 1)
    assert "chunking and glossing on the workers" in stages and "chunking" not in stages
    Bot.index(Settings.load(corpus_dir=corpus_copy, index_dir=tmp_path / "one-process"))
    _assert_same(tmp_path / "index", tmp_path / "one-process")
    answer = Bot.load(Settings.load(corpus_dir=corpus_copy, index_dir=tmp_path / "index"), build_if_missing=False).ask(HEADLINE)
    assert answer.citations[0].source == HEADLINE_SOURCE


def test_a_worker_that_fails_fails_the_build_in_one_line(tmp_path: Path) -> None:
    with parallel.RayWorkers(functools.partial(load_encoder, str(tmp_path / "no-model-here")), workers=2) as workers:
        with pytest.raises(QAError, match="the Ray workers failed to embed: .*no-model-here"):
            workers.encode_documents(["one text", "another"], batch_size=1)
