from __future__ import annotations

import pytest

from qa.errors import QAError
from qa.evaluate import GoldenCase, answer_matches, first_hit_rank, load_golden, misses, retrieval_metrics, score_case
from qa.models import Answer, Passage


def passage(rank: int, source: str = "a.txt", lines: tuple[int, int] = (1, 1)) -> Passage:
    return Passage(rank=rank, source=source, line_start=lines[0], line_end=lines[1], char_start=0, char_end=1, text="x", score=1.0)


CASE = GoldenCase(id="c", question="q?", source="a.txt", lines=[5], answer_any=["LOI"])


def test_first_hit_needs_same_file_and_overlapping_lines():
    assert first_hit_rank([passage(1, "b.txt", (5, 5)), passage(2, "a.txt", (1, 4)), passage(3, "a.txt", (4, 6))], CASE) == 3
    assert first_hit_rank([passage(1, "a.txt", (6, 9))], CASE) is None


def test_metrics():
    answer = Answer(question="q?", answer="the LOI [1]", abstained=False, citations=[], passages=[passage(2, "a.txt", (5, 5))])
    miss = Answer(question="q?", answer="nothing", abstained=False, citations=[], passages=[passage(1, "b.txt")])
    results = [score_case(CASE, answer, "ko"), score_case(CASE, miss, "ko")]
    metrics = retrieval_metrics(results)
    assert metrics == {"n": 2, "hit@1": 0.0, "hit@5": 0.5, "mrr@10": 0.25, "answer_match": 0.5, "false_abstain": 0.0}
    assert [r.id for r in misses(results)] == ["c"]


def test_abstained_answer_never_matches():
    answer = Answer(question="q?", answer="LOI", abstained=True, citations=[], passages=[])
    assert not answer_matches(answer, CASE)


def test_golden_file_errors_name_the_line(tmp_path):
    golden = tmp_path / "g.jsonl"
    golden.write_text('{"id": "a", "question": "q", "unanswerable": true}\nnot json\n')
    with pytest.raises(QAError, match="g.jsonl:2"):
        load_golden(golden)
    with pytest.raises(QAError, match="not found"):
        load_golden(tmp_path / "missing.jsonl")
