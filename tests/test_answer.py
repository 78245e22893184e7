"""Key phrases marked in the extractive answer's quotes."""

from __future__ import annotations

from qa.answer import key_phrases
from qa.lexical import analyze_query


def phrases(question: str, text: str) -> list[str]:
    return [text[start:end] for start, end in key_phrases(analyze_query(question), text)]


def test_words_are_marked_through_the_analyser() -> None:
    assert phrases("Which agreements were signed?", "The agreement was signed in DC.") == ["agreement", "signed"]


def test_a_sentence_in_another_language_is_marked_by_shared_names() -> None:
    text = "로리 로카시오(Laurie E. Locascio) NIST 원장이 협력의향서(LOI)를 체결하고"
    assert phrases("What did NIST sign with Korea?", text) == ["NIST"]


def test_cjk_questions_mark_their_bigrams_as_one_phrase() -> None:
    text = "2022年5月,拜登访日期间正式推出IPEF,包括四大支柱:公平和有弹性的贸易"
    assert phrases("IPEF包括哪四大支柱?", text) == ["IPEF,包括四大支柱"]


def test_marks_reach_the_answer(bot) -> None:
    citation = bot.ask("What did NIST sign with Korea?").citations[-1]
    assert any("NIST" in citation.quote[a:b] for a, b in citation.marks)
