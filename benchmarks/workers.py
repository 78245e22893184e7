"""Indexing throughput with the model in this process and on 1, 2 and 4 Ray workers. Not part of the test suite.

    .venv/bin/python benchmarks/workers.py --corpus /tmp/scale/corpus-1000 --workers 0,1,2,4

Each build runs from scratch in a new ``qa index`` process (``--workers N``;
0 is the model in the build's own process), on the real model, and its wall
time covers everything a user waits for: Ray's start, the workers loading the
model, reading, chunking, glossing, embedding and writing. Prints one JSON row
per setting: seconds, chunks per second, and the speed-up over 0.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--workers", default="0,1,2,4", help="comma-separated worker counts")
    args = parser.parse_args()

    from qa.stages import index as index_store

    base = None
    with tempfile.TemporaryDirectory(prefix="qa-workers-") as scratch:
        for workers in [int(w) for w in args.workers.split(",")]:
            index_dir = Path(scratch) / f"index-{workers}"
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "qa.faces.cli", "index", str(args.corpus), "--index-dir", str(index_dir), "--workers", str(workers)],
                check=True, capture_output=True, text=True,
            )
            seconds = time.perf_counter() - started
            chunks = index_store.read_manifest(index_dir).chunk_count
            base = base or seconds
            print(json.dumps({"workers": workers, "chunks": chunks, "seconds": round(seconds, 1), "chunks_per_s": round(chunks / seconds, 2), "speed_up": round(base / seconds, 2)}), flush=True)
            shutil.rmtree(index_dir)


if __name__ == "__main__":
    main()
