"""How qa's cost grows with the collection: 1k, 10k, 100k chunks. Not part of the test suite.

    .venv/bin/python benchmarks/scale.py                          # 1k and 10k chunks
    .venv/bin/python benchmarks/scale.py --sizes 1000,10000,100000 --real-up-to 1000

The collection is the three seed articles plus files made of XQuAD paragraphs
(../shared/bench/xquad/*/corpus, five languages) recombined at random with
a fixed seed, as many files as the size needs. For each size it measures:

- a build from scratch (``qa index``, new process). Up to ``--real-up-to``
  chunks the model embeds every chunk for real, and a bare process that
  loads the same model encodes the same texts for comparison. Above
  it the vectors are a stand-in: the seeds' chunks get their real vectors
  (read from a real index of the seeds) and every other chunk a random unit
  vector seeded by its text, so that everything but the embedding is the real
  cost, and the headline question still meets its real passage;
- cold ``qa ask`` of the headline question (new process, GNU time: wall and
  peak RSS, median of ``--runs``), and whether its line is in the top 3;
- warm ``Bot.ask`` over the seeds' golden questions and 100 XQuAD ones: p50, p99;
- one changed file re-indexed (``qa index``, new process, the change embedded
  for real): first a file whose text is all new (its paragraphs replaced),
  then an edit of it (a sentence appended);
- a profile of one cold ask: what each part costs.

Run it against another checkout with ``PYTHONPATH=/that/checkout`` to measure a
"before": it uses only ``Bot``, ``Settings`` and the CLI.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "corpus"
XQUAD = ROOT.parent / "shared" / "bench" / "xquad"
QUESTION = "What did NIST sign with Korea?"
EXPECTED = ("002_7257b5aa37c3b2f3.txt", 22)
QA = [sys.executable, "-m", "qa.faces.cli"]


def paragraphs() -> list[str]:
    found = []
    for path in sorted(XQUAD.glob("*/corpus/*.txt")):
        found += [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    return found


def make_corpus(folder: Path, files: int, per_file: int = 6) -> None:
    """The seeds plus ``files`` files of ``per_file`` XQuAD paragraphs each, drawn with a fixed seed."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for seed in SEEDS.iterdir():
        shutil.copy(seed, folder / seed.name)
    pool = paragraphs()
    draw = random.Random(13)
    for number in range(files):
        text = "\n\n".join(draw.sample(pool, per_file)) + "\n"
        (folder / "xquad" / f"{number // 1000:03d}").mkdir(parents=True, exist_ok=True)
        (folder / "xquad" / f"{number // 1000:03d}" / f"doc{number:06d}.txt").write_text(text, encoding="utf-8")


