"""Speed benchmark for qa; prints a markdown table. Not part of the test suite.

    .venv/bin/python benchmarks/bench.py                 # about 4 minutes on 2 cores
    .venv/bin/python benchmarks/bench.py --ann           # + IVF-PQ vs flat on 1,000,000 synthetic vectors (minutes, GBs)
    .venv/bin/python benchmarks/bench.py --ann-only --ann-n 200000 --ann-kinds ivf,hnsw

Cold runs are new processes, measured with GNU time (``/usr/bin/time -v``, for
the peak RSS; on Debian/Ubuntu: ``apt-get install -y time``). Every figure is
a median (or a percentile) of several runs, since a shared machine is noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "What did NIST sign with Korea?"
QA = [sys.executable, "-m", "qa.faces.cli"]


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    cpu = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    meminfo = re.search(r"MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text())
    ram = f"{int(meminfo.group(1)) / 2**20:.0f} GiB RAM" if meminfo else "RAM unknown"
    return f"{cpu.group(1).strip() if cpu else platform.processor()}, {os.cpu_count()} cores, {ram}, Python {platform.python_version()}"


def timed(command: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one new process, by GNU time."""
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    hours, minutes, seconds = wall.groups()
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds), int(rss.group(1)) / 1024


def median_of(runs: int, command: list[str], before=None, env: dict | None = None) -> tuple[float, float]:
    walls, peaks = [], []
    for _ in range(runs):
        if before:
            before()
        wall, peak = timed(command, env)
        walls.append(wall)
        peaks.append(peak)
    return statistics.median(walls), statistics.median(peaks)


def bare_encode(index_dir: Path, runs: int) -> tuple[float, float]:
    """Medians of new processes that only load the model and encode what the index embedded: (wall, encode seconds).

    That is each chunk's text, or its English glosses where it has them.
    """
    script = f"""
import json, time
from pathlib import Path
from qa.stages import index
from qa.stages.embed import load_sentence_transformer
from qa.crosslingual.gloss import english_view
stored = index.read(Path({str(index_dir)!r}))
texts = [english_view(g, c.text) for c, g in zip(stored.chunks, stored.glosses)]
model = load_sentence_transformer("sentence-transformers/all-MiniLM-L6-v2")
started = time.perf_counter()
model.encode_document(texts, batch_size=32, normalize_embeddings=True)
print(json.dumps(time.perf_counter() - started))
"""
    walls, encodes = [], []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
        walls.append(time.perf_counter() - started)
        encodes.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return statistics.median(walls), statistics.median(encodes)


def warm_asks(index_dir: Path) -> tuple[float, float, int]:
    """p50 and p99 milliseconds of ``Bot.ask`` over the golden questions, asked twice, in one warm process."""
    from qa import Bot, Settings
    from qa.evaluate import load_golden

    bot = Bot.load(Settings(corpus_dir=ROOT / "corpus", index_dir=index_dir))
    bot.ask(QUESTION)
    cases = load_golden(ROOT / "tests" / "golden" / "seeds.jsonl") * 2
    times = []
    for case in cases:
        started = time.perf_counter()
        bot.ask(case.question, history=case.history)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99)), len(times)


def synthetic_vectors(count: int, dimension: int, seed: int) -> np.ndarray:
    """Unit vectors shaped like sentence embeddings, drawn in batches to keep the peak memory the result's.

    Sentence embeddings fill a low-dimensional part of their space; uniform
    384-d noise does not, and no index finds its neighbours well. So the
    vectors are drawn in 32 dimensions, mapped into 384 by one fixed random
    matrix and lightly perturbed: no clusters, which is the hard case for IVF.
    """
    mapping = np.random.default_rng(0).standard_normal((32, dimension), dtype=np.float32)
    rng = np.random.default_rng(seed)
    vectors = np.empty((count, dimension), np.float32)
    for start in range(0, count, 100_000):
        size = min(100_000, count - start)
        batch = rng.standard_normal((size, 32), dtype=np.float32) @ mapping
        batch += 0.1 * np.linalg.norm(batch, axis=1, keepdims=True) / np.sqrt(dimension) * rng.standard_normal((size, dimension), dtype=np.float32)
        vectors[start : start + size] = batch / np.linalg.norm(batch, axis=1, keepdims=True)
    return vectors


