"""Abstention, calibrated and measured on whole sets of answerable and unanswerable questions.

    .venv/bin/python benchmarks/abstention.py                       # collect, fit, print the table
    .venv/bin/python benchmarks/abstention.py --write               # ... and store qa/stages/calibration.json
    .venv/bin/python benchmarks/abstention.py --xquad ""            # seeds only

Sets: the seeds golden file (answerable, plus its unanswerable cases), the
hand-written unanswerable files (off-topic and near misses about the seed
collection's own actors), and every XQuAD dev task, where each question is
asked twice: against its task's whole corpus (answerable), and against the
corpus without its own article (a cross-article negative). The negative is
retrieved from the same index with the article's passages left out, so the
lexical statistics still count that article: a slight approximation of an
index built without it, which the benchmark does not build 24 times a task.

For every question it records the evidence that ``qa.stages.answer.evidence``
computes, fits a logistic regression on all sets pooled (each set weighted
equally, answerable and unanswerable balanced within it), and sweeps the
confidence threshold. The default threshold is the highest one at which no
set wrongly refuses more than ``--max-false-abstain`` of its answerable
questions; the table shows every set's rates around it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from qa.bot import Bot
from qa.evaluate import load_golden
from qa.settings import Settings
from qa.stages.lexical import analyze_query
from qa.stages import answer as answerer
from qa.stages.calibration import CALIBRATION_FILE, Calibration

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
FEATURES = ("score", "dense", "gap", "dense_gap", "coverage", "entities", "sentence", "unknown", "typed", "read")
POOL = 40  # passages retrieved before a negative's own article is left out
# A collection whose answerable and unanswerable questions the evidence cannot tell apart (area under the ROC
# curve below this) is one the model cannot read: no threshold helps there, so it neither shapes the fit nor
# limits the threshold, and the table says so.
MIN_AUC = 0.65


def collect(bot: Bot, set_name: str, cases, negatives: str | None = None, k: int = 5) -> list[dict]:
    """Evidence rows for the cases; with ``negatives``, also each case against the corpus without its own article."""
    rows = []
    for case in cases:
        question = bot.analyse(case.question)
        pool = bot._retriever.search(question, POOL if negatives else k)
        sides = [(set_name, not case.unanswerable, pool[:k])]
        if negatives:
            others = [p for p in pool if p.source != case.source][:k]
            # Without its article, a name only that article holds is unknown to the corpus.
            unknown = tuple(word for word in question.names if not known_without(bot, word, case.source))
            sides.append((negatives, False, [p.model_copy(update={"rank": rank}) for rank, p in enumerate(others, start=1)], unknown))
        for name, answerable, passages, *unknown in sides:
            asked = question.model_copy(update={"unknown_names": unknown[0]}) if unknown else question
            ranked = answerer.score_sentences(asked.weights, passages)
            rows.append({
                "set": name, "id": case.id, "question": case.question, "answerable": answerable,
                "features": answerer.evidence(asked, passages, ranked) if ranked else None,
            })
    return rows


def known_without(bot: Bot, word: str, source: str) -> bool:
    """Does a document other than ``source`` hold the word (or a bridge translate it)?"""
    retriever = bot._retriever
    own = set(retriever.stored.ids_of([source]))
    for term in analyze_query(word):
        found = retriever.stored.postings(term)
        if found is not None and any(int(position) not in own for position in found[0]):
            return True
    return retriever.bridge is not None and retriever.bridge.translates(word)


def index(corpus: Path, work: Path, model: str | None) -> Bot:
    extra = {"model": model} if model else {}
    settings = Settings.load(corpus_dir=corpus, index_dir=work / corpus.parent.name, **extra)
    Bot.index(settings)
    return Bot.load(settings)


def gather(args) -> list[dict]:
    rows: list[dict] = []
    started = time.perf_counter()
    seeds = index(ROOT / "corpus", args.work, args.model)
    golden = load_golden(GOLDEN / "seeds.jsonl")
    rows += collect(seeds, "seeds", [c for c in golden if not c.unanswerable])
    rows += collect(seeds, "seeds-unanswerable", [c for c in golden if c.unanswerable])
    rows += collect(seeds, "seeds-offtopic", load_golden(GOLDEN / "unanswerable-offtopic.jsonl"))
    rows += collect(seeds, "seeds-nearmiss", load_golden(GOLDEN / "unanswerable-nearmiss.jsonl"))
    print(f"seeds done ({time.perf_counter() - started:.0f}s)", file=sys.stderr)
    if args.xquad:
        for task in sorted(Path(args.xquad).glob("xquad-*")):
            bot = index(task / "corpus", args.work, args.model)
            cases = load_golden(task / "questions.jsonl")[: args.limit or None]
            rows += collect(bot, task.name, cases, negatives=f"{task.name}-negative")
            print(f"{task.name} done ({time.perf_counter() - started:.0f}s)", file=sys.stderr)
    return rows


def matrix(rows: list[dict]) -> np.ndarray:
    return np.array([[row["features"][name] for name in FEATURES] for row in rows], dtype=np.float64)


def fit(rows: list[dict]) -> tuple[dict[str, float], float]:
    """Logistic weights on all sets pooled; every set weighs the same, its two sides balanced."""
    from sklearn.linear_model import LogisticRegression

    usable = [row for row in rows if row["features"] is not None]
    groups: dict[tuple[str, bool], int] = {}
    for row in usable:
        key = (family(row["set"]), row["answerable"])
        groups[key] = groups.get(key, 0) + 1
    weights = np.array([1.0 / groups[(family(row["set"]), row["answerable"])] for row in usable])
    model = LogisticRegression(C=10.0, max_iter=5000)
    model.fit(matrix(usable), [row["answerable"] for row in usable], sample_weight=weights * len(usable) / weights.sum())
    return dict(zip(FEATURES, (round(float(w), 4) for w in model.coef_[0]))), round(float(model.intercept_[0]), 4)


def family(set_name: str) -> str:
    """The collection a set belongs to: the seeds' four sets are one, each XQuAD task another."""
    return "seeds" if set_name.startswith("seeds") else set_name.removesuffix("-negative")


