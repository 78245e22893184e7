"""👍/👎 votes on answers, and the 👎 ones turned into golden-file candidates.

A vote that says an answer was wrong is the cheapest source of new test
cases: the question is real and the bot is known to fail it. The log keeps
everything a reviewer needs to write the case; the export writes the case as
far as it is known and leaves the rest (where the answer really stands) to
the reviewer, because the bot's own citations are exactly what was voted down.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qa.errors import QAError
from qa.models import Answer, Citation


class Vote(BaseModel):
    """One line of the feedback log."""

    model_config = ConfigDict(frozen=True)

    time: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    vote: Literal["up", "down"]
    question: str
    history: list[str] = Field(default_factory=list, description="Earlier questions of the same thread, oldest first.")
    answer: str
    abstained: bool
    citations: list[Citation]
    user: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    face: Literal["slack", "web"] = Field("slack", description="Where the vote was cast; lines written before this field were Slack's.")

    @classmethod
    def of(cls, vote: Literal["up", "down"], answer: Answer, history: list[str], **where: str | None) -> "Vote":
        return cls(
            vote=vote,
            question=answer.question,
            history=history,
            answer=answer.answer,
            abstained=answer.abstained,
            citations=answer.citations,
            **where,
        )


class Rejected(BaseModel):
    """What the bot said, so the reviewer sees what was voted down."""

    answer: str
    citations: list[str] = Field(description="The rejected citations, as file:lines.")
    downvotes: int


class GoldenCandidate(BaseModel):
    """A golden case as far as a 👎 tells it; ``qa eval`` refuses it until ``source`` and ``lines`` are filled."""

    id: str
    question: str
    source: str | None = None
    lines: list[int] = Field(default_factory=list)
    answer_any: list[str] = Field(default_factory=list)
    history: list[str] = Field(default_factory=list)
    rejected: Rejected


class FeedbackLog:
    """An append-only JSONL file; appends are serialised so concurrent clicks never interleave lines."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def append(self, vote: Vote) -> None:
        line = vote.model_dump_json() + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as log:
                log.write(line)

    def read(self) -> list[Vote]:
        if not self.path.is_file():
            raise QAError(f"no feedback log at {self.path}: votes are written there by the Slack bot and the web page (setting feedback_log)")
        votes = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                votes.append(Vote.model_validate_json(line))
            except ValidationError as err:
                raise QAError(f"{self.path}:{number}: not a vote ({err.errors()[0]['msg']})") from None
        return votes


def golden_candidates(votes: list[Vote]) -> list[GoldenCandidate]:
    """One candidate per 👎 question (and thread history), in the order first voted down."""
    grouped: dict[str, list[Vote]] = {}
    for vote in votes:
        if vote.vote == "down":
            grouped.setdefault(case_id(vote.history, vote.question), []).append(vote)
    candidates = []
    for key, downs in grouped.items():
        latest = downs[-1]
        candidates.append(
            GoldenCandidate(
                id=key,
                question=latest.question,
                history=latest.history,
                rejected=Rejected(
                    answer=latest.answer,
                    citations=[citation.label for citation in latest.citations],
                    downvotes=len(downs),
                ),
            )
        )
    return candidates


def case_id(history: list[str], question: str) -> str:
    """Stable across exports (and the same from the question log), so that re-exporting does not renumber reviewed cases."""
    key = json.dumps([history, question], ensure_ascii=False)
    return "feedback-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]
