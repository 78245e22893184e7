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


def _passage(text: str, source: str = "a.txt", rank: int = 1, score: float = 0.9):
    from qa.models import Passage

    return Passage(rank=rank, source=source, line_start=1, line_end=1, char_start=0, char_end=len(text), text=text, score=score)


def test_a_date_question_opens_with_the_date_marked_in_its_quote() -> None:
    from qa.stages.analyse import analyse
    from qa.stages.answer import compose

    text = "Prime Minister Fumio Kishida made a state visit to Washington in April 2024."
    answer = compose(analyse("When did Kishida make his state visit to Washington?"), [_passage(text)], 0.0)
    assert answer.short_answer == "April 2024" and answer.answer.startswith("April 2024 [1]")
    start, end = answer.citations[0].short
    assert answer.citations[0].quote[start:end] == "April 2024"


def test_a_number_already_in_the_question_is_not_its_answer() -> None:
    from qa.stages.analyse import analyse
    from qa.stages.answer import compose

    text = "In the next ten years Japan will buy 147 F35 fighters from the United States."
    answer = compose(analyse("How many F35 fighters will Japan buy in ten years?"), [_passage(text)], 0.0)
    assert answer.short_answer == "147"


def test_a_question_asking_for_no_number_gets_no_short_answer() -> None:
    from qa.stages.analyse import analyse
    from qa.stages.answer import compose

    answer = compose(analyse("What did NASA and MEXT sign?"), [_passage("NASA and MEXT signed a lunar agreement in 2024.")], 0.0)
    assert answer.short_answer is None and answer.citations[0].short is None


def test_abstention_keeps_the_passages_and_says_why() -> None:
    from qa.stages.analyse import analyse
    from qa.stages.answer import compose
    from qa.stages.calibration import Calibration

    from qa.stages.calibration import Node

    strict = Calibration(model="m", bias=0.0, trees=[[Node(feature="score", threshold=0.5, left=1, right=2), Node(value=0.2), Node(value=1.0)]], threshold=0.99)
    passages = [_passage("NASA and MEXT signed a lunar agreement.", score=0.2)]
    answer = compose(analyse("Who wrote War and Peace?"), passages, calibration=strict)
    assert answer.abstained and answer.citations == [] and answer.passages == passages
    assert answer.reason and 0 < answer.confidence < 0.99
    lenient = compose(analyse("Who wrote War and Peace?"), passages, abstain_below=0.0, calibration=strict)
    assert not lenient.abstained and lenient.reason is None and lenient.confidence == answer.confidence


def test_a_count_is_no_sum_of_money() -> None:
    from qa.stages.analyse import analyse
    from qa.stages.answer import compose

    text = "日本航空自卫队获得768亿日元,购买另外8架F35A战斗机。未来十年,日本将从美国购买147架F35战斗机。"
    answer = compose(analyse("How many F35 fighters will Japan buy over the next ten years?"), [_passage(text)], 0.0)
    assert answer.short_answer in ("8架", "147架")