def index_parameters(index) -> str:
    """What sets an index's speed and recall, for the table."""
    import faiss

    from qa.stages.index import IVF_REFINE_FACTOR

    if index is None:
        return "exact inner product over the memory-mapped vectors"
    if isinstance(index, faiss.IndexIDMap):
        index = faiss.downcast_index(index.index)
    if isinstance(index, faiss.IndexIVF):
        return (
            f"IVF-PQ fast scan ({index.nlist:,} lists, {index.nprobe} probed, {index.pq.M} 4-bit codes a vector), "
            f"{IVF_REFINE_FACTOR}× candidates rescored exactly"
        )
    if isinstance(index, faiss.IndexHNSW):
        return f"HNSW (M={index.hnsw.nb_neighbors(1)}, efConstruction={index.hnsw.efConstruction}, efSearch={index.hnsw.efSearch})"
    return type(index).__name__


def ann_run(kind: str, n: int, dimension: int = 384, queries: int = 400) -> None:
    """In its own process, for its peak RSS: build ``kind`` as ``qa index`` would, ask like the retriever; print JSON.

    The exact vectors are what ``qa`` memory-maps (``vectors.f32``); the
    index's size is the dense file written beside them (none for flat).
    """
    import faiss

    from qa.stages.index import dense_index, dense_kind, dense_search
    from qa.stages.retrieve import CANDIDATE_POOL

    data, asked = synthetic_vectors(n, dimension, seed=1), synthetic_vectors(queries, dimension, seed=2)
    started = time.perf_counter()
    index = dense_index(data, np.arange(n), dimension, dense_kind(n, kind)) if dense_kind(n, kind) != "flat" else None
    build = time.perf_counter() - started
    size = 0
    if index is not None:
        with tempfile.TemporaryDirectory() as scratch:
            faiss.write_index(index, f"{scratch}/dense.faiss")
            size = os.path.getsize(f"{scratch}/dense.faiss")
    found, times = [], []
    for vector in asked:
        started = time.perf_counter()
        found.append(dense_search(data, index, vector, CANDIDATE_POOL)[:10].tolist())
        times.append((time.perf_counter() - started) * 1000)
    top_ten = [dense_search(data, index, vector, 10).tolist() for vector in asked]
    print(
        json.dumps(
            {"index": index_parameters(index), "build": build, "bytes": size, "p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99)), "found": found, "top_ten": top_ten}
        )
    )


def ann(n: int, kinds: list[str]) -> list[tuple[str, str]]:
    """Each dense index kind against exact search on ``n`` synthetic vectors; questions are fresh draws.

    Latency is one question at a time asking for the retriever's candidate
    pool, as ``qa ask`` does; recall@10 compares the first ten it returns with
    exact search's, and again when asking for ten only (fewer candidates).
    """
    results = {}
    for kind in ["flat", *(k for k in kinds if k != "flat")]:
        command = [sys.executable, str(Path(__file__).resolve()), "--ann-run", kind, "--ann-n", str(n)]
        done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
        results[kind] = json.loads(done.stdout.strip().splitlines()[-1])
        results[kind]["peak"] = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1)) / 2**20
    truth = results["flat"]["found"]
    rows = []
    for kind, result in results.items():
        recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(result["found"], truth)])
        recall_asking_ten = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(result["top_ten"], truth)])
        rows.append(
            (
                f"ANN, {n:,} synthetic 384-d vectors (32-d intrinsic), `ann={kind}`: {result['index']}",
                (
                    f"build {result['build']:.1f} s, index {result['bytes'] / 2**20:,.0f} MiB, process peak {result['peak']:.2f} GiB, "
                    f"query p50 {result['p50']:.2f} ms, p99 {result['p99']:.2f} ms, recall@10 {recall:.3f} (asking for 10 only: {recall_asking_ten:.3f})"
                ),
            )
        )
    return rows


