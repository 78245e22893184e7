"""Speed benchmark for qa; prints a markdown table. Not part of the test suite.

    .venv/bin/python benchmarks/bench.py                 # about 4 minutes on 2 cores
    .venv/bin/python benchmarks/bench.py --ann           # + HNSW vs flat on 200,000 synthetic vectors (minutes, GBs)
    .venv/bin/python benchmarks/bench.py --ann --ann-n 1000000

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
QA = [sys.executable, "-m", "qa.cli"]


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    cpu = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    meminfo = re.search(r"MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text())
    ram = f"{int(meminfo.group(1)) / 2**20:.0f} GiB RAM" if meminfo else "RAM unknown"
    return f"{cpu.group(1).strip() if cpu else platform.processor()}, {os.cpu_count()} cores, {ram}, Python {platform.python_version()}"


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one new process, by GNU time."""
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    hours, minutes, seconds = wall.groups()
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds), int(rss.group(1)) / 1024


def median_of(runs: int, command: list[str], before=None) -> tuple[float, float]:
    walls, peaks = [], []
    for _ in range(runs):
        if before:
            before()
        wall, peak = timed(command)
        walls.append(wall)
        peaks.append(peak)
    return statistics.median(walls), statistics.median(peaks)


def bare_encode(index_dir: Path) -> tuple[float, float]:
    """A new process that only loads the model and encodes the index's chunk texts: (process wall, encode seconds)."""
    script = f"""
import json, time
from pathlib import Path
from qa import index
from qa.embed import load_sentence_transformer
texts = [c.text for c in index.read(Path({str(index_dir)!r})).chunks]
model = load_sentence_transformer("sentence-transformers/all-MiniLM-L6-v2")
started = time.perf_counter()
model.encode_document(texts, batch_size=32, normalize_embeddings=True)
print(json.dumps(time.perf_counter() - started))
"""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    return time.perf_counter() - started, json.loads(done.stdout.strip().splitlines()[-1])


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


def ann(n: int, dimension: int = 384, queries: int = 200) -> list[tuple[str, str]]:
    """HNSW vs exact search on synthetic unit vectors shaped like embeddings.

    Sentence embeddings fill a low-dimensional part of their space; uniform
    384-d noise does not, and no graph index finds its neighbours well. So the
    vectors are drawn in 32 dimensions, mapped into 384 and lightly perturbed.
    Questions are fresh draws from the same distribution.
    """
    import faiss

    rng = np.random.default_rng(0)
    mapping = rng.standard_normal((32, dimension), dtype=np.float32)

    def draw(count: int) -> np.ndarray:
        vectors = rng.standard_normal((count, 32), dtype=np.float32) @ mapping
        vectors += 0.1 * np.linalg.norm(vectors, axis=1, keepdims=True) / np.sqrt(dimension) * rng.standard_normal((count, dimension), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    data, asked = draw(n), draw(queries)

    def build(index) -> tuple[object, float, float]:
        started = time.perf_counter()
        index.add(data)
        seconds = time.perf_counter() - started
        return index, seconds, len(faiss.serialize_index(index)) / 2**20

    def latency(index) -> tuple[float, np.ndarray]:
        found, times = [], []
        for vector in asked:
            started = time.perf_counter()
            found.append(index.search(vector[None, :], 10)[1][0])
            times.append((time.perf_counter() - started) * 1000)
        return float(np.median(times)), np.array(found)

    flat, flat_build, flat_mib = build(faiss.IndexFlatIP(dimension))
    flat_ms, truth = latency(flat)
    del flat
    hnsw = faiss.IndexHNSWFlat(dimension, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 128
    hnsw, hnsw_build, hnsw_mib = build(hnsw)
    for ef in (16, 32, 64, 128, 256, 512):
        hnsw.hnsw.efSearch = ef
        hnsw_ms, found = latency(hnsw)
        recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])
        if recall >= 0.95:
            break
    return [
        (f"ANN, {n:,} synthetic 384-d vectors (32-d intrinsic): exact IndexFlatIP", f"build {flat_build:.1f} s, {flat_mib:,.0f} MiB, query p50 {flat_ms:.2f} ms, recall@10 1.000"),
        (
            f"ANN: IndexHNSWFlat M=32 efConstruction=128 efSearch={ef}",
            f"build {hnsw_build:.1f} s, {hnsw_mib:,.0f} MiB, query p50 {hnsw_ms:.2f} ms, recall@10 {recall:.3f}",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per cold figure (median)")
    parser.add_argument("--scratch-runs", type=int, default=3, help="runs of qa index from scratch (median)")
    parser.add_argument("--ann", action="store_true", help="also benchmark HNSW vs flat on synthetic vectors")
    parser.add_argument("--ann-n", type=int, default=200_000, help="synthetic vectors for --ann")
    options = parser.parse_args()
    if not Path("/usr/bin/time").exists():
        raise SystemExit("needs GNU time: apt-get install -y time")

    rows: list[tuple[str, str]] = []
    work = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    index_dir = work / "index"
    try:
        scratch = median_of(options.scratch_runs, [*QA, "index", "corpus", "--index-dir", str(index_dir)], lambda: shutil.rmtree(index_dir, ignore_errors=True))
        bare_wall, bare_encode_s = bare_encode(index_dir)
        chunks = json.loads(next(index_dir.glob("gen-*/manifest.json")).read_text())["chunk_count"]
        rows.append((f"`qa index` from scratch ({chunks} chunks; model load, embed, ONNX export)", f"{scratch[0]:.1f} s, peak {scratch[1]:.0f} MiB"))
        rows.append(
            ("bare `SentenceTransformer.encode_document` of the same chunks, new process", f"{bare_wall:.1f} s ({bare_encode_s:.1f} s encoding); qa index / bare = {scratch[0] / bare_wall:.2f}")
        )
        unchanged = median_of(options.runs, [*QA, "index", "corpus", "--index-dir", str(index_dir)])
        rows.append(("`qa index`, corpus unchanged", f"{unchanged[0]:.2f} s, peak {unchanged[1]:.0f} MiB"))
        cold = median_of(options.runs, [*QA, "ask", QUESTION, "--index-dir", str(index_dir)])
        rows.append(("cold `qa ask` (new process, ONNX query encoder)", f"{cold[0]:.2f} s, peak {cold[1]:.0f} MiB"))
        fallback_dir = work / "index-no-onnx"
        shutil.copytree(index_dir, fallback_dir, ignore=shutil.ignore_patterns("models"))
        fallback = median_of(options.runs, [*QA, "ask", QUESTION, "--index-dir", str(fallback_dir)])
        rows.append(("cold `qa ask` without the export (sentence-transformers + torch)", f"{fallback[0]:.2f} s, peak {fallback[1]:.0f} MiB"))
        p50, p99, asks = warm_asks(index_dir)
        rows.append((f"warm `Bot.ask`, {asks} golden questions", f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"))
        if options.ann:
            rows.extend(ann(options.ann_n))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"{date.today().isoformat()} · {machine()} · `{' '.join(sys.argv)}` · medians of {options.runs} runs\n")
    print("| measure | result |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