def timed(command: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Wall seconds and peak RSS (MiB) of one new process, by GNU time; and its stdout."""
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    hours, minutes, seconds = wall.groups()
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds), int(rss.group(1)) / 1024, done.stdout


def cold_ask(corpus: Path, index: Path, runs: int) -> dict:
    walls, peaks, top3 = [], [], False
    for _ in range(runs):
        wall, peak, out = timed([*QA, "ask", QUESTION, "--json", "--corpus", str(corpus), "--index-dir", str(index)])
        walls.append(wall)
        peaks.append(peak)
        passages = json.loads(out)["passages"][:3]
        top3 = any(p["source"] == EXPECTED[0] and p["line_start"] <= EXPECTED[1] <= p["line_end"] for p in passages)
    return {"cold_s": statistics.median(walls), "cold_peak_mib": statistics.median(peaks), "headline_top3": top3}


def questions() -> list[tuple[str, list[str]]]:
    cases = [json.loads(line) for line in (ROOT / "tests" / "golden" / "seeds.jsonl").read_text().splitlines() if line.strip()]
    found = [(c["question"], c.get("history", [])) for c in cases]
    extra = []
    for path in sorted(XQUAD.glob("*/questions.jsonl")):
        extra += [json.loads(line)["question"] for line in path.read_text().splitlines() if line.strip()]
    return found + [(q, []) for q in random.Random(5).sample(extra, 100)]


def warm(corpus: Path, index: Path) -> dict:
    """Run in a process of its own: Bot.ask over the golden and XQuAD questions, after one warm-up."""
    from qa import Bot, Settings

    bot = Bot.load(Settings.load(corpus_dir=corpus, index_dir=index), build_if_missing=False)
    bot.ask("warm up")
    times = []
    for question, history in questions():
        started = time.perf_counter()
        bot.ask(question, history=history)
        times.append((time.perf_counter() - started) * 1000)
    # The model's share: the same questions encoded alone (its time, whatever the collection's size).
    encoding = []
    for question, _ in questions():
        started = time.perf_counter()
        bot._encode_query(question)
        encoding.append((time.perf_counter() - started) * 1000)
    return {
        "warm_p50_ms": float(np.percentile(times, 50)),
        "warm_p99_ms": float(np.percentile(times, 99)),
        "encode_p50_ms": float(np.percentile(encoding, 50)),
        "questions": len(times),
    }


def profile(corpus: Path, index: Path) -> dict:
    """Run in a new process: what each part of a cold ask costs, in seconds."""
    parts = {}
    started = last = time.perf_counter()

    def mark(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        parts[name] = now - last
        last = now

    from qa import Bot, Settings  # noqa: F401

    mark("import qa")
    settings = Settings.load(corpus_dir=corpus, index_dir=index)
    bot = Bot.load(settings, build_if_missing=False)
    mark("open the index")
    bot._question_encoder()  # loaded, not used: the question below is the process's first, as in a cold ask
    mark("load the query encoder")
    question = bot.analyse(QUESTION)
    mark("analyse the question (bridges, lexicon)")
    bot._retriever.lexical_scores(question)
    mark("lexical: postings and BM25 (first question)")
    bot._retriever.question_vector(question)  # kept, as the ask below would have made it
    mark("encode the question")
    bot.ask(QUESTION)
    mark("the whole ask once the parts are warm")
    parts["total"] = time.perf_counter() - started
    return parts


def standin_build(corpus: Path, index: Path, seeds_index: Path) -> dict:
    """Run in a process of its own: ``Bot.index`` with stand-in vectors (see the module's docstring)."""
    from qa import Bot, Settings
    from qa.crosslingual.gloss import english_view
    from qa.stages import embed
    from qa.stages import index as index_store

    seeds = index_store.read(seeds_index)
    real = {english_view(g, c.text): v for c, g, v in zip(seeds.chunks, seeds.glosses, seeds.vectors)}
    real.update(_seed_sentences(seeds))

    def encode_documents(self, texts, batch_size=32, on_batch=None, **_):
        rows = []
        for text in texts:
            if text in real:
                rows.append(real[text])
            else:
                rows.append(_standin(text))
        if on_batch:
            on_batch(len(texts))
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), 384)

    embed.Embedder.encode_documents = encode_documents
    try:
        from qa.stages import onnx_encoder

        onnx_encoder.OnnxEncoder.encode_documents = encode_documents
    except ImportError:
        pass
    started = time.perf_counter()
    report = Bot.index(Settings.load(corpus_dir=corpus, index_dir=index), rebuild=True)
    return {"build_s": time.perf_counter() - started, "chunks": report.chunks}


def _standin(text: str) -> np.ndarray:
    vector = np.random.default_rng(zlib.crc32(text.encode())).standard_normal(384).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _seed_sentences(seeds) -> dict[str, np.ndarray]:
    """The seeds' real sentence vectors, by sentence text (an index of format 4 or later)."""
    from qa.stages.chunk import quotable_texts

    if not hasattr(seeds, "sentence_vectors"):
        return {}
    found = {}
    for chunk_id, chunk, _ in seeds.each_chunk():
        found.update(zip(quotable_texts(chunk.text), seeds.sentence_vectors([chunk_id])[0]))
    return found


