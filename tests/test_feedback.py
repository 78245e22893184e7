"""Votes in the log, and 👎 ones out as golden-file candidates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa.faces.cli import app
from qa.errors import QAError
from qa.evaluate import GoldenCase
from qa.faces.feedback import FeedbackLog, Vote, golden_candidates
from qa.models import Answer, Citation

CITATION = Citation(source="002_7257b5aa37c3b2f3.txt", line_start=18, line_end=18, char_start=226, char_end=310, quote="협력의향서(LOI)")


def answer(question: str) -> Answer:
    return Answer(question=question, answer="협력의향서(LOI) [1]", abstained=False, citations=[CITATION], passages=[])


def test_log_round_trips_votes(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "deep" / "feedback.jsonl")
    up = Vote.of("up", answer("What did NIST sign with Korea?"), [], user="U1", channel="C1", thread_ts="1.1")
    down = Vote.of("down", answer("Where was it signed?"), ["What did NIST sign with Korea?"])
    log.append(up)
    log.append(down)
    assert log.read() == [up, down]
    assert json.loads((tmp_path / "deep" / "feedback.jsonl").read_text().splitlines()[0])["vote"] == "up"


def test_missing_or_broken_log_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(QAError, match="no feedback log"):
        FeedbackLog(tmp_path / "none.jsonl").read()
    (tmp_path / "bad.jsonl").write_text("{}\n")
    with pytest.raises(QAError, match="bad.jsonl:1: not a vote"):
        FeedbackLog(tmp_path / "bad.jsonl").read()


def test_candidates_are_the_down_votes_once_each_with_ids_stable() -> None:
    votes = [
        Vote.of("down", answer("Where was it signed?"), ["What did NIST sign with Korea?"]),
        Vote.of("up", answer("What did NIST sign with Korea?"), []),
        Vote.of("down", answer("Where was it signed?"), ["What did NIST sign with Korea?"]),
        Vote.of("down", answer("Where was it signed?"), []),
    ]
    candidates = golden_candidates(votes)
    assert [c.question for c in candidates] == ["Where was it signed?", "Where was it signed?"]
    assert candidates[0].history == ["What did NIST sign with Korea?"] and candidates[0].rejected.downvotes == 2
    assert candidates[0].rejected.citations == ["002_7257b5aa37c3b2f3.txt:18"]
    assert candidates[0].source is None and candidates[0].lines == [] and candidates[0].answer_any == []
    assert candidates[0].id != candidates[1].id and candidates[0].id == golden_candidates(votes[:1])[0].id


def test_export_writes_golden_lines_a_reviewer_completes(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "feedback.jsonl")
    log.append(Vote.of("down", answer("What did NIST sign with Korea?"), []))
    out = tmp_path / "candidates.jsonl"
    result = CliRunner().invoke(app, ["feedback", "export", "--log", str(log.path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    [line] = out.read_text(encoding="utf-8").splitlines()
    case = json.loads(line)
    assert {"id", "question", "source", "lines", "answer_any"} <= set(case)
    with pytest.raises(ValueError, match="needs 'source' and 'lines'"):
        GoldenCase.model_validate(case)
    reviewed = GoldenCase.model_validate(case | {"source": "002_7257b5aa37c3b2f3.txt", "lines": [22], "answer_any": ["LOI"]})
    assert reviewed.question == "What did NIST sign with Korea?"


def test_export_without_a_log_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["feedback", "export", "--log", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 1 and "no feedback log" in result.output
