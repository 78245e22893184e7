"""The shipped calibration: trees read as scikit-learn reads them, a file that loads, and its model's evidence."""

from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest

from qa.stages.answer import evidence, model_evidence
from qa.stages.calibration import CALIBRATION_FILE, Calibration, Node, default_calibration

from conftest import REPO


def _abstention_benchmark():
    spec = importlib.util.spec_from_file_location("abstention_benchmark", REPO / "benchmarks" / "abstention.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_exported_trees_give_scikit_learns_probabilities():
    from sklearn.ensemble import HistGradientBoostingClassifier

    benchmark = _abstention_benchmark()
    rng = np.random.default_rng(0)
    features = rng.normal(size=(600, len(benchmark.FEATURES)))
    labels = features[:, 0] + features[:, 10] * features[:, 4] + rng.normal(scale=0.5, size=600) > 0
    booster = HistGradientBoostingClassifier(max_depth=3, max_iter=40, random_state=0).fit(features, labels)
    calibration = benchmark.exported(booster, "m")
    ours = [calibration.confidence(dict(zip(benchmark.FEATURES, row))) for row in features[:100]]
    assert np.allclose(ours, booster.predict_proba(features[:100])[:, 1], atol=1e-5)


def test_a_tree_walks_left_at_or_under_its_threshold():
    tree = [Node(feature="x", threshold=1.0, left=1, right=2), Node(value=-2.0), Node(value=2.0)]
    calibration = Calibration(model="m", bias=0.5, trees=[tree], threshold=0.5)
    assert calibration.confidence({"x": 1.0}) == pytest.approx(1 / (1 + math.exp(1.5)))
    assert calibration.confidence({"x": 1.01}) == pytest.approx(1 / (1 + math.exp(-2.5)))
    assert Calibration(model="m", bias=0.0, threshold=0.5).confidence({}) == 0.5


def test_the_shipped_file_round_trips_and_reads_every_feature_evidence_gives():
    calibration = default_calibration()
    assert Calibration.model_validate_json(calibration.dump()) == calibration
    assert json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))["model"] == calibration.model
    used = {node.feature for tree in calibration.trees for node in tree if node.feature}
    from qa.models import Passage
    from qa.stages.analyse import analyse
    from qa.stages.answer import score_sentences

    question = analyse("When was the letter signed?")
    passages = [Passage(rank=1, source="a.txt", line_start=1, line_end=1, char_start=0, char_end=30, text="The letter was signed in 2022.", score=0.5)]
    given = evidence(question, passages, score_sentences(question.weights, passages))
    assert used <= set(given) and set(model_evidence(None)) <= set(given)
    assert calibration.scale_prior is not None and 0 < calibration.threshold < 0.5
