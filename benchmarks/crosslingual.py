"""Cross-lingual retrieval, measured: retrievers and bridges, on and off, on the seeds and on XQuAD.

    .venv/bin/python benchmarks/crosslingual.py                    # seeds + XQuAD (about 10 minutes on 2 cores)
    .venv/bin/python benchmarks/crosslingual.py --xquad ""         # seeds only
    .venv/bin/python benchmarks/crosslingual.py --xquad ../shared/bench/xquad

English questions only (the golden files' ``"lang": "en"``; XQuAD's are all
English), with the offline default model. Each configuration changes one
thing against the full hybrid retriever: a retriever, a query bridge left
out, the index built without FreeDict's German dictionary, or without any
glosses. Prints markdown tables of hit@1 / hit@5 / MRR@10 by document
language (seeds) and by task (XQuAD).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from qa.bot import Bot
from qa.crosslingual.bridge import BRIDGES
from qa.evaluate import load_golden, summarise
from qa.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SEED_LANGUAGES = ("de", "zh", "ko")


def configurations() -> list[tuple[str, dict]]:
    full = {"retriever": "hybrid", "bridges": list(BRIDGES), "glosses": True}
    rows = [
        ("dense", {**full, "retriever": "dense"}),
        ("lexical", {**full, "retriever": "lexical"}),
        ("hybrid (everything on)", full),
    ]
    rows += [(f"hybrid without {bridge}", {**full, "bridges": [b for b in BRIDGES if b != bridge]}) for bridge in BRIDGES]
    rows += [
        ("hybrid without FreeDict (no German glosses)", {**full, "freedict": False}),
        ("hybrid without glosses", {**full, "glosses": False}),
        ("hybrid, no bridges, no glosses", {**full, "bridges": [], "glosses": False}),
        ("dense without glosses", {**full, "retriever": "dense", "glosses": False}),
    ]
    return rows


def evaluate(corpus: Path, golden: Path, indexes: Path, configuration: dict) -> dict:
    settings = dict(configuration)
    freedict = settings.pop("freedict", True)
    glosses = ("glosses" if freedict else "glosses-no-freedict") if settings["glosses"] else "plain"
    resolved = Settings(corpus_dir=corpus, index_dir=indexes / f"{corpus.parent.name}-{glosses}", **settings)
    if not freedict:  # an empty folder, where qa looks for FreeDict instead of the system's
        os.environ["QA_FREEDICT_DIR"] = str(indexes)
    try:
        Bot.index(resolved)  # built once per corpus and gloss setting, then found up to date
        cases = [case for case in load_golden(golden) if case.lang in (None, "en")]
        return summarise(Bot.load(resolved).evaluate(cases))
    finally:
        os.environ.pop("QA_FREEDICT_DIR", None)


def cell(metrics: dict) -> str:
    return f"{metrics['hit@1']:.3f} / {metrics['hit@5']:.3f} / {metrics['mrr@10']:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xquad", default=str(ROOT.parent / "shared" / "bench" / "xquad"), help="XQuAD folder ('' to skip)")
    options = parser.parse_args()
    tasks = sorted(Path(options.xquad).glob("xquad-*")) if options.xquad else []
    with tempfile.TemporaryDirectory() as scratch:
        indexes = Path(scratch)
        print("Seeds, English questions (hit@1 / hit@5 / MRR@10):\n")
        print("| configuration | German doc | Chinese doc | Korean doc | all |")
        print("|---|---|---|---|---|")
        for name, settings in configurations():
            summary = evaluate(ROOT / "corpus", ROOT / "tests" / "golden" / "seeds.jsonl", indexes, settings)
            by_language = summary["by_document_lang"]
            print(f"| {name} | " + " | ".join(cell(by_language[lang]) for lang in SEED_LANGUAGES) + f" | {cell(summary)} |", flush=True)
        if tasks:
            print("\nXQuAD, English questions (hit@1 / hit@5 / MRR@10):\n")
            print("| configuration | " + " | ".join(task.name for task in tasks) + " |")
            print("|---|" + "---|" * len(tasks))
            for name, settings in configurations():
                cells = [cell(evaluate(task / "corpus", task / "questions.jsonl", indexes, settings)) for task in tasks]
                print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