def rates(rows: list[dict], calibration: Calibration, threshold: float) -> dict[str, float]:
    """Per set: the share abstained on (the abstain rate on unanswerable sets, false abstentions on answerable ones)."""
    by_set: dict[str, list[bool]] = {}
    for row in rows:
        sure = 0.0 if row["features"] is None else answerer.confidence(row["features"], calibration)
        by_set.setdefault(row["set"], []).append(sure < threshold)
    return {name: sum(flags) / len(flags) for name, flags in by_set.items()}


def separable(rows: list[dict], calibration: Calibration) -> dict[str, float]:
    """Per collection, how well the calibrated confidence tells answerable from unanswerable (ROC AUC)."""
    from sklearn.metrics import roc_auc_score

    scores: dict[str, tuple[list[bool], list[float]]] = {}
    for row in rows:
        sure = 0.0 if row["features"] is None else answerer.confidence(row["features"], calibration)
        labels, values = scores.setdefault(family(row["set"]), ([], []))
        labels.append(row["answerable"])
        values.append(sure)
    return {name: round(float(roc_auc_score(labels, values)), 3) for name, (labels, values) in scores.items() if len(set(labels)) == 2}


def choose(rows: list[dict], calibration: Calibration, max_false: float, unreadable: set[str] = frozenset()) -> tuple[float, list[tuple[float, dict]]]:
    """The highest threshold under which no answerable set (of a readable collection) is refused more than ``max_false``."""
    answerable = {row["set"] for row in rows if row["answerable"] and family(row["set"]) not in unreadable}
    curve = []
    chosen = 0.0
    for threshold in np.round(np.arange(0.0, 1.0001, 0.01), 2):
        table = rates(rows, calibration, float(threshold))
        curve.append((float(threshold), table))
        if all(table[name] <= max_false for name in answerable):
            chosen = float(threshold)
    return chosen, curve


