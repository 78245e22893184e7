"""Regression floors on the golden set: any drop below what the bot reaches fails.

The floors are the figures measured when they were set, rounded down; raise
them when the bot gets better, never lower them to make a change pass.
"""

from __future__ import annotations

import pytest

from qa.evaluate import load_golden, summarise

from conftest import HEADLINE, KOREAN, REPO

GOLDEN = REPO / "tests" / "golden"

# With the default multilingual model and no glosses, FreeDict's dictionary no longer changes retrieval.
FLOORS = {
    "hit@1": 0.80,
    "hit@5": 0.93,
    "mrr@10": 0.86,
    "answer_match": 0.78,
}
# The target: at most 3 % of answerable questions refused (benchmarks/abstention.py calibrates to it).
MAX_FALSE_ABSTAIN = 0.03
# Abstention on the unanswerable sets: what the calibrated default reaches on the off-topic questions (0.761,
# benchmarks/abstention.py), rounded down. The near misses and the seeds' own unanswerable cases are refused by
# none at the default yet, so they have no floor.
UNANSWERABLE_FLOORS = {"unanswerable-offtopic.jsonl": 0.74}
ENGLISH_FLOORS = {"hit@1": 0.77, "hit@5": 0.91}
# Same-language questions must not get worse as the cross-lingual bridges grow.
SAME_LANGUAGE_FLOORS = {"de": 0.87, "ko": 0.85, "zh": 1.0}


@pytest.fixture(scope="module")
def summary(bot):
    return summarise(bot.evaluate(load_golden(GOLDEN / "seeds.jsonl")))


def test_unanswerable_files_are_large_and_unanswerable():
    for name in ("unanswerable-offtopic.jsonl", "unanswerable-nearmiss.jsonl"):
        cases = load_golden(GOLDEN / name)
        assert len(cases) >= 40 and all(case.unanswerable for case in cases)
        assert len({case.question for case in cases}) == len(cases)


def test_golden_file_is_large_and_varied():
    cases = load_golden(GOLDEN / "seeds.jsonl")
    english = [c for c in cases if c.lang == "en" and not c.unanswerable]
    assert len(cases) >= 80 and len(english) >= 60
    assert sum(c.unanswerable for c in cases) >= 5
    assert {c.source for c in english} == {"000_81784bd76aef5d8c.txt", "001_fde5e7576b522852.txt", KOREAN}
    assert {c.lang for c in cases} >= {"en", "de", "zh", "ko"}


@pytest.mark.parametrize("metric", sorted(FLOORS))
def test_metric_holds_its_floor(summary, metric):
    assert summary[metric] >= FLOORS[metric], f"{metric} fell to {summary[metric]}"


def test_answerable_questions_are_not_refused(summary):
    assert summary["false_abstain"] <= MAX_FALSE_ABSTAIN


@pytest.mark.parametrize("metric", sorted(ENGLISH_FLOORS))
def test_english_questions_hold_their_floor(summary, metric):
    assert summary["by_question_lang"]["en"][metric] >= ENGLISH_FLOORS[metric]


@pytest.mark.parametrize("language", sorted(SAME_LANGUAGE_FLOORS))
def test_same_language_questions_hold_their_floor(summary, language):
    assert summary["by_question_lang"][language]["hit@1"] >= SAME_LANGUAGE_FLOORS[language]


@pytest.mark.parametrize("name", sorted(UNANSWERABLE_FLOORS))
def test_unanswerable_questions_are_refused(bot, name):
    cases = load_golden(GOLDEN / name)
    assert all(case.unanswerable for case in cases)
    summary = summarise(bot.evaluate(cases))
    assert summary["abstain_on_unanswerable"] >= UNANSWERABLE_FLOORS[name], summary["abstain_on_unanswerable"]


def test_headline(bot):
    answer = bot.ask(HEADLINE)
    assert any(p.source == KOREAN and p.line_start <= 22 <= p.line_end for p in answer.passages[:3])
    assert "LOI" in answer.answer or "협력의향서" in answer.answer
    assert any(c.source == KOREAN and c.line_start <= 22 <= c.line_end for c in answer.citations)


# Questions in the documents' own language, beyond the seeds' few: Korean over the Korean seed,
# Spanish and Russian over XQuAD articles (tests/golden/xquad). A model or fusion that reads one
# language worse than before fails here.
# Measured: Korean 0.889 / 1.000, Spanish 1.000 / 1.000, Russian 0.964 / 1.000 (hit@1 / hit@5); the
# floors leave one question of room, for the engine's sums may round differently on another CPU.
OWN_LANGUAGE_FLOORS = {
    "korean.jsonl": {"hit@1": 0.85, "hit@5": 1.0},
    "xquad-es.jsonl": {"hit@1": 0.96, "hit@5": 0.96},
    "xquad-ru.jsonl": {"hit@1": 0.92, "hit@5": 0.96},
}


@pytest.fixture(scope="module")
def xquad_bot(tmp_path_factory):
    from qa.bot import Bot
    from qa.settings import Settings

    settings = Settings(corpus_dir=GOLDEN / "xquad", index_dir=tmp_path_factory.mktemp("xquad-index"))
    Bot.index(settings)
    return Bot.load(settings, build_if_missing=False)


@pytest.mark.parametrize("golden", sorted(OWN_LANGUAGE_FLOORS))
def test_own_language_questions_hold_their_floor(golden, bot, request):
    cases = load_golden(GOLDEN / golden)
    assert len(cases) >= 25 and len({c.lang for c in cases}) == 1
    chosen = bot if golden == "korean.jsonl" else request.getfixturevalue("xquad_bot")
    summary = summarise(chosen.evaluate(cases))
    for metric, floor in OWN_LANGUAGE_FLOORS[golden].items():
        assert summary[metric] >= floor, f"{golden}: {metric} fell to {summary[metric]}"
    assert summary["false_abstain"] <= MAX_FALSE_ABSTAIN, f"{golden}: {summary['false_abstain']} of answerable questions refused"
