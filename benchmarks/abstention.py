"""Abstention, calibrated and measured on whole sets of answerable and unanswerable questions.

    .venv/bin/python benchmarks/abstention.py                       # collect, fit, print the table
    .venv/bin/python benchmarks/abstention.py --write               # ... and store qa/stages/calibration.json
    .venv/bin/python benchmarks/abstention.py --xquad ""            # seeds only

Sets: the seeds golden file (answerable, plus its unanswerable cases), the
hand-written unanswerable files (off-topic and near misses about the seed
collection's own actors), Korean questions over the Korean seed, Spanish and
Russian questions over their XQuAD articles (``tests/golden``, with negatives
as below), and every XQuAD dev task, where each question is
asked twice: against its task's whole corpus (answerable), and against the
corpus without its own article (a cross-article negative). The negative is
retrieved from the same index with the article's passages left out, so the
lexical statistics still count that article: a slight approximation of an
index built without it, which the benchmark does not build 24 times a task.

For every question it records the evidence that ``qa.stages.answer.evidence``
computes, fits boosted trees on all sets pooled (each set weighted equally,
answerable and unanswerable balanced within it), and sweeps the confidence
threshold. The default threshold is the highest one at which no set wrongly
refuses more than ``--max-false-abstain`` of its answerable questions; the
tables show every set's rates around it. The threshold is chosen on
held-out confidences: each collection scored by trees fitted on all the
others, which is what a collection the calibration never saw can expect.
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
from qa.stages.calibration import CALIBRATION_FILE, Calibration, Node
from qa.stages.signals import ScalePrior, Signals, shrink

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
FEATURES = (
    "score", "dense", "gap", "dense_gap", "coverage", "entities", "sentence", "unknown", "typed", "read",
    "dense_z", "sentence_dense", "sentence_z",
)
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
        pool = answerer.first_stage(bot._retriever.search(question, POOL if negatives else k))  # what abstention weighs
        sides = [(set_name, not case.unanswerable, pool[:k])]
        if negatives:
            others = [p for p in pool if p.source != case.source][:k]
            # Without its article, a name only that article holds is unknown to the corpus.
            unknown = tuple(word for word in question.names if not known_without(bot, word, case.source))
            sides.append((negatives, False, [p.model_copy(update={"rank": rank}) for rank, p in enumerate(others, start=1)], unknown))
        for name, answerable, passages, *unknown in sides:
            asked = question.model_copy(update={"unknown_names": unknown[0]}) if unknown else question
            ranked = answerer.score_sentences(asked.weights, passages)
            signals = bot.signals(asked, passages, own_scale=True) if ranked else None
            rows.append({
                "set": name, "id": case.id, "question": case.question, "answerable": answerable,
                "features": answerer.evidence(asked, passages, ranked) if ranked else None,
                "signals": signals.model_dump() if signals else None,
            })
    return rows


def fit_prior(rows: list[dict], weight: float) -> ScalePrior:
    """The model's typical scale: the mean of the questions' own means, and their spreads' root mean square.

    Read from the XQuAD collections (a few hundred chunks each), where a
    question's own estimate is sound; the seeds' collection is the kind the
    prior is for.
    """
    scales = [row["signals"]["scale"] for row in rows if row["signals"] and not row["set"].startswith("seeds")]
    scales = scales or [row["signals"]["scale"] for row in rows if row["signals"]]
    return ScalePrior(
        mean=round(float(np.mean([s["mean"] for s in scales])), 4),
        std=round(float(np.sqrt(np.mean([s["std"] ** 2 for s in scales]))), 4),
        weight=weight,
    )


def with_prior(rows: list[dict], prior: ScalePrior) -> list[dict]:
    """Rows whose model evidence reads each question's scale shrunk towards the prior, as the bot does."""
    finished = []
    for row in rows:
        features = row["features"]
        if features is not None:
            raw = Signals.model_validate(row["signals"]) if row["signals"] else None
            if raw is not None:
                raw = raw.model_copy(update={"scale": shrink(raw.scale, prior)})
            features = {**features, **answerer.model_evidence(raw)}
        finished.append({**row, "features": features})
    return finished


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
    rows += collect(seeds, "seeds-korean", load_golden(GOLDEN / "korean.jsonl"))
    # Questions in the documents' own language, with their cross-article negatives: XQuAD's are all English.
    articles = index(GOLDEN / "xquad", args.work, args.model)
    for language in ("es", "ru"):
        name = f"xquad-{language}-{language}"
        rows += collect(articles, name, load_golden(GOLDEN / f"xquad-{language}.jsonl"), negatives=f"{name}-negative")
    print(f"seeds and own-language sets done ({time.perf_counter() - started:.0f}s)", file=sys.stderr)
    if args.xquad:
        for task in sorted(Path(args.xquad).glob("xquad-*")):
            bot = index(task / "corpus", args.work, args.model)
            cases = load_golden(task / "questions.jsonl")[: args.limit or None]
            rows += collect(bot, task.name, cases, negatives=f"{task.name}-negative")
            print(f"{task.name} done ({time.perf_counter() - started:.0f}s)", file=sys.stderr)
    return rows


