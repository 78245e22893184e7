"""The question log: appends from many threads, votes, search, and the golden export."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from qa.errors import QAError
from qa.faces.feedback import Vote, golden_candidates as feedback_candidates
from qa.models import Answer, Citation
from qa.questionlog import QuestionLog, golden_candidates


def answer(question: str, text: str = "It was signed in Washington. [1]") -> Answer:
    citation = Citation(source="a.txt", line_start=2, line_end=3, char_start=0, char_end=4, quote="Washington")
    return Answer(question=question, answer=text, abstained=False, citations=[citation], passages=[])


def test_asked_logs_the_answer_with_who_history_and_latency(tmp_path: Path) -> None:
    log = QuestionLog(tmp_path / "q.sqlite")
    result = log.asked("slack", lambda q, **options: answer(q), "Where was it signed?", who="U1", history=["What did NIST sign?"], entry_id="e1")
    assert result.question == "Where was it signed?"
    [entry] = log.entries()
    assert (entry.id, entry.face, entry.who, entry.history, entry.abstained, entry.mode) == ("e1", "slack", "U1", ["What did NIST sign?"], False, "extractive")
    assert entry.citations[0].label == "a.txt:2-3" and entry.latency_ms >= 0 and entry.time.tzinfo is not None
    assert sqlite3.connect(tmp_path / "q.sqlite").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_failed_question_is_not_logged(tmp_path: Path) -> None:
    log = QuestionLog(tmp_path / "q.sqlite")

    def failing(question: str) -> Answer:
        raise QAError("the question is empty")

    with pytest.raises(QAError):
        log.asked("cli", failing, " ")
    log.record("cli", answer("kept"), 0.1)
    assert [e.question for e in log.entries()] == ["kept"]


def test_search_face_limit_and_latest_first(tmp_path: Path) -> None:
    log = QuestionLog(tmp_path / "q.sqlite")
    for number, face in enumerate(["cli", "http", "slack", "chat"]):
        log.record(face, answer(f"Question {number} about 100%_done"), 0.01)
    assert [e.question for e in log.entries(limit=2)] == ["Question 3 about 100%_done", "Question 2 about 100%_done"]
    assert [e.face for e in log.entries(face="http")] == ["http"]
    assert len(log.entries("question 1")) == 1  # case-insensitive
    assert len(log.entries("100%_")) == 4 and log.entries("100_%") == []  # % and _ are literal
    assert len(log.entries("washington")) == 4  # answers are searched too


def test_concurrent_appends_from_many_threads(tmp_path: Path) -> None:
    log = QuestionLog(tmp_path / "q.sqlite")

    def append(worker: int) -> None:
        for number in range(25):
            log.record("http", answer(f"q{worker}-{number}"), 0.0)

    workers = [threading.Thread(target=append, args=(w,)) for w in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(log.entries(limit=None)) == 200


def test_threads_that_open_a_new_log_together_lose_nothing(tmp_path: Path) -> None:
    """Turning on WAL is where SQLite says "locked" without waiting; repeated, since the race is narrow."""
    for trial in range(150):
        log = QuestionLog(tmp_path / f"{trial}.sqlite")
        workers = [threading.Thread(target=log.record, args=("http", answer(f"q{w}"), 0.0)) for w in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert len(log.entries(limit=None)) == 8, f"trial {trial}"


def test_votes_count_and_export_like_feedback(tmp_path: Path) -> None:
    log = QuestionLog(tmp_path / "q.sqlite")
    first = log.record("slack", answer("Where was it signed?"), 0.1, history=["What did NIST sign?"])
    second = log.record("http", answer("Where was it signed?"), 0.1, history=["What did NIST sign?"])
    good = log.record("cli", answer("Who signed?"), 0.1)
    log.vote(first, "down")
    log.vote(second, "down")
    log.vote(good, "up")
    log.vote("unknown", "down")
    [candidate] = golden_candidates(log.entries(limit=None))
    assert candidate.question == "Where was it signed?" and candidate.history == ["What did NIST sign?"]
    assert candidate.rejected.downvotes == 2 and candidate.rejected.citations == ["a.txt:2-3"] and candidate.source is None
    vote = Vote.of("down", answer("Where was it signed?"), ["What did NIST sign?"])
    assert feedback_candidates([vote])[0].id == candidate.id  # the same case from either export
    assert log.resolve(good[:8]) == good
    with pytest.raises(QAError, match="no entry"):
        log.resolve("zzzz")


def test_off_keeps_nothing(tmp_path: Path) -> None:
    log = QuestionLog(tmp_path / "q.sqlite", enabled=False)
    log.asked("cli", lambda q: answer(q), "q")
    log.vote("x", "up")
    assert not (tmp_path / "q.sqlite").exists()
    with pytest.raises(QAError, match="no question log"):
        log.entries()


def test_an_unwritable_log_warns_and_the_question_is_still_answered(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "file").write_text("")
    log = QuestionLog(tmp_path / "file" / "q.sqlite")  # a folder that cannot be made
    caplog.set_level(logging.WARNING, logger="qa.questionlog")
    assert log.asked("cli", lambda q: answer(q), "q").question == "q"
    assert "question not logged" in caplog.text
