"""``qa chat`` driven in a terminal, on the seed corpus with the real model."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pexpect
from conftest import CORPUS, FakeLLM, Scripted

PROMPT = r"\? "
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def start_chat(index_dir: Path, tmp_path: Path, **env: str) -> pexpect.spawn:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("QA_")},
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "QA_CHAT_HISTORY_FILE": str(tmp_path / "history"),
        "QA_QUESTION_LOG": str(tmp_path / "questions.sqlite"),
        **env,
    }
    child = pexpect.spawn(
        sys.executable,
        ["-m", "qa.faces.cli", "chat", "--corpus", str(CORPUS), "--index-dir", str(index_dir)],
        env=environment,
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 200),
    )
    child.expect("Ctrl-D to leave")
    child.expect(PROMPT)
    return child


def ask(child: pexpect.spawn, line: str) -> str:
    child.sendline(line)
    child.expect(PROMPT)
    return ANSI.sub("", child.before)


def test_a_conversation_with_follow_ups_commands_and_history(index_dir: Path, tmp_path: Path) -> None:
    child = start_chat(index_dir, tmp_path)
    first = ask(child, "What did NIST sign with Korea?")
    assert "협력의향서(LOI)" in first and "[1] 002_7257b5aa37c3b2f3.txt:" in first
    follow_up = ask(child, "Where was it signed?")
    assert "002_7257b5aa37c3b2f3.txt:" in follow_up
    sources = ask(child, "/sources")
    assert "1. 002_7257b5aa37c3b2f3.txt:" in sources and "score" in sources
    assert "/reset" in ask(child, "/help")
    assert "unknown command /nope" in ask(child, "/nope")
    assert "Conversation reset." in ask(child, "/reset")
    assert "002_7257b5aa37c3b2f3.txt:" not in ask(child, "/sources")
    assert "the limit is 2000" in ask(child, "x" * 2001)
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    history = (tmp_path / "history").read_text(encoding="utf-8")
    assert "Where was it signed?" in history
    from qa.questionlog import QuestionLog

    logged = QuestionLog(tmp_path / "questions.sqlite").entries()
    assert [(e.face, e.question, e.history) for e in logged[-2:][::-1]] == [
        ("chat", "What did NIST sign with Korea?", []),
        ("chat", "Where was it signed?", ["What did NIST sign with Korea?"]),
    ]


def test_llm_answers_stream_and_failures_warn_in_one_line(index_dir: Path, tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.reply = lambda request: Scripted("KIAT and NIST signed a letter of intent (협력의향서) [1].")
    child = start_chat(index_dir, tmp_path, QA_LLM_BASE_URL=fake_llm.url, QA_LLM_MODEL="m")
    reply = ask(child, "What did NIST sign with Korea?")
    assert "KIAT and NIST signed a letter of intent (협력의향서) [1]." in reply
    assert "[1] 002_7257b5aa37c3b2f3.txt:" in reply
    assert fake_llm.requests[0]["stream"] is True

    fake_llm.reply = lambda request: Scripted("boom", status=500)
    reply = ask(child, "Where was it signed?")
    assert "warning: the LLM server at" in reply and "HTTP 500: boom; showing the extractive answer" in reply
    assert "[1] 002_7257b5aa37c3b2f3.txt:" in reply and "Traceback" not in reply
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
