"""English glosses of Chinese and Korean words: the dictionaries, the alignment, and what the index keeps."""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import given, strategies as st

from qa.stages import index as index_store
from qa.bot import Bot
from qa.errors import BadIndexError
from qa.crosslingual.gloss import Glossary, GlossedWord, _kiwi, english_view, freedict_path, glosser, words_within
from qa.crosslingual.lexicon import romanise
from qa.settings import Settings

from conftest import CORPUS, KOREAN

CJK = re.compile(r"[\u3400-\u9fff\uac00-\ud7a3]")


@pytest.fixture(scope="module")
def glossary() -> Glossary:
    return Glossary.load()


def glossed(glossary: Glossary, text: str) -> dict[str, str]:
    return {text[start:end]: english for start, end, english in glossary.gloss(text)}


class TestGlossary:
    def test_run_chinese_words_read_in_english(self, glossary):
        words = glossed(glossary, "美日签订数字贸易协定")
        assert "sign" in words["签订"]
        assert "trade" in " ".join(words.values()) and "agreement" in " ".join(words.values())

    def test_run_sino_korean_words_read_through_their_characters(self, glossary):
        words = glossed(glossary, "한국산업기술진흥원은 협력의향서를 체결했다.")
        assert words["기술"] == "technology"
        assert words["의향서"] == "letter of intent"
        assert "한국" in words

    def test_run_sino_korean_compounds_read_whole(self, glossary):
        """Kiwi cuts 상무부 into 상무 ("routine" read alone) and 부; the dictionary holds the whole word."""
        text = "미국 워싱턴DC 상무부에서 체결했다."
        assert [token.form for token in _kiwi().tokenize("상무부에서")][:2] == ["상무", "부"]
        words = glossed(glossary, text)
        assert "Department of Commerce" in words["상무부"] and "상무" not in words
        assert glossed(glossary, "상무 이사")["상무"].startswith("routine")  # apart, each word reads as itself

    def test_run_sino_korean_homophones_read_as_korean_uses_them(self, glossary):
        """강화 writes 強化 "strengthen" far more than 講話 "speech", which Chinese uses more; Japanese usage decides."""
        assert "strengthen" in glossary.korean["강화"]
        assert "dust" not in glossary.korean["사진"]  # 寫真, a photograph, not 沙塵
        assert "mechanism" in glossary.korean["기관"]  # 機關, written 機関 in Japan, not 器官 "organ"
        assert "rise" in glossary.korean["상승"]  # Japan writes 上昇, CC-CEDICT 上升: Chinese usage decides

    def test_run_loanwords_by_sound(self, glossary):
        assert [glossary.loanword(w) for w in ("포럼", "파트너십", "세미나", "워싱턴")] == ["forum", "partnership", "seminar", "washington"]

    def test_run_names_stay_unglossed(self, glossary):
        assert glossary.loanword("로카시오") is None  # Locascio shares its consonants with no common word
        assert "민병주" not in glossed(glossary, "민병주 원장은 말했다.")
        assert not any(w in "菅义伟" for w in glossed(glossary, "拜登和菅义伟启动了CoRe。"))

    def test_run_calendar_units_after_numerals(self, glossary):
        words = glossary.gloss("2019年10月")
        assert [w.english for w in words] == ["year", "month"]

    def test_run_english_is_left_alone(self, glossary):
        assert glossary.gloss("The moon and the NASA.") == []

    def test_run_romanisation(self):
        assert romanise("포럼") == "poreom" and romanise("한국") == "hanguk"


