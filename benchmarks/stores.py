"""The two stores side by side: the same golden results, and what asking costs from each. Not part of the test suite.

    .venv/bin/python benchmarks/stores.py --corpus corpus --index index \\
        --golden tests/golden/seeds.jsonl
    .venv/bin/python benchmarks/stores.py --corpus /tmp/scale/corpus-100000 --index /tmp/scale/index-100000

It starts a milvus-lite server on 127.0.0.1 (or uses ``--store URL``), publishes
the built index ``--index`` to it (timed: chunks per second), then asks the
same questions of a bot on the files and a bot on Milvus, one after the other:

- with ``--golden``, ``qa eval``'s summary from each store (hit@1, hit@5, MRR),
  which must be identical;
- warm ``Bot.ask`` latency from each, p50 and p99, over the golden questions or
  ``--questions`` XQuAD questions, after one warm-up each;
- the passages of every question compared between the stores.

milvus-lite is Milvus's protocol in pure Python, for tests and laptops; its
figures bound what a Milvus cluster costs from above, not from below.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
XQUAD = ROOT.parent / "shared" / "bench" / "xquad"


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "qa.stages.milvus", str(folder), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return process, f"milvus://127.0.0.1:{port}/bench"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("milvus-lite did not start")


def timed_asks(bot, questions: list[str]) -> tuple[dict, list]:
    bot.ask("warm up")
    times, passages = [], []
    for question in questions:
        started = time.perf_counter()
        answer = bot.ask(question)
        times.append((time.perf_counter() - started) * 1000)
        passages.append([(p.source, p.line_start, p.line_end, p.char_start, p.char_end, round(p.score, 5)) for p in answer.passages])
    return {"p50_ms": round(float(np.percentile(times, 50)), 1), "p99_ms": round(float(np.percentile(times, 99)), 1), "questions": len(times)}, passages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True, help="a built index (qa index)")
    parser.add_argument("--golden", type=Path, help="golden file to evaluate from both stores")
    parser.add_argument("--questions", type=int, default=200, help="XQuAD questions for latency when no golden file is given")
    parser.add_argument("--store", help="an existing Milvus server, milvus://host:port/prefix (default: start milvus-lite)")
    args = parser.parse_args()

    from qa import Bot, Settings
    from qa.evaluate import load_golden, summarise
    from qa.stages import index as index_store
    from qa.stages import milvus

    server = None
    scratch = tempfile.TemporaryDirectory(prefix="qa-stores-")
    url = args.store
    if url is None:
        server, url = start_server(Path(scratch.name) / "milvus")
    try:
        built = index_store.read(args.index)
        started = time.perf_counter()
        milvus.publish(url, built)
        publish_s = time.perf_counter() - started
        chunks = built.manifest.chunk_count
        built.close()
        files_settings = Settings.load(corpus_dir=args.corpus, index_dir=args.index)
        files = Bot.load(files_settings, build_if_missing=False)
        engine = Bot.load(files_settings.model_copy(update={"store": url}), build_if_missing=False)
        row: dict = {"chunks": chunks, "publish_s": round(publish_s, 1), "publish_chunks_per_s": round(chunks / publish_s, 1)}
        cases = load_golden(args.golden) if args.golden else []
        if cases:
            questions = [case.question for case in cases if not case.history]
        else:
            pool = [json.loads(line)["question"] for path in sorted(XQUAD.glob("*/questions.jsonl")) for line in path.read_text().splitlines() if line.strip()]
            questions = random.Random(5).sample(pool, args.questions)
        # Timed first, while no question has been asked of either bot (each keeps its own question vectors).
        seen = {}
        for name, bot in (("files", files), ("milvus", engine)):
            row[f"{name}_warm"], seen[name] = timed_asks(bot, questions)
        row["same_passages"] = sum(a == b for a, b in zip(seen["files"], seen["milvus"]))
        row["questions"] = len(questions)
        for name, bot in (("files", files), ("milvus", engine)):
            if cases:
                summary = summarise(bot.evaluate(cases))
                row[f"{name}_golden"] = {key: summary[key] for key in ("cases", "hit@1", "hit@5", "mrr@10", "false_abstain")}
        print(json.dumps(row, indent=2))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=60)
        scratch.cleanup()


if __name__ == "__main__":
    main()