def print_table(rows, calibration, thresholds, label) -> None:
    sets = sorted({row["set"] for row in rows}, key=lambda s: (family(s), s))
    kinds = {row["set"]: row["answerable"] for row in rows}
    sizes = {name: sum(1 for row in rows if row["set"] == name) for name in sets}
    print(f"\n### {label}\n")
    print("| set | n | kind | " + " | ".join(f"t={t:.2f}" for t in thresholds) + " |")
    print("|---|---|---|" + "---|" * len(thresholds))
    tables = [rates(rows, calibration, t) for t in thresholds]
    for name in sets:
        kind = "false abstain" if kinds[name] else "abstain"
        print(f"| {name} | {sizes[name]} | {kind} | " + " | ".join(f"{table[name]:.3f}" for table in tables) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--xquad", default=str(ROOT.parent / "shared" / "bench" / "xquad"), help="folder of XQuAD tasks ('' for seeds only)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/qa-abstention"), help="where the indexes are built")
    parser.add_argument("--model", default=None, help="embedding model [default: the settings' default]")
    parser.add_argument("--limit", type=int, default=0, help="questions per XQuAD task (0: all)")
    parser.add_argument("--rows", type=Path, default=None, help="reuse (or save) the collected evidence in this JSONL file")
    parser.add_argument("--max-false-abstain", type=float, default=0.03)
    parser.add_argument("--write", action="store_true", help=f"store the fitted calibration in {CALIBRATION_FILE.name}")
    args = parser.parse_args()
    if args.xquad and not Path(args.xquad).is_dir():
        parser.error(f"no XQuAD folder at {args.xquad} (pass --xquad DIR, or '' for the seeds only)")

    if args.rows and args.rows.is_file():
        rows = [json.loads(line) for line in args.rows.read_text(encoding="utf-8").splitlines()]
    else:
        rows = gather(args)
        if args.rows:
            args.rows.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    model = args.model or Settings.model_fields["model"].default
    weights, bias = fit(rows)
    auc = separable(rows, Calibration(model=model, weights=weights, bias=bias, threshold=0.5))
    unreadable = {name for name, value in auc.items() if value < MIN_AUC}
    if unreadable:
        weights, bias = fit([row for row in rows if family(row["set"]) not in unreadable])
    fitted = Calibration(model=model, weights=weights, bias=bias, threshold=0.5,
                         fitted_on={name: sum(1 for r in rows if r["set"] == name) for name in sorted({r["set"] for r in rows})
                                    if family(name) not in unreadable})
    print(f"ROC AUC per collection: {auc}; left out as unreadable (AUC < {MIN_AUC}): {sorted(unreadable) or 'none'}")
    threshold, curve = choose(rows, fitted, args.max_false_abstain, unreadable)
    fitted = fitted.model_copy(update={"threshold": threshold})
    print(f"ROC AUC after the fit: {separable(rows, fitted)}")
    print(f"weights {weights}, bias {bias}; chosen threshold {threshold} (no readable answerable set refused over {args.max_false_abstain})")
    near = sorted({max(0.0, threshold - 0.1), max(0.0, threshold - 0.05), threshold, min(1.0, threshold + 0.05), min(1.0, threshold + 0.1)})
    print_table(rows, fitted, near, "after: calibrated confidence, thresholds around the chosen default")
    previous = Calibration(model="before", weights={"unknown": -100.0}, bias=50.0, threshold=0.5)
    print_table(rows, previous, [0.5], "before: abstain only when the question names something no document holds")
    if args.write:
        CALIBRATION_FILE.write_text(fitted.model_dump_json(indent=2) + "\n", encoding="utf-8")
        print(f"wrote {CALIBRATION_FILE}")


if __name__ == "__main__":
    main()