def _sentence_rows(chunks, real: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Each chunk's sentence vectors: the seeds' real ones, the stand-in for the rest."""
    from qa.stages.chunk import quotable_texts

    return [np.asarray([real[text] if text in real else _standin(text) for text in quotable_texts(chunk.text)], np.float32).reshape(-1, 384) for chunk in chunks]


def synthesize(corpus: Path, index: Path, size: int, seeds_index: Path) -> dict:
    """Run in a process of its own: a collection of ``size`` chunks written straight into the index format.

    For sizes where the chunker and the glosser would take the benchmark's
    hour: each XQuAD paragraph is one chunk (it is one line, and about one
    chunk long), drawn at random into files of ten; the seeds keep their real
    chunks, glosses and vectors; the other vectors are the stand-in. The
    files are written to ``corpus`` as the index records them, so a later
    ``qa index`` sees them unchanged, and the lexicon, aliases and postings
    are computed from the texts as a build computes them. Works with the
    index format of this checkout and of the one before it.
    """
    import hashlib

    from qa.bot import _recipe
    from qa.crosslingual.bridge import mine_aliases
    from qa.crosslingual.gloss import glossed_lexicon
    from qa.crosslingual import lexicon as lexicon_module
    from qa.models import Chunk, Document
    from qa.settings import Settings
    from qa.stages import index as index_store

    started = time.perf_counter()
    shutil.rmtree(corpus, ignore_errors=True)
    shutil.rmtree(index, ignore_errors=True)
    corpus.mkdir(parents=True)
    seeds = index_store.read(seeds_index)
    parts: dict[str, tuple[list, list, list]] = {}
    seed_sentences = _seed_sentences(seeds)
    for chunk, glosses, vector in zip(seeds.chunks, seeds.glosses, seeds.vectors):
        entry = parts.setdefault(chunk.source, ([], [], []))
        entry[0].append(chunk)
        entry[1].append(list(glosses))
        entry[2].append(np.asarray(vector))
    texts = {source: (SEEDS / source).read_text(encoding="utf-8") for source in parts}
    for source, text in texts.items():
        (corpus / source).write_text(text, encoding="utf-8")
    pool = paragraphs()
    draw = random.Random(13)
    fill = size - sum(len(p[0]) for p in parts.values())
    for number in range((fill + 9) // 10):
        chosen = draw.sample(pool, min(10, fill - number * 10))
        source = f"xquad/{number // 1000:03d}/doc{number:06d}.txt"
        text = "\n\n".join(chosen) + "\n"
        chunks, offset = [], 0
        for line, paragraph in enumerate(chosen):
            chunks.append(Chunk(source=source, char_start=offset, char_end=offset + len(paragraph), line_start=2 * line + 1, line_end=2 * line + 1, text=paragraph))
            offset += len(paragraph) + 2
        vectors = []
        for paragraph in chosen:
            vector = np.random.default_rng(zlib.crc32(paragraph.encode())).standard_normal(384).astype(np.float32)
            vectors.append(vector / np.linalg.norm(vector))
        parts[source] = (chunks, [[] for _ in chunks], vectors)
        texts[source] = text
        (corpus / source).parent.mkdir(parents=True, exist_ok=True)
        (corpus / source).write_text(text, encoding="utf-8")
    documents = [Document(source=s, text=t, sha256=hashlib.sha256((corpus / s).read_bytes()).hexdigest()) for s, t in texts.items()]
    settings = Settings.load(corpus_dir=corpus, index_dir=index)
    fields = {**_recipe(settings), "dimension": 384}
    if hasattr(lexicon_module, "ranked_files"):  # per-file lexicons, as a build makes them
        source, names = lexicon_module.LexiconSource.load(), list(texts)
        lexicon = {}
        for start in range(0, len(names), 256):
            lexicon.update(lexicon_module.ranked_files({name: [texts[name]] for name in names[start : start + 256]}, source))
    else:
        lexicon = lexicon_module.build(list(texts.values()))
    if hasattr(index_store, "FreshFile"):
        fresh = {
            source: index_store.FreshFile(
                chunks, np.asarray(vectors, np.float32), _sentence_rows(chunks, seed_sentences), glosses, mine_aliases(texts[source]), glossed_lexicon([c.text for c in chunks], glosses)
            )
            for source, (chunks, glosses, vectors) in parts.items()
        }
        index_store.write(index, None, {d.source: d.sha256 for d in documents}, [], fresh, lexicon, fields, settings.ann)
    else:  # the format before: every part in memory, written whole
        from qa.crosslingual.bridge import merge_aliases
        from qa.crosslingual.lexicon import merge_lexicons
        from qa.stages.lexical import index_terms

        chunks = [c for p in parts.values() for c in p[0]]
        glosses = [g for p in parts.values() for g in p[1]]
        vectors = np.asarray([v for p in parts.values() for v in p[2]], np.float32)
        manifest = index_store.Manifest(
            format_version=index_store.FORMAT_VERSION, files={d.source: d.sha256 for d in documents}, chunk_count=len(chunks), built_at="synthetic", **fields
        )
        stored = index_store.StoredIndex(
            manifest, chunks, vectors, [index_terms(c.text) for c in chunks], glosses,
            merge_aliases(mine_aliases(t) for t in texts.values()), merge_lexicons(lexicon, glossed_lexicon([c.text for c in chunks], glosses)),
        )
        index_store.write(index, stored, settings.ann)
        # That format kept the ONNX export in the index folder: the seeds' is the same model's.
        shutil.copytree(seeds_index / "models", index / "models")
    return {"build_s": time.perf_counter() - started, "chunks": sum(len(p[0]) for p in parts.values()), "files": len(documents)}


def bare_encode(texts_file: Path) -> dict:
    """Run in a new process: load the index's model (the default one) and encode the texts, nothing else."""
    started = time.perf_counter()
    from qa.settings import Settings
    from qa.stages.embed import load_encoder

    texts = json.loads(texts_file.read_text(encoding="utf-8"))
    settings = Settings.load()
    embedder = load_encoder(settings.model)
    loaded = time.perf_counter()
    embedder.encode_documents(texts, settings.batch_size)
    done = time.perf_counter()
    return {"bare_s": done - started, "bare_encode_s": done - loaded}


def helper(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def model_texts(index: Path) -> list[str]:
    """What a build gives the model: each chunk as the model reads it (its English glosses only where the recipe embeds them), and every sentence once."""
    from qa.crosslingual.gloss import english_view
    from qa.stages import index as index_store
    from qa.stages.chunk import quotable_texts

    stored = index_store.read(index)
    glossed = stored.manifest.glosser.endswith("+embedded")
    chunks = [english_view(g, c.text) if glossed else c.text for c, g in zip(stored.chunks, stored.glosses)]
    return list(dict.fromkeys([*chunks, *(sentence for c in stored.chunks for sentence in quotable_texts(c.text))]))


def measure(size: int, work: Path, real: bool, runs: int, seeds_index: Path, per_file_chunks: float, synthetic: bool, reuse: bool = False) -> dict:
    corpus, index = work / f"corpus-{size}", work / f"index-{size}"
    row: dict = {"size": size}
    if synthetic:
        if reuse and index.is_dir():
            row["build_s"] = None  # written by an earlier run
        else:
            row.update(helper("--synth", str(corpus), str(index), str(size), str(seeds_index)))
        row["vectors"] = "stand-in, written straight into the index"
        return finish(row, corpus, index, runs)
    files = max(1, round((size - 52) / per_file_chunks))
    make_corpus(corpus, files)
    shutil.rmtree(index, ignore_errors=True)
    row["files"] = files + 3
    if real:
        wall, peak, _ = timed([*QA, "index", str(corpus), "--index-dir", str(index)])
        row.update(build_s=wall, build_peak_mib=peak, vectors="real")
        texts = work / f"texts-{size}.json"
        texts.write_text(json.dumps(model_texts(index), ensure_ascii=False), encoding="utf-8")
        row.update(helper("--bare", str(texts)))
    else:
        row.update(helper("--standin", str(corpus), str(index), str(seeds_index)))
        row["vectors"] = "stand-in"
    return finish(row, corpus, index, runs)


def finish(row: dict, corpus: Path, index: Path, runs: int) -> dict:
    from qa.stages import index as index_store

    row["chunks"] = index_store.read_manifest(index).chunk_count
    row["chunks_per_s"] = row["chunks"] / row["build_s"] if row["build_s"] else None
    row.update(cold_ask(corpus, index, runs))
    row.update(helper("--warm", str(corpus), str(index)))
    row["profile"] = helper("--profile", str(corpus), str(index))
    # A collection written straight into the index lacks the extractions a build keeps
    # (qa.stages.ingest.store): the first qa index makes them, as a real build would have.
    timed([*QA, "index", str(corpus), "--index-dir", str(index)])
    changed = min((corpus / "xquad").rglob("*.txt"))
    # A file whose every word is new (its paragraphs replaced by others): the model reads all of it.
    changed.write_text("\n\n".join(random.Random(7).sample(paragraphs(), 6)) + "\n", encoding="utf-8")
    wall, peak, _ = timed([*QA, "index", str(corpus), "--index-dir", str(index)])
    row.update(new_text_file_s=wall, new_text_file_peak_mib=peak)
    # An edit: one sentence appended to that file. The text it still holds keeps its vectors.
    changed.write_text(changed.read_text(encoding="utf-8") + "\nOne more sentence, added to see what a small change costs.\n", encoding="utf-8")
    wall, peak, _ = timed([*QA, "index", str(corpus), "--index-dir", str(index)])
    row.update(changed_file_s=wall, changed_file_peak_mib=peak)
    row["segments"] = len(index_store.read_manifest(index).segments)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--real-up-to", type=int, default=1000, help="embed for real up to this many chunks")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/qa-scale"))
    parser.add_argument("--out", type=Path, help="also write the rows here as JSON")
    parser.add_argument("--warm", nargs=2, type=Path)
    parser.add_argument("--profile", nargs=2, type=Path)
    parser.add_argument("--standin", nargs=3, type=Path)
    parser.add_argument("--bare", type=Path)
    parser.add_argument("--synth", nargs=4)
    parser.add_argument("--synthetic-from", type=int, default=100_000, help="from this size, write the collection straight into the index")
    parser.add_argument("--reuse", action="store_true", help="measure a collection written straight into the index by an earlier run")
    args = parser.parse_args()
    if args.warm:
        print(json.dumps(warm(*args.warm)))
        return
    if args.profile:
        print(json.dumps(profile(*args.profile)))
        return
    if args.standin:
        print(json.dumps(standin_build(*args.standin)))
        return
    if args.bare:
        print(json.dumps(bare_encode(args.bare)))
        return
    if args.synth:
        corpus, index, size, seeds = args.synth
        print(json.dumps(synthesize(Path(corpus), Path(index), int(size), Path(seeds))))
        return

    args.work.mkdir(parents=True, exist_ok=True)
    seeds_index = args.work / "index-seeds"
    shutil.rmtree(seeds_index, ignore_errors=True)
    timed([*QA, "index", str(SEEDS), "--index-dir", str(seeds_index)])
    from qa.stages import index as index_store

    seeds_chunks = index_store.read_manifest(seeds_index).chunk_count
    rows = [{"size": "seeds", "chunks": seeds_chunks, **cold_ask(SEEDS, seeds_index, args.runs), **helper("--warm", str(SEEDS), str(seeds_index))}]
    print(json.dumps(rows[-1]), flush=True)
    # Chunks per generated file, from a small sample: about 6 XQuAD paragraphs make this many.
    sizes = [int(s) for s in args.sizes.split(",")]
    per_file = 0.0
    if any(size < args.synthetic_from for size in sizes):
        sample = args.work / "sample"
        make_corpus(sample, 40)
        sample_index = args.work / "index-sample"
        shutil.rmtree(sample_index, ignore_errors=True)
        helper("--standin", str(sample), str(sample_index), str(seeds_index))
        per_file = (index_store.read_manifest(sample_index).chunk_count - seeds_chunks) / 40
    for size in sizes:
        rows.append(measure(size, args.work, size <= args.real_up_to, args.runs, seeds_index, per_file, size >= args.synthetic_from, args.reuse))
        print(json.dumps(rows[-1]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
