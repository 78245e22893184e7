from __future__ import annotations

from qa.crosslingual.bridge import COGNATE_WEIGHT, Bridge, merge_aliases, mine_aliases
from qa.crosslingual.lexicon import build, english_key
from qa.stages.analyse import weighted_terms


def expand(bridge: Bridge, question: str, terms: list[str]) -> dict[str, float]:
    """The bridged terms as the analysed question weighs them, the question's own terms left out."""
    return {term: w for term, w in weighted_terms(terms, bridge.alternatives(question, terms)).items() if term not in terms}


def test_aliases_are_mined_from_brackets():
    aliases = mine_aliases("미국 국립표준기술연구소(NIST)와 협력의향서(LOI)를 체결했다. 印度太平洋(FOIP)框架")
    assert aliases["nist"] == ["국립표준기술연구소"] or "국립표준기술연구소" in aliases["nist"][0]
    assert aliases["loi"][0].endswith("협력의향서")
    assert aliases["foip"][0].endswith("印度太平洋")


def test_merge_keeps_every_name_once():
    merged = merge_aliases([{"nist": ["국립표준기술연구소"]}, {"nist": ["国家标准", "국립표준기술연구소"]}])
    assert merged == {"nist": ["국립표준기술연구소", "国家标准"]}


def test_bridge_weights_a_name_as_one_word():
    bridge = Bridge({"nist": ["국립표준기술연구소"]})
    extra = expand(bridge, "What did NIST sign?", ["nist", "sign"])
    assert extra and abs(sum(extra.values()) - 0.6) < 1e-9
    assert all(weight < 1 for weight in extra.values())


def test_lexicon_keeps_only_words_the_corpus_uses():
    lexicon = build(["日本政府预算增加。", "반도체 협력을 강화한다."])
    assert "预算" in lexicon[english_key("budget")]
    assert "반도체" in lexicon[english_key("semiconductor")]
    assert all(word in "日本政府预算增加。반도체 협력을 강화한다." or word.casefold() in "日本政府预算增加。"
               for words in lexicon.values() for word in words)
    assert "韩国" not in sum(lexicon.values(), [])


def test_lexicon_bridges_country_names_from_cldr():
    lexicon = build(["美国和韩国签署了协议。"])
    assert "韩国" in lexicon["korea"]
    assert "美国" in lexicon[english_key("United States")]


def test_questions_find_lexicon_entries():
    bridge = Bridge({}, {english_key("budget"): ["预算"], english_key("supply chain"): ["供应链"]})
    extra = expand(bridge, "How big is the budget for the supply chain?", ["big", "budget", "supply", "chain"])
    assert {"预算", "供应", "应链"} <= set(extra)


def test_loanwords_meet_by_sound():
    from qa.crosslingual.lexicon import english_skeleton, hangul_skeleton, sound_entries

    for english, korean in [("forum", "포럼"), ("seminar", "세미나"), ("partnership", "파트너십"), ("channel", "채널"), ("pitching", "피칭")]:
        assert english_skeleton(english) == hangul_skeleton(korean)
    entries = sound_entries(["포럼에는 150여 명이 참여했다."])
    assert "포럼" in entries["#" + english_skeleton("forum")]


def test_bridge_expands_loanwords(tmp_path):
    bridge = Bridge({}, build(["포럼에는 150여 명이 참여했다."]))
    extra = expand(bridge, "Who attended the forum?", ["attend", "forum"])
    assert "포럼" in extra


def test_a_cognate_is_its_word_alternative_not_an_addition():
    bridge = Bridge({}, {}, ["cognates"])
    assert bridge.alternatives("Which astronauts?", ["astronaut"]) == [[{"astronaut": 1.0}, {"~astro": COGNATE_WEIGHT}]]
    assert Bridge({}, {}, ["aliases"]).alternatives("Which astronauts?", ["astronaut"]) == []


def test_sounds_need_a_close_spelling_as_well_as_the_consonants():
    lexicon = build(["포럼에는 그린란드 소식", "채널을 구축"])
    bridge = Bridge({}, lexicon, ["sounds"])
    assert "포럼" in expand(bridge, "Who came to the forum?", ["forum"])
    assert "채널" in expand(bridge, "Which channel?", ["channel"])
    assert not [term for term in expand(bridge, "What did Korean firms do?", ["korean", "firm"]) if term.startswith("그린")]
