"""The abstention calibration: boosted trees over ``answer.evidence``, and the default threshold.

They are not written by hand: ``benchmarks/abstention.py --write`` fits them on
the whole answerable and unanswerable sets (the seeds golden files and every
XQuAD dev task, with cross-article negatives) and stores them in
``calibration.json`` beside this module, with the model they were fitted for.
Re-run it when the model, the retriever or the evidence changes.

Why trees rather than a weighted sum: the evidence interacts (a high cosine
means more when the passage also holds the question's names; a sentence that
holds a date matters only when a date is asked for). Fitted on all collections
but one and measured on the one left out, shallow trees constrained to trust
each piece of evidence in one direction refused 0.67-0.76 of the unanswerable
questions where logistic weights refused 0.15-0.67, at the same false refusals
(see the README). The trees are plain data, read with a few lines of Python: no
learning library at run time.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

from pydantic import BaseModel, Field

from qa.stages.signals import ScalePrior

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


class Node(BaseModel):
    """A split (``feature`` at most ``threshold`` goes to ``left``, else ``right``), or a leaf adding ``value``."""

    feature: str | None = None
    threshold: float = 0.0
    left: int = 0
    right: int = 0
    value: float = 0.0


Tree = list[Node]


class Calibration(BaseModel):
    model: str = Field(description="The embedding model the trees were fitted with.")
    bias: float = Field(description="The log-odds every question starts from.")
    trees: list[Tree] = Field(default_factory=list, description="Each adds its leaf's value to the log-odds.")
    threshold: float = Field(description="Default confidence under which the bot abstains (setting abstain_below).")
    scale_prior: ScalePrior | None = Field(None, description="The model's typical question-to-chunk cosines, for small collections.")
    fitted_on: dict[str, int] = Field(default_factory=dict, description="Questions per set the fit saw.")

    def confidence(self, features: dict[str, float]) -> float:
        """The calibrated probability that the passages answer the question."""
        z = self.bias + sum(leaf(tree, features) for tree in self.trees)
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def dump(self) -> str:
        """JSON with one tree per line, so that a refit reads as a diff of lines rather than of thousands."""
        data = self.model_dump(exclude={"trees"})
        trees = ",\n".join("    " + json.dumps([node.model_dump(exclude_defaults=True) for node in tree], separators=(",", ":")) for tree in self.trees)
        head = json.dumps(data, indent=2)
        return head[:-2] + f',\n  "trees": [\n{trees}\n  ]\n}}\n'


def leaf(tree: Tree, features: dict[str, float]) -> float:
    node = tree[0]
    while node.feature is not None:
        node = tree[node.left if features[node.feature] <= node.threshold else node.right]
    return node.value


@functools.lru_cache(maxsize=1)
def default_calibration() -> Calibration:
    return Calibration.model_validate_json(CALIBRATION_FILE.read_text(encoding="utf-8"))
