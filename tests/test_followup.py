"""Reading follow-ups against the conversation, without an LLM."""

from __future__ import annotations

import pytest

from qa.stages.analyse import analyse
from qa.stages.followup import entities, is_follow_up


def read(question: str, turns: list[str]):
    """The question analysed after the earlier questions, each analysed in its own turn."""
    earlier = []
    for text in turns:
        earlier.append(analyse(text, earlier))
    return analyse(question, earlier)


def turn(question: str) -> str:
    return question


def test_entities_are_names_codes_and_numbers() -> None:
    assert entities("What did NIST sign with Korea?") == ["NIST", "Korea"]
    assert entities("How many F-35s will Japan buy in 2024?") == ["F-35s", "Japan", "2024"]
    assert entities("IPEF包括哪四大支柱?") == ["IPEF包括哪四大支柱"]


@pytest.mark.parametrize(
    "question, expected",
    [
        ("Where was it signed?", True),
        ("How many people took part?", True),
        ("Wozu dient es?", True),
        ("What does that collaboration aim to promote?", True),
        ("What are the four pillars of IPEF?", False),
        ("Who is the president of KIAT?", False),
    ],
)
def test_follow_ups_lean_on_a_reference_or_name_nothing(question: str, expected: bool) -> None:
    assert is_follow_up(question, entities(question)) is expected


def test_a_follow_up_carries_the_recent_entities_and_last_question() -> None:
    reading = read("Where was it signed?", [turn("Who is the president of KIAT?"), turn("What did NIST sign with Korea?")])
    assert reading.focus == "Where was it signed? NIST Korea KIAT"
    assert reading.search == "Where was it signed? NIST Korea KIAT What did NIST sign with Korea?"


def test_a_new_subject_is_searched_alone() -> None:
    reading = read("What are the four pillars of IPEF?", [turn("What did NIST sign with Korea?")])
    assert reading.search == reading.focus == "What are the four pillars of IPEF?"


def test_only_the_recent_turns_are_carried() -> None:
    turns = [turn("What is RIKEN?"), turn("Who leads KIAT?"), turn("What did NIST sign?")]
    assert "RIKEN" not in read("When?", turns).search
