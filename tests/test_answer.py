"""Key phrases marked in the extractive answer's quotes."""

from __future__ import annotations

from qa.stages.answer import key_phrases
from qa.stages.lexical import analyze_query


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


def test_the_same_evidence_in_two_passages_is_cited_as_one_and_two() -> None:
    from qa.stages.analyse import analyse
    from qa.stages.answer import compose
    from qa.models import Passage

    caption = "NIST 원장이 협력의향서(LOI)를 체결하고 기념촬영을 하고 있다."
    other = "한국과 미국이 산업기술 협력을 강화한다."
    passages = [
        Passage(rank=1, source="a.txt", line_start=17, line_end=17, char_start=0, char_end=len(caption), text=caption, score=0.9),
        Passage(rank=2, source="a.txt", line_start=18, line_end=20, char_start=100, char_end=100 + len(caption + "\n" + other),
                text=caption + "\n" + other, score=0.8),
    ]
    answer = compose(analyse("What did NIST sign?"), passages, 0.0)
    assert answer.answer == f"{caption} [1][2]"
    assert [(c.line_start, c.quote) for c in answer.citations] == [(17, caption), (18, caption)]
