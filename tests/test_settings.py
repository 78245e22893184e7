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
