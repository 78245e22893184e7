"""qa's SQLite postings against bm25s on the same terms: what opening and scoring cost. Not part of the test suite.

    .venv/bin/python benchmarks/lexical_engines.py /tmp/qa-scale-after/index-100000

Both engines get the terms of qa's own analyzer (CJK bigrams, stems, cognate
keys) for every chunk of a built index and score the seeds' golden questions
with the same BM25 (Lucene's idf, k1 = 1.2, b = 0.75). Opening is timed in a
new process each (median of 5), scoring in a warm one; bm25s scores a
question's terms unweighted (its API takes a term list), qa's with the same
terms at weight 1, so the work compared is the same. Needs ``pip install bm25s``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def question_terms() -> list[list[str]]:
    from qa.stages.lexical import analyze_query

    cases = [json.loads(line) for line in (ROOT / "tests" / "golden" / "seeds.jsonl").read_text().splitlines() if line.strip()]
    return [terms for terms in (analyze_query(c["question"]) for c in cases) if terms]


def build_bm25s(index_dir: Path, target: Path) -> float:
    import bm25s
    from bm25s.tokenization import Tokenized

    from qa.stages import index as index_store
    from qa.stages.lexical import index_terms

    stored = index_store.read(index_dir)
    vocabulary: dict[str, int] = {}
    ids = [[vocabulary.setdefault(term, len(vocabulary)) for term in index_terms(chunk.text)] for _, chunk, _ in stored.each_chunk()]
    started = time.perf_counter()
    engine = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    engine.index(Tokenized(ids=ids, vocab=vocabulary), show_progress=False)
    seconds = time.perf_counter() - started
    engine.save(str(target))
    return seconds


def open_and_score(engine: str, where: str) -> dict:
    """In a new process: open the engine (its imports done), then score every question."""
    if engine == "bm25s":
        import bm25s

        started = time.perf_counter()
        model = bm25s.BM25.load(where, mmap=True, show_progress=False)
        opened = time.perf_counter() - started

        def score(terms: list[str]) -> np.ndarray:
            known = [t for t in terms if t in model.vocab_dict]
            return model.get_scores(known) if known else np.zeros(model.scores["num_docs"])
    else:
        from qa.stages import index as index_store
        from qa.stages.lexical import BM25

        started = time.perf_counter()
        stored = index_store.read(Path(where))
        bm25 = BM25(stored.postings, stored.lengths)
        opened = time.perf_counter() - started

        def score(terms: list[str]) -> np.ndarray:
            return bm25.scores(dict.fromkeys(terms, 1.0))

    questions = question_terms()
    first = time.perf_counter()
    score(questions[0])
    first = time.perf_counter() - first
    times = []
    for terms in questions:
        begun = time.perf_counter()
        score(terms)
        times.append((time.perf_counter() - begun) * 1000)
    return {"open_s": opened, "first_ms": first * 1000, "p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99))}


def main() -> None:
    if sys.argv[1] == "--run":
        print(json.dumps(open_and_score(sys.argv[2], sys.argv[3])))
        return
    index_dir = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as scratch:
        built = build_bm25s(index_dir, Path(scratch) / "bm25s")
        size = sum(p.stat().st_size for p in (Path(scratch) / "bm25s").iterdir())
        results = {}
        for engine, where in (("qa", str(index_dir)), ("bm25s", str(Path(scratch) / "bm25s"))):
            runs = [
                json.loads(subprocess.run([sys.executable, __file__, "--run", engine, where], capture_output=True, text=True, check=True).stdout.splitlines()[-1])
                for _ in range(5)
            ]
            results[engine] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(json.dumps({"bm25s_index_s": built, "bm25s_bytes": size, **results}, indent=2))


if __name__ == "__main__":
    main()