def matrix(rows: list[dict]) -> np.ndarray:
    return np.array([[row["features"][name] for name in FEATURES] for row in rows], dtype=np.float64)


# The direction each piece of evidence may move the confidence (1 up, -1 down, 0 either): more of the question's
# terms, names and model agreement never make an answer less likely. Raw cosines and ``read`` are left free: their
# meaning shifts with the question's scale and the passage's language, which the trees read from the other features.
MONOTONIC = {
    "score": 1, "dense": 0, "gap": 1, "dense_gap": 1, "coverage": 1, "entities": 1, "sentence": 1, "unknown": -1,
    "typed": 1, "read": 0, "dense_z": 1, "sentence_dense": 0, "sentence_z": 1,
}
# Shallow trees, many leaves' worth of questions: measured with each collection left out of the fit in turn, depth 2
# generalised best (README, "Abstaining").
TREES = {"max_depth": 2, "max_iter": 300, "learning_rate": 0.05, "min_samples_leaf": 50}


def fit(rows: list[dict], model: str) -> Calibration:
    """Boosted trees on all sets pooled; every collection weighs the same, its two sides balanced."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    usable = [row for row in rows if row["features"] is not None]
    groups: dict[tuple[str, bool], int] = {}
    for row in usable:
        key = (family(row["set"]), row["answerable"])
        groups[key] = groups.get(key, 0) + 1
    weights = np.array([1.0 / groups[(family(row["set"]), row["answerable"])] for row in usable])
    booster = HistGradientBoostingClassifier(**TREES, monotonic_cst=[MONOTONIC[name] for name in FEATURES], random_state=0)
    booster.fit(matrix(usable), [row["answerable"] for row in usable], sample_weight=weights * len(usable) / weights.sum())
    return exported(booster, model)


def exported(booster, model: str) -> Calibration:
    """The fitted trees as plain data (``Calibration.trees``), read the way scikit-learn reads them."""
    trees = []
    for (predictor,) in booster._predictors:
        trees.append([
            Node(value=round(float(node["value"]), 6)) if node["is_leaf"] else
            Node(feature=FEATURES[int(node["feature_idx"])], threshold=float(node["num_threshold"]), left=int(node["left"]), right=int(node["right"]))
            for node in predictor.nodes
        ])
    bias = round(float(np.ravel(booster._baseline_prediction)[0]), 6) + 0.0  # no "-0.0" in the file
    return Calibration(model=model, bias=bias, trees=trees, threshold=0.5)


def family(set_name: str) -> str:
    """The collection a set belongs to: the seeds' four sets are one, each XQuAD task another."""
    return "seeds" if set_name.startswith("seeds") else set_name.removesuffix("-negative")


def scored(rows: list[dict], calibration: Calibration) -> list[dict]:
    """The rows with the calibrated confidence (``sure``) of each."""
    return [{**row, "sure": 0.0 if row["features"] is None else calibration.confidence(row["features"])} for row in rows]


def held_out(rows: list[dict], model: str) -> list[dict]:
    """Every collection's rows scored by trees fitted on all the others."""
    result = []
    for name in sorted({family(row["set"]) for row in rows}):
        calibration = fit([row for row in rows if family(row["set"]) != name], model)
        result += scored([row for row in rows if family(row["set"]) == name], calibration)
    return result


def rates(rows: list[dict], threshold: float) -> dict[str, float]:
    """Per set: the share abstained on (the abstain rate on unanswerable sets, false abstentions on answerable ones)."""
    by_set: dict[str, list[bool]] = {}
    for row in rows:
        by_set.setdefault(row["set"], []).append(row["sure"] < threshold)
    return {name: sum(flags) / len(flags) for name, flags in by_set.items()}


