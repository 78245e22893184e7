"""The abstention calibration: logistic weights over ``answer.evidence`` and the default threshold.

They are not written by hand: ``benchmarks/abstention.py --write`` fits them on
the whole answerable and unanswerable sets (the seeds golden files and every
XQuAD dev task, with cross-article negatives) and stores them in
``calibration.json`` beside this module, with the model they were fitted for.
Re-run it when the model, the retriever or the evidence changes.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from pydantic import BaseModel, Field

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


class Calibration(BaseModel):
    model: str = Field(description="The embedding model the weights were fitted with.")
    weights: dict[str, float]
    bias: float
    threshold: float = Field(description="Default confidence under which the bot abstains (setting abstain_below).")
    fitted_on: dict[str, int] = Field(default_factory=dict, description="Questions per set the fit saw.")


@functools.lru_cache(maxsize=1)
def default_calibration() -> Calibration:
    return Calibration.model_validate_json(CALIBRATION_FILE.read_text(encoding="utf-8"))
