"""One real index of the seed corpus per test session, built with the default model."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from qa.bot import Bot
from qa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = "What did NIST sign with Korea?"
HEADLINE_SOURCE = "002_7257b5aa37c3b2f3.txt"


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    work = tmp_path_factory.mktemp("qa")
    built = Settings.load(corpus_dir=ROOT / "corpus", index_dir=work / "index", feedback_log=work / "feedback.jsonl")
    Bot.index(built)
    return built


@pytest.fixture(scope="session")
def bot(settings: Settings) -> Bot:
    return Bot.load(settings, build_if_missing=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
