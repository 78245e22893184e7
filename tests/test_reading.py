"""English readings of quotes in another language than the question's."""

from __future__ import annotations

from hypothesis import given, settings as hsettings, strategies as st

from qa.crosslingual.gloss import GlossedWord
from qa.crosslingual.reading import reading, render, sense

KOREAN = "한국산업기술진흥원(KIAT)는 7일 국립표준기술연구소(NIST)와 협력의향서(LOI)를 체결했다."


def test_one_plain_sense_without_notes():
    assert sense("unite in common effort; cooperate") == "cooperate"
    assert sense("to sign (a contract)") == "sign"
    assert sense("agreement") == "agreement"


def test_a_quote_in_the_questions_language_gets_no_reading():
    assert reading("The agreement was signed in Washington.", [], "en") is None
    assert reading(KOREAN, [GlossedWord(0, 2, "South Korea")], "ko") is None


def test_running_english_keeps_names_numbers_and_punctuation():
    def at(word: str, english: str) -> GlossedWord:
        start = KOREAN.index(word)
        return GlossedWord(start, start + len(word), english)

    glosses = [at("한국", "South Korea"), at("국립표준기술연구소", "national standard institute"),
               at("협력의향서", "letter of intent"), at("체결", "to conclude; to sign")]
    text = render(KOREAN, glosses, "ko")
    assert text.startswith("South Korea")
    assert "(KIAT)" in text and "(NIST)" in text and "letter of intent (LOI)" in text
    assert "7 day" in text and text.endswith("conclude.")
    assert not any("\uac00" <= c <= "\ud7a3" for c in text)


def test_german_function_words_are_carried_over():
    quote = "Die NASA und das Ministerium schlossen ein Abkommen."
    glosses = [GlossedWord(quote.index(w), quote.index(w) + len(w), e)
               for w, e in (("Ministerium", "ministry"), ("schlossen", "to conclude"), ("Abkommen", "agreement"))]
    assert render(quote, glosses, "de") == "the NASA and the ministry conclude a agreement."


def test_chinese_grammar_words_read_as_grammar():
    """CC-CEDICT lists 在 as "exist", 了 as "finish", 等 as "wait for": in running text they are "in", nothing, "etc."."""
    from qa.crosslingual.gloss import loaded_glossary

    quote = "研究人员在国际会议上制定了在量子计算机等三个领域合作的计划。"
    text = reading(quote, loaded_glossary().gloss(quote), "en")
    assert text is not None and "international" in text and "quantum computer" in text
    assert not any(word in text for word in ("exist", "finish", "wait for", " of "))
    assert " in " in text and "etc." in text


@given(st.text(alphabet="협력의향서NIST 7일()。，美日合作 und der", max_size=60), st.data())
@hsettings(max_examples=200, deadline=None)
def test_run_any_glosses_render_without_failing(quote, data):
    cuts = sorted(data.draw(st.lists(st.integers(0, len(quote)), max_size=6)))
    glosses = [GlossedWord(a, b, "word") for a, b in zip(cuts[::2], cuts[1::2]) if b > a]
    assert "  " not in render(quote, glosses, "ko")


def test_readings_reach_the_answer(bot):
    answer = bot.ask("What did NIST sign with Korea?")
    korean = [c for c in answer.citations if "협력의향서" in c.quote]
    assert korean and all(c.reading and "letter of intent" in c.reading for c in korean)
    assert all(c.quote == c.quote.strip() for c in korean)  # the quote itself stays exact


def test_a_quote_without_stored_glosses_loads_the_dictionaries_once(monkeypatch):
    """An index built without glosses is glossed at answer time; the dictionaries must not be unpickled per quote."""
    from qa.crosslingual import gloss, reading as reading_module

    loads = []
    original = gloss.Glossary.load.__func__

    def counted(cls):
        loads.append(1)
        return original(cls)

    monkeypatch.setattr(gloss.Glossary, "load", classmethod(counted))
    gloss.loaded_glossary.cache_clear()
    first = reading_module.reading("美国国家标准与技术研究院签署了合作意向书。", [], "en")
    second = reading_module.reading("韩国产业技术振兴院与美国合作。", [], "en")
    assert first and second and len(loads) == 1
    gloss.loaded_glossary.cache_clear()