def separable(rows: list[dict]) -> dict[str, float]:
    """Per collection, how well the calibrated confidence tells answerable from unanswerable (ROC AUC)."""
    from sklearn.metrics import roc_auc_score

    scores: dict[str, tuple[list[bool], list[float]]] = {}
    for row in rows:
        labels, values = scores.setdefault(family(row["set"]), ([], []))
        labels.append(row["answerable"])
        values.append(row["sure"])
    return {name: round(float(roc_auc_score(labels, values)), 3) for name, (labels, values) in scores.items() if len(set(labels)) == 2}


def choose(rows: list[dict], max_false: float, unreadable: set[str] = frozenset()) -> float:
    """The highest threshold under which no answerable set (of a readable collection) is refused more than ``max_false``."""
    answerable = {row["set"] for row in rows if row["answerable"] and family(row["set"]) not in unreadable}
    chosen = 0.0
    for threshold in np.round(np.arange(0.0, 1.0001, 0.005), 3):
        table = rates(rows, float(threshold))
        if all(table[name] <= max_false for name in answerable):
            chosen = float(threshold)
    return chosen


def print_table(rows, thresholds, label) -> None:
    sets = sorted({row["set"] for row in rows}, key=lambda s: (family(s), s))
    kinds = {row["set"]: row["answerable"] for row in rows}
    sizes = {name: sum(1 for row in rows if row["set"] == name) for name in sets}
    print(f"\n### {label}\n")
    print("| set | n | kind | " + " | ".join(f"t={t:.3f}" for t in thresholds) + " |")
    print("|---|---|---|" + "---|" * len(thresholds))
    tables = [rates(rows, t) for t in thresholds]
    for name in sets:
        kind = "false abstain" if kinds[name] else "abstain"
        print(f"| {name} | {sizes[name]} | {kind} | " + " | ".join(f"{table[name]:.3f}" for table in tables) + " |")
    auc = separable(rows)
    print("\nROC AUC per collection: " + ", ".join(f"{name} {value}" for name, value in sorted(auc.items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--xquad", default=str(ROOT.parent / "shared" / "bench" / "xquad"), help="folder of XQuAD tasks ('' for seeds only)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/qa-abstention"), help="where the indexes are built")
    parser.add_argument("--model", default=None, help="embedding model [default: the settings' default]")
    parser.add_argument("--limit", type=int, default=0, help="questions per XQuAD task (0: all)")
    parser.add_argument("--rows", type=Path, default=None, help="reuse (or save) the collected evidence in this JSONL file")
    parser.add_argument("--max-false-abstain", type=float, default=0.03)
    parser.add_argument("--prior-weight", type=float, default=50.0, help="chunks the model's typical scale counts as (small collections)")
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
    prior = fit_prior(rows, args.prior_weight)
    print(f"scale prior: {prior}")
    rows = with_prior(rows, prior)
    fitted = fit(rows, model)
    unreadable = {name for name, value in separable(scored(rows, fitted)).items() if value < MIN_AUC}
    if unreadable:
        print(f"left out as unreadable (ROC AUC < {MIN_AUC}): {sorted(unreadable)}")
        fitted = fit([row for row in rows if family(row["set"]) not in unreadable], model)
    # The default threshold is chosen on held-out confidences: a threshold chosen on the fit's own sets refused
    # up to 0.11 of a collection's answerable questions once that collection was left out of the fit.
    others = held_out(rows, model)
    threshold = choose(others, args.max_false_abstain, unreadable)
    fitted = fitted.model_copy(update={
        "threshold": threshold,
        "scale_prior": prior,
        "fitted_on": {name: sum(1 for r in rows if r["set"] == name) for name in sorted({r["set"] for r in rows}) if family(name) not in unreadable},
    })
    print(f"{len(fitted.trees)} trees; chosen threshold {threshold} (no readable answerable set refused over {args.max_false_abstain}, held out)")
    print_table(others, around(threshold), "each collection scored by trees fitted without it")
    print_table(scored(rows, fitted), around(threshold), "the shipped trees, on the sets they were fitted on")
    # Abstain exactly when the question names something no document holds.
    previous = Calibration(model="before", bias=50.0, trees=[[Node(feature="unknown", threshold=0.5, left=1, right=2), Node(), Node(value=-100.0)]], threshold=0.5)
    print_table(scored(rows, previous), [0.5], "before: abstain only when the question names something no document holds")
    if args.write:
        CALIBRATION_FILE.write_text(fitted.dump(), encoding="utf-8")
        print(f"wrote {CALIBRATION_FILE}")


def around(threshold: float) -> list[float]:
    return sorted({round(min(1.0, max(0.0, threshold + step)), 3) for step in (-0.1, -0.05, 0.0, 0.05, 0.1)})


if __name__ == "__main__":
    main()