class TestAlignment:
    @given(st.lists(st.tuples(st.integers(0, 200), st.integers(1, 5)), max_size=30), st.integers(0, 220), st.integers(0, 60))
    def test_run_words_within_a_range_keep_their_text(self, spans, start, length):
        words = sorted({GlossedWord(s, s + n, f"w{s}") for s, n in spans})
        end = start + length
        inside = words_within(words, start, end)
        assert inside == [GlossedWord(w.start - start, w.end - start, w.english) for w in words if w.start >= start and w.end <= end]

    def test_run_english_view_keeps_latin_words_in_place(self):
        text = "KIAT와 NIST가 협력의향서(LOI)를 체결"
        words = [GlossedWord(14, 17, "letter of intent"), GlossedWord(24, 26, "conclude")]
        assert [text[w.start : w.end] for w in words] == ["의향서", "체결"]
        assert english_view(words, text) == "KIAT NIST letter of intent LOI conclude"


class TestIndexedGlosses:
    def test_run_every_stored_gloss_renders_words_of_its_chunk(self, index_dir):
        stored = index_store.read(index_dir)
        assert stored.manifest.glosser == glosser()
        for chunk, words in zip(stored.chunks, stored.glosses):
            for start, end, english in words:
                assert 0 <= start < end <= len(chunk.text) and english
                assert CJK.search(chunk.text[start:end]) or re.fullmatch(r"[A-Za-zÄÖÜäöüß]+", chunk.text[start:end])
        korean = [words for chunk, words in zip(stored.chunks, stored.glosses) if chunk.source == KOREAN]
        german = [words for chunk, words in zip(stored.chunks, stored.glosses) if chunk.source.startswith("000_")]
        assert all(korean) and all(german) == (freedict_path() is not None)

    def test_run_embedding_the_glosses_is_another_recipe(self, seed_settings):
        """Glosses are always made (the dictionary bridge reads them backwards); embedding them is a setting."""
        assert index_store.read(seed_settings.index_dir).manifest.glosser == glosser()  # the default embeds the text
        embedding = seed_settings.model_copy(update={"glosses": True})
        with pytest.raises(BadIndexError, match="glosser"):
            Bot.index(embedding)  # a build would mix glossed and unglossed vectors
        assert Bot.load(embedding).ask("What did NIST sign with Korea?").citations  # asking does not care


needs_freedict = pytest.mark.skipif(freedict_path() is None, reason="FreeDict's German-English dictionary is not installed (apt-get install dict-freedict-deu-eng)")


@pytest.mark.skipif(os.environ.get("QA_REQUIRE_FREEDICT") != "1", reason="only where FreeDict is required (CI sets QA_REQUIRE_FREEDICT=1)")
def test_freedict_is_installed_where_required():
    """German glosses and their tests must not drop out unnoticed because apt could not install the dictionary."""
    assert freedict_path() is not None


@needs_freedict
class TestGerman:
    def test_run_words_inflections_and_compounds(self, glossary):
        text = "Die NASA und das japanische Wissenschaftsministerium schlossen ein Abkommen zur Monderkundung mit unbemannten Fahrzeugen."
        words = glossed(glossary, text)
        assert "moon" in words["Monderkundung"] and "exploration" in words["Monderkundung"]
        assert "vehicle" in words["Fahrzeugen"] and "Japanese" in words["japanische"]
        assert "science ministry" in words["Wissenschaftsministerium"]

    def test_run_function_words_and_english_stay_as_they_stand(self, glossary):
        words = glossed(glossary, "Die Kooperation sieht ein Memorandum of Understanding zwischen den Instituten vor.")
        assert not {"Die", "ein", "zwischen", "den", "Memorandum", "of", "Understanding"} & set(words)

    def test_run_only_german_text_is_read_as_german(self, glossary):
        assert glossary.gloss("The moon and the vehicles of the agency.") == []

    def test_run_the_bridge_finds_german_words_as_the_text_inflects_them(self, bot):
        assert "Fahrzeugen" in bot._stored.lexicon.get("vehicl", [])


def test_without_freedict_german_stays_german(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_FREEDICT_DIR", str(tmp_path))
    assert freedict_path() is None and "freedict" not in glosser()
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    assert Glossary.load().gloss("Die Monderkundung mit Fahrzeugen und die Zusammenarbeit der Institute.") == []
