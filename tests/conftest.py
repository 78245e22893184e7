"""Shared fixtures: the seed corpus indexed once per session with the real default model."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from qa.bot import Bot
from qa.settings import Settings

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"
HEADLINE = "What did NIST sign with Korea?"
HEADLINE_SOURCE = "002_7257b5aa37c3b2f3.txt"


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests see neither the developer's QA_* or SLACK_* variables nor a qa.toml."""
    for name in list(os.environ):
        if name.startswith(("QA_", "SLACK_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("index")
    Bot.index(Settings.load(corpus_dir=CORPUS, index_dir=path))
    return path


@pytest.fixture(scope="session")
def bot(index_dir: Path) -> Bot:
    return Bot.load(Settings.load(corpus_dir=CORPUS, index_dir=index_dir), build_if_missing=False)


def free_port() -> int:
    """A loopback port nobody listens on; the servers under test bind it next."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
