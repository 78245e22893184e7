from __future__ import annotations

import numpy as np
from hypothesis import given, strategies as st

from qa.stages.lexical import BM25, analyze, analyze_query, index_terms


class TestAnalyze:
    def test_run_codes_and_numbers_meet_their_variants(self):
        assert "f35" in analyze("F-35") and "f35" in analyze("F35") and "f35" in analyze("ｆ３５")
        assert "2000" in analyze("2,000") and "2000" in analyze("2000")
        assert "2022" in analyze("FY2022") and "2022" in analyze("2022年")

    def test_run_cjk_becomes_bigrams(self):
        assert analyze("协力의향서") == ["协力", "의향", "향서"]
        assert analyze("美日") == ["美日"]

    def test_run_english_is_lightly_stemmed(self):
        assert analyze_query("agreements signed") == analyze_query("agreement sign") == ["agreement", "sign"]

    def test_run_long_latin_words_meet_their_cognates(self):
        assert "~astro" in index_terms("Astronauten") and "~astro" in index_terms("astronauts")
        assert "~unive" in index_terms("Universitäten") and "~unive" in index_terms("universities")
        assert not [term for term in index_terms("협력의향서 技术 NIST Mond") if term.startswith("~")]
        # Only the index holds them: a question's terms, and the words an answer marks, do not.
        assert not [term for term in analyze("Which astronauts?") + analyze_query("Which astronauts?") if term.startswith("~")]

    def test_run_question_words_are_dropped(self):
        assert analyze_query("What did NIST sign with Korea?") == ["nist", "sign", "korea"]

    @given(st.text(max_size=200))
    def test_run_never_fails_and_never_yields_blanks(self, text):
        assert all(term and not term.isspace() for term in analyze(text))


class TestBM25:
    def test_run_rare_terms_weigh_more(self):
        bm25 = BM25.of([["nist", "sign"], ["sign", "deal"], ["sign", "treaty"]])
        scores = bm25.scores({"nist": 1.0, "sign": 1.0})
        assert scores.argmax() == 0 and scores[1] == scores[2] > 0

    def test_run_weights_scale_terms(self):
        bm25 = BM25.of([["nist"], ["kiat"]])
        scores = bm25.scores({"nist": 1.0, "kiat": 0.5})
        assert np.isclose(scores[1], scores[0] / 2)

    def test_run_empty_index(self):
        assert BM25.of([]).scores({"x": 1.0}).shape == (0,)
