from __future__ import annotations

from pathlib import Path

import pytest

from qa.errors import SettingsError
from qa.settings import Settings


def test_sources_apply_in_order(tmp_path, monkeypatch):
    (tmp_path / "qa.toml").write_text('top_k = 7\nmodel = "from-file"\nretriever = "dense"\n')
    monkeypatch.chdir(tmp_path)
    assert Settings.load().top_k == 7
    monkeypatch.setenv("QA_TOP_K", "9")
    monkeypatch.setenv("QA_MODEL", "from-env")
    settings = Settings.load(model="from-flag")
    assert (settings.top_k, settings.model, settings.retriever) == (9, "from-flag", "dense")


def test_defaults_without_any_source():
    settings = Settings.load()
    assert settings.index_dir == Path("index") and settings.corpus_dir == Path("corpus") and settings.retriever == "hybrid"


def test_bad_values_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_RETRIEVER", "psychic")
    with pytest.raises(SettingsError, match="retriever"):
        Settings.load()
    monkeypatch.delenv("QA_RETRIEVER")
    bad = tmp_path / "bad.toml"
    bad.write_text("top_k = [")
    with pytest.raises(SettingsError, match="not valid TOML"):
        Settings.load(bad)
    with pytest.raises(SettingsError, match="not found"):
        Settings.load(tmp_path / "missing.toml")


def test_bridges_from_the_environment(monkeypatch):
    assert Settings.load().bridges == ["aliases", "dictionary", "sounds", "cognates"]
    monkeypatch.setenv("QA_BRIDGES", "aliases, cognates")
    assert Settings.load().bridges == ["aliases", "cognates"]
    monkeypatch.setenv("QA_BRIDGES", "none")
    assert Settings.load().bridges == []
    monkeypatch.setenv("QA_BRIDGES", "telepathy")
    with pytest.raises(SettingsError, match="bridges"):
        Settings.load()


def test_config_is_found_from_a_subfolder_and_its_paths_read_from_its_folder(tmp_path, monkeypatch):
    (tmp_path / "qa.toml").write_text('index_dir = "idx"\ncorpus_dir = "docs"\ntop_k = 3\n[slack_collections]\nCHR = "hr-index"\n')
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    settings = Settings.load()
    assert settings.top_k == 3
    assert settings.index_dir == tmp_path.resolve() / "idx" and settings.corpus_dir == tmp_path.resolve() / "docs"
    assert settings.slack_collections == {"CHR": tmp_path.resolve() / "hr-index"}
    assert Settings.load(index_dir=Path("flag")).index_dir == Path("flag")  # a flag is read from the working folder


def test_the_users_config_comes_last(tmp_path, monkeypatch):
    from qa import paths

    user = paths.config_dir()
    user.mkdir(parents=True, exist_ok=True)
    (user / "qa.toml").write_text("top_k = 11\n")
    try:
        monkeypatch.chdir(tmp_path)
        assert Settings.load().top_k == 11
        (tmp_path / "qa.toml").write_text("top_k = 4\n")
        assert Settings.load().top_k == 4
    finally:
        (user / "qa.toml").unlink()


def test_platform_folders_hold_logs_and_history():
    settings = Settings.load()
    assert settings.question_log.name == "questions.sqlite" and settings.question_log.is_absolute()
    assert settings.feedback_log.parent == settings.question_log.parent
    assert settings.chat_history_file.is_absolute()


def test_collections_from_the_environment(monkeypatch):
    monkeypatch.setenv("QA_SLACK_COLLECTIONS", "C1=/srv/a, C2=b")
    assert Settings.load().slack_collections == {"C1": Path("/srv/a"), "C2": Path("b")}
    monkeypatch.setenv("QA_SLACK_COLLECTIONS", "C1")
    with pytest.raises(SettingsError, match="slack_collections"):
        Settings.load()