def corpus_rows(options: argparse.Namespace) -> list[tuple[str, str]]:
    """Indexing and asking over the seed corpus, in new processes and in a warm one."""
    rows: list[tuple[str, str]] = []
    work = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    index_dir = work / "index"
    try:
        scratch = median_of(options.scratch_runs, [*QA, "index", "corpus", "--index-dir", str(index_dir)], lambda: shutil.rmtree(index_dir, ignore_errors=True))
        bare_wall, bare_encode_s = bare_encode(index_dir, options.scratch_runs)
        chunks = json.loads(next(index_dir.glob("gen-*/manifest.json")).read_text())["chunk_count"]
        rows.append((f"`qa index` from scratch ({chunks} chunks; model load, embed; the machine's ONNX export already made)", f"{scratch[0]:.1f} s, peak {scratch[1]:.0f} MiB"))
        rows.append(
            ("bare `SentenceTransformer.encode_document` of the same texts, new process", f"{bare_wall:.1f} s ({bare_encode_s:.1f} s encoding); qa index / bare = {scratch[0] / bare_wall:.2f}")
        )
        rebuilt = median_of(options.scratch_runs, [*QA, "index", "corpus", "--rebuild", "--index-dir", str(index_dir)])
        rows.append(("`qa index --rebuild` (every chunk embedded again, by the machine's ONNX export)", f"{rebuilt[0]:.1f} s, peak {rebuilt[1]:.0f} MiB; / bare = {rebuilt[0] / bare_wall:.2f}"))
        unchanged = median_of(options.runs, [*QA, "index", "corpus", "--index-dir", str(index_dir)])
        rows.append(("`qa index`, corpus unchanged", f"{unchanged[0]:.2f} s, peak {unchanged[1]:.0f} MiB"))
        cold = median_of(options.runs, [*QA, "ask", QUESTION, "--index-dir", str(index_dir)])
        rows.append(("cold `qa ask` (new process, ONNX query encoder)", f"{cold[0]:.2f} s, peak {cold[1]:.0f} MiB"))
        # A cache folder without the export: what a machine that could not export gets.
        fallback = median_of(options.runs, [*QA, "ask", QUESTION, "--index-dir", str(index_dir)], env={"QA_CACHE_DIR": str(work / "empty-cache")})
        rows.append(("cold `qa ask` without the export (sentence-transformers + torch)", f"{fallback[0]:.2f} s, peak {fallback[1]:.0f} MiB"))
        p50, p99, asks = warm_asks(index_dir)
        rows.append((f"warm `Bot.ask`, {asks} golden questions", f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per cold figure (median)")
    parser.add_argument("--scratch-runs", type=int, default=3, help="runs of qa index from scratch (median)")
    parser.add_argument("--ann", action="store_true", help="also compare dense indexes on synthetic vectors")
    parser.add_argument("--ann-only", action="store_true", help="only compare dense indexes on synthetic vectors")
    parser.add_argument("--ann-n", type=int, default=1_000_000, help="synthetic vectors for --ann")
    parser.add_argument("--ann-kinds", default="ivf", help="comma-separated `ann` settings to compare with flat (hnsw: minutes more)")
    parser.add_argument("--ann-run", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.ann_run:
        return ann_run(options.ann_run, options.ann_n)
    if not Path("/usr/bin/time").exists():
        raise SystemExit("needs GNU time: apt-get install -y time")

    rows = [] if options.ann_only else corpus_rows(options)
    if options.ann or options.ann_only:
        rows.extend(ann(options.ann_n, options.ann_kinds.split(",")))
    medians = "" if options.ann_only else f" · medians of {options.runs} runs"
    print(f"{date.today().isoformat()} · {machine()} · `{' '.join(sys.argv)}`{medians}\n")
    print("| measure | result |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
