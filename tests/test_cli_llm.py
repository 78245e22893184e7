"""The CLI end to end on the seed corpus: the multi-turn golden file, and streamed LLM answers in ``qa ask``."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from qa.faces.cli import app

from conftest import CORPUS, REPO, FakeLLM, Scripted

runner = CliRunner()


def test_multiturn_golden_file_is_answered_as_conversations(index_dir: Path) -> None:
    golden = REPO / "tests" / "golden" / "multiturn.jsonl"
    result = runner.invoke(app, ["eval", str(golden), "--json", "--corpus", str(CORPUS), "--index-dir", str(index_dir)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)["summary"]
    assert summary["n"] == 10 and summary["hit@5"] >= 0.7 and summary["answer_match"] >= 0.4


def test_ask_streams_the_llm_answer_and_cites(index_dir: Path, fake_llm: FakeLLM, monkeypatch) -> None:
    monkeypatch.setenv("QA_LLM_BASE_URL", fake_llm.url)
    monkeypatch.setenv("QA_LLM_MODEL", "m")
    fake_llm.reply = lambda request: Scripted("A letter of intent [1][9].")
    result = runner.invoke(app, ["ask", "What did NIST sign with Korea?", "--corpus", str(CORPUS), "--index-dir", str(index_dir)])
    assert result.exit_code == 0, result.output
    assert "A letter of intent [1]." in result.output and "[9]" not in result.output
    assert "[1] 002_7257b5aa37c3b2f3.txt:" in result.output
    assert fake_llm.requests[0]["stream"] is True


def test_no_llm_skips_the_model(index_dir: Path, fake_llm: FakeLLM, monkeypatch) -> None:
    monkeypatch.setenv("QA_LLM_BASE_URL", fake_llm.url)
    monkeypatch.setenv("QA_LLM_MODEL", "m")
    result = runner.invoke(app, ["ask", "What did NIST sign with Korea?", "--no-llm", "--json", "--corpus", str(CORPUS), "--index-dir", str(index_dir)])
    assert result.exit_code == 0 and json.loads(result.output)["mode"] == "extractive"
    assert fake_llm.requests == []


def test_llm_without_a_model_is_one_line_error(index_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("QA_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    result = runner.invoke(app, ["ask", "What did NIST sign with Korea?", "--index-dir", str(index_dir)])
    assert result.exit_code == 1 and "error: llm_base_url is set but llm_model is not" in result.output
    assert "Traceback" not in result.output


def test_llm_answers_in_the_questions_language_and_its_quotes_keep_their_readings(index_dir: Path, fake_llm: FakeLLM, monkeypatch) -> None:
    monkeypatch.setenv("QA_LLM_BASE_URL", fake_llm.url)
    monkeypatch.setenv("QA_LLM_MODEL", "m")
    monkeypatch.setenv("QA_ABSTAIN_BELOW", "0")
    fake_llm.reply = lambda request: Scripted("NIST hat mit KIAT eine Absichtserklärung (LOI) unterzeichnet [1].")
    question = "Was hat das NIST mit der koreanischen KIAT unterzeichnet?"
    result = runner.invoke(app, ["ask", question, "--json", "--corpus", str(CORPUS), "--index-dir", str(index_dir)])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert "German" in fake_llm.requests[0]["messages"][-1]["content"]  # the model is asked for the question's language
    assert answer["mode"] == "llm" and answer["answer"] == "NIST hat mit KIAT eine Absichtserklärung (LOI) unterzeichnet [1]."
    assert answer["short_answer"] is None
    (citation,) = answer["citations"]
    assert citation["quote"] and (citation["reading"] is not None) == any("\uac00" <= c <= "\ud7a3" for c in citation["quote"])


def test_an_abstention_exits_3_and_is_never_sent_to_the_llm(index_dir: Path, fake_llm: FakeLLM, monkeypatch) -> None:
    monkeypatch.setenv("QA_LLM_BASE_URL", fake_llm.url)
    monkeypatch.setenv("QA_LLM_MODEL", "m")
    monkeypatch.setenv("QA_ABSTAIN_BELOW", "1")  # nothing is ever sure enough
    result = runner.invoke(app, ["ask", "What did NIST sign with Korea?", "--json", "--corpus", str(CORPUS), "--index-dir", str(index_dir)])
    assert result.exit_code == 3, result.output
    answer = json.loads(result.stdout)
    assert answer["abstained"] is True and answer["reason"] and answer["passages"] and answer["citations"] == []
    assert fake_llm.requests == []
