"""End to end through the ``qa`` command, on the real seed corpus with the real model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from qa.faces.cli import app
from conftest import CORPUS as SEEDS, HEADLINE, KOREAN

runner = CliRunner()


def qa(*args: str):
    return runner.invoke(app, [str(a) for a in args])


class TestAsk:
    def test_run_headline_json(self, seed_settings):
        result = qa("ask", HEADLINE, "--json", "--index-dir", seed_settings.index_dir, "--corpus", SEEDS)
        assert result.exit_code == 0, result.output
        answer = json.loads(result.stdout)
        assert {"question", "answer", "abstained", "citations", "passages"} <= set(answer)
        assert answer["abstained"] is False
        assert any(p["source"] == KOREAN and p["line_start"] <= 22 <= p["line_end"] for p in answer["passages"][:3])
        assert "LOI" in answer["answer"] or "협력의향서" in answer["answer"]
        assert [p["rank"] for p in answer["passages"]] == list(range(1, len(answer["passages"]) + 1))
        text = (SEEDS / KOREAN).read_text(encoding="utf-8")
        for citation in answer["citations"]:
            assert text[citation["char_start"] : citation["char_end"]] == citation["quote"]
        for passage in answer["passages"]:
            source = (SEEDS / passage["source"]).read_text(encoding="utf-8")
            assert source[passage["char_start"] : passage["char_end"]] == passage["text"]

    def test_run_human_output_lists_citations(self, seed_settings):
        result = qa("ask", HEADLINE, "--index-dir", seed_settings.index_dir)
        assert result.exit_code == 0, result.output
        assert f"[1] {KOREAN}:" in result.stdout
        assert "«" in result.stdout

    def test_run_k_limits_passages(self, seed_settings):
        result = qa("ask", HEADLINE, "--json", "-k", "2", "--index-dir", seed_settings.index_dir)
        assert len(json.loads(result.stdout)["passages"]) == 2

    def test_run_builds_index_on_first_use(self, tmp_path, corpus_copy):
        index_dir = tmp_path / "fresh-index"
        result = qa("ask", HEADLINE, "--json", "--index-dir", index_dir, "--corpus", corpus_copy)
        assert result.exit_code == 0, result.output
        assert (index_dir / "CURRENT").is_file()
        assert "indexing" in result.stderr and json.loads(result.stdout)["passages"]
        again = qa("ask", HEADLINE, "--json", "--index-dir", index_dir, "--corpus", corpus_copy)
        assert "indexing" not in again.stderr

    def test_run_installed_entry_point(self, seed_settings):
        """The console script itself, in a fresh process, as a user runs it."""
        command = [sys.executable, "-m", "qa.faces.cli", "ask", HEADLINE, "--json", "--index-dir", str(seed_settings.index_dir)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["passages"]


class TestBadInput:
    """Each mistake gets one line on stderr and a non-zero exit, never a traceback."""

    def assert_one_line_error(self, result, fragment: str):
        assert result.exit_code != 0
        assert "Traceback" not in result.output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error:") and fragment in lines[0], lines[0]

    def test_run_empty_question(self, seed_settings):
        self.assert_one_line_error(qa("ask", "   ", "--index-dir", seed_settings.index_dir), "empty")

    def test_run_question_too_long(self, seed_settings):
        self.assert_one_line_error(qa("ask", "x" * 2001, "--index-dir", seed_settings.index_dir), "2000")

    def test_run_missing_corpus(self, tmp_path):
        self.assert_one_line_error(qa("index", tmp_path / "nowhere", "--index-dir", tmp_path / "i"), "does not exist")

    def test_run_empty_corpus(self, tmp_path):
        (tmp_path / "empty").mkdir()
        self.assert_one_line_error(qa("index", tmp_path / "empty", "--index-dir", tmp_path / "i"), "has no readable documents")

    def test_run_corrupted_index(self, tmp_path, seed_settings):
        import shutil

        broken = tmp_path / "broken"
        shutil.copytree(seed_settings.index_dir, broken)
        generation = broken / (broken / "CURRENT").read_text().strip()
        (generation / "dense.faiss").write_bytes(b"not a faiss index")
        self.assert_one_line_error(qa("ask", HEADLINE, "--index-dir", broken), "corrupted")

    def test_run_foreign_format(self, tmp_path, seed_settings):
        import shutil

        foreign = tmp_path / "foreign"
        shutil.copytree(seed_settings.index_dir, foreign)
        manifest = foreign / (foreign / "CURRENT").read_text().strip() / "manifest.json"
        data = json.loads(manifest.read_text())
        data["format_version"] = 999
        manifest.write_text(json.dumps(data))
        self.assert_one_line_error(qa("ask", HEADLINE, "--index-dir", foreign), "qa index --rebuild")

    def test_run_other_model_refused(self, seed_settings):
        result = qa("ask", HEADLINE, "--index-dir", seed_settings.index_dir, "--model", "some/other-model")
        self.assert_one_line_error(result, "rebuild")

    def test_run_model_not_available_offline(self, tmp_path, corpus_copy, monkeypatch):
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        result = qa("index", corpus_copy, "--index-dir", tmp_path / "i", "--model", "nobody/no-such-model")
        self.assert_one_line_error(result, "nobody/no-such-model")

    def test_run_bad_setting(self, seed_settings, monkeypatch):
        monkeypatch.setenv("QA_TOP_K", "lots")
        self.assert_one_line_error(qa("ask", HEADLINE, "--index-dir", seed_settings.index_dir), "top_k")

    def test_run_bad_golden_file(self, tmp_path, seed_settings):
        golden = tmp_path / "bad.jsonl"
        golden.write_text('{"id": "x", "question": "q"}\n')
        self.assert_one_line_error(qa("eval", golden, "--index-dir", seed_settings.index_dir), "bad.jsonl:1")


class TestIndexCommand:
    def test_run_summary_line(self, tmp_path, corpus_copy):
        first = qa("index", corpus_copy, "--index-dir", tmp_path / "i")
        assert first.exit_code == 0, first.output
        assert "3 files (3 added" in first.stderr
        again = qa("index", corpus_copy, "--index-dir", tmp_path / "i")
        assert "up to date" in again.stderr

    def test_run_help_reads_well(self):
        result = qa("--help")
        assert result.exit_code == 0
        for command in ("index", "ask", "eval"):
            assert command in result.stdout


@pytest.mark.parametrize("as_json", [True, False])
def test_eval_reports_metrics(seed_settings, tmp_path, as_json):
    golden = tmp_path / "g.jsonl"
    golden.write_text(
        json.dumps({"id": "h", "question": HEADLINE, "source": KOREAN, "lines": [22], "answer_any": ["LOI"]}) + "\n"
        + json.dumps({"id": "u", "question": "What is the airspeed of a swallow?", "unanswerable": True}) + "\n"
    )
    args = ["eval", golden, "--index-dir", seed_settings.index_dir] + (["--json"] if as_json else [])
    result = qa(*args)
    assert result.exit_code == 0, result.output
    if as_json:
        report = json.loads(result.stdout)
        assert report["summary"]["n"] == 1 and report["summary"]["unanswerable"] == 1
        assert [r["id"] for r in report["results"]] == ["h", "u"]
        assert {"id", "question", "answer", "abstained", "passages"} <= set(report["results"][0])
    else:
        assert "hit@5" in result.stdout and "MRR@10" in result.stdout
