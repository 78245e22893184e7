"""The question log: every question every face answered, for admins to read and to mine for test cases.

One SQLite file (stdlib ``sqlite3``) rather than JSONL: the HTTP and Slack
faces answer on many threads at once and votes arrive later and update an
entry in place, which a database does safely (WAL, so readers such as
``qa log`` never block the writers) and an append-only text file does not.
Each thread has its own connection, as sqlite3 wants.

Faces log through ``QuestionLog.asked``, a wrapper around the ``ask`` they
already call; logging never fails a question, it only warns.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from qa.errors import QAError
from qa.faces.feedback import GoldenCandidate, Rejected, case_id
from qa.models import Answer, Citation
from qa.settings import Settings

log = logging.getLogger(__name__)

Face = Literal["cli", "chat", "http", "slack"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS questions (
    id TEXT PRIMARY KEY,
    time TEXT NOT NULL,
    face TEXT NOT NULL,
    who TEXT,
    collection TEXT,
    question TEXT NOT NULL,
    history TEXT NOT NULL,
    answer TEXT NOT NULL,
    citations TEXT NOT NULL,
    abstained INTEGER NOT NULL,
    mode TEXT NOT NULL,
    up INTEGER NOT NULL DEFAULT 0,
    down INTEGER NOT NULL DEFAULT 0,
    latency_ms REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS questions_time ON questions (time);
"""
_BUSY_SECONDS = 10
_COLUMNS = "id, time, face, who, collection, question, history, answer, citations, abstained, mode, up, down, latency_ms"


class Entry(BaseModel):
    """One answered question, as ``qa log --json`` prints it."""

    id: str
    time: datetime
    face: str
    who: str | None = Field(None, description="Slack user id, when the face knows who asked.")
    collection: str | None = Field(None, description="Index folder that answered, where a face serves several.")
    question: str
    history: list[str] = Field(default_factory=list, description="Earlier questions of the same conversation, oldest first.")
    answer: str
    citations: list[Citation]
    abstained: bool
    mode: str
    up: int = 0
    down: int = 0
    latency_ms: float

    @classmethod
    def of_row(cls, row: Sequence[Any]) -> "Entry":
        values = dict(zip(_COLUMNS.split(", "), row))
        values["history"] = json.loads(values["history"])
        values["citations"] = json.loads(values["citations"])
        return cls(**values)


class QuestionLog:
    """Appends answered questions to ``path``; a disabled log takes the same calls and keeps nothing."""

    def __init__(self, path: Path, enabled: bool = True):
        self.path = path
        self.enabled = enabled
        self._local = threading.local()
        self._setup = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> "QuestionLog":
        return cls(settings.question_log, settings.log_questions)

    def asked(
        self,
        face: Face,
        ask: Callable[..., Answer],
        question: str,
        *,
        who: str | None = None,
        history: Iterable[str] = (),
        collection: str | None = None,
        entry_id: str | None = None,
        **options: Any,
    ) -> Answer:
        """``ask(question, **options)``, timed and logged; a question that fails is not logged."""
        history = list(history)
        started = time.perf_counter()
        answer = ask(question, **options)
        self.record(face, answer, time.perf_counter() - started, who=who, history=history, collection=collection, entry_id=entry_id)
        return answer

    def record(
        self,
        face: Face,
        answer: Answer,
        seconds: float,
        *,
        who: str | None = None,
        history: Iterable[str] = (),
        collection: str | None = None,
        entry_id: str | None = None,
    ) -> str:
        """Append one answer; returns its id (the one given, or a new one), which ``vote`` takes."""
        entry_id = entry_id or uuid.uuid4().hex
        if not self.enabled:
            return entry_id
        row = (
            entry_id,
            datetime.now(timezone.utc).isoformat(timespec="seconds"),
            face,
            who,
            collection,
            answer.question,
            json.dumps(list(history), ensure_ascii=False),
            answer.answer,
            json.dumps([c.model_dump(mode="json") for c in answer.citations], ensure_ascii=False),
            int(answer.abstained),
            answer.mode,
            0,
            0,
            round(seconds * 1000, 1),
        )
        self._write(f"INSERT OR REPLACE INTO questions ({_COLUMNS}) VALUES ({', '.join('?' * len(row))})", row)
        return entry_id

    def vote(self, entry_id: str, vote: Literal["up", "down"]) -> None:
        """Count a 👍 or 👎 on a logged answer; an unknown id (logged elsewhere, or the log off) changes nothing."""
        if self.enabled:
            column = "up" if vote == "up" else "down"
            self._write(f"UPDATE questions SET {column} = {column} + 1 WHERE id = ?", (entry_id,))

    def resolve(self, prefix: str) -> str:
        """The full id of the one entry whose id starts with ``prefix`` (``qa log`` shows the first 8 characters)."""
        self._require()
        found = [row[0] for row in self._connection().execute("SELECT id FROM questions WHERE substr(id, 1, ?) = ? LIMIT 2", (len(prefix), prefix))]
        if len(found) != 1:
            raise QAError(f"{'no' if not found else 'more than one'} entry with id {prefix!r} in {self.path}; `qa log` shows the ids")
        return found[0]

    def _require(self) -> None:
        if not self.path.is_file():
            raise QAError(f"no question log at {self.path}: questions are logged there once asked (settings log_questions, question_log)")

    def entries(self, search: str | None = None, face: str | None = None, limit: int | None = 50, voted_down: bool = False) -> list[Entry]:
        """The latest entries first; ``search`` matches the question or the answer, case-insensitively for ASCII."""
        self._require()
        where, arguments = [], []
        if search:
            where.append("(question LIKE ? ESCAPE '\\' OR answer LIKE ? ESCAPE '\\')")
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            arguments += [pattern, pattern]
        if face:
            where.append("face = ?")
            arguments.append(face)
        if voted_down:
            where.append("down > 0")
        query = f"SELECT {_COLUMNS} FROM questions"
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY time DESC, rowid DESC"
        if limit:
            query += f" LIMIT {int(limit)}"
        try:
            return [Entry.of_row(row) for row in self._connection().execute(query, arguments)]
        except sqlite3.Error as error:
            raise QAError(f"cannot read the question log {self.path}: {error}") from None

    def _write(self, statement: str, arguments: Sequence[Any]) -> None:
        try:
            with self._connection() as connection:
                connection.execute(statement, arguments)
        except (sqlite3.Error, OSError) as error:
            log.warning("question not logged in %s: %s", self.path, error)

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=_BUSY_SECONDS)
            with self._setup:
                _switch_to_wal(connection)
                connection.executescript(_SCHEMA)
            self._local.connection = connection
        return connection


def _switch_to_wal(connection: sqlite3.Connection) -> None:
    """Turn on WAL, waiting out other connections: SQLite answers "locked" at once here instead of calling the busy handler."""
    deadline = time.monotonic() + _BUSY_SECONDS
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def golden_candidates(entries: Iterable[Entry]) -> list[GoldenCandidate]:
    """One candidate per 👎-voted question (and history), oldest first, with the same ids as ``qa feedback export``."""
    grouped: dict[str, list[Entry]] = {}
    for entry in sorted(entries, key=lambda e: e.time):
        if entry.down:
            grouped.setdefault(case_id(entry.history, entry.question), []).append(entry)
    return [
        GoldenCandidate(
            id=key,
            question=downs[-1].question,
            history=downs[-1].history,
            rejected=Rejected(
                answer=downs[-1].answer,
                citations=[citation.label for citation in downs[-1].citations],
                downvotes=sum(entry.down for entry in downs),
            ),
        )
        for key, downs in grouped.items()
    ]
