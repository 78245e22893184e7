"""The question analysed once."""

from __future__ import annotations

import pytest

from qa.crosslingual.bridge import Bridge
from qa.stages.analyse import analyse, answer_type


@pytest.mark.parametrize(
    "question, kind",
    [
        ("When did Kishida travel to the US?", "date"),
        ("In which year was the LOI signed?", "date"),
        ("How many F-35 fighters will Japan buy?", "number"),
        ("Wie viel Geld fließt in die KI-Partnerschaft?", "number"),
        ("美国为日本提供的武器装备占多少?", "number"),
        ("Who is the president of KIAT?", "person"),
        ("Where was the letter of intent signed?", "place"),
        ("민병주 원장은 언제 취임했나요?", "date"),
        ("What did NIST sign with Korea?", "other"),
    ],
)
def test_answer_types_by_question_words(question, kind):
    assert answer_type(question) == kind


def test_one_object_holds_terms_bridges_names_and_language():
    bridge = Bridge({"nist": ["국립표준기술연구소"]})
    question = analyse("What did NIST sign with UNESCO in 2024?", bridge=bridge, known=lambda word: word != "UNESCO")
    assert question.language == "en" and question.search == question.focus == question.text
    assert "nist" in question.terms and question.weights["nist"] == 1.0
    korean = [term for group in question.alternatives for translation in group for term in translation if "\uac00" <= term[0] <= "\ud7a3"]
    assert korean and all(term in "국립표준기술연구소" for term in korean)  # the alias, as the index analyses it
    assert 0 < min(question.weights.values()) < 1  # the bridged term weighs less than the question's own
    assert question.names == ("NIST", "UNESCO", "2024") and question.unknown_names == ("UNESCO",)


def test_a_follow_up_reads_the_earlier_analysis():
    first = analyse("What did NIST sign with Korea?")
    follow = analyse("Where was it signed?", [first])
    assert follow.focus == "Where was it signed? NIST Korea"
    assert follow.search == "Where was it signed? NIST Korea What did NIST sign with Korea?"
    assert "nist" in follow.weights and follow.answer_type == "place"


def test_a_condensed_question_replaces_the_context():
    follow = analyse("Where was it signed?", [analyse("What did NIST sign?")], standalone="Where did NIST sign the LOI?")
    assert follow.search == follow.focus == "Where did NIST sign the LOI?" and follow.text == "Where was it signed?"
