"""The query lexicon made file by file: the merge of files' lexicons is the lexicon of them all."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from qa.crosslingual.lexicon import MAX_TRANSLATIONS, LexiconSource, english_key, merge, ranked, ranked_files

SEEDS = Path(__file__).resolve().parent.parent / "corpus"
# Lines of the three seeds (German, Chinese, Korean) and a few of other kinds: the texts files are made of.
LINES = [line for path in sorted(SEEDS.iterdir()) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
LINES += ["美国和韩国签署了协议。", "포럼에는 그린란드 소식", "Die Vereinigten Staaten und Südkorea.", "Nothing here but English."]


@pytest.fixture(scope="module")
def source() -> LexiconSource:
    return LexiconSource.load()


files = st.lists(st.lists(st.sampled_from(LINES), min_size=1, max_size=6), min_size=1, max_size=5)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=files, data=st.data())
def test_the_merge_of_files_lexicons_is_the_lexicon_of_them_all(source, files, data):
    lexicons = ranked_files({str(number): texts for number, texts in enumerate(files)}, source)
    together = merge([ranked([text for texts in files for text in texts], source)])
    assert merge(lexicons.values()) == together
    shuffled = data.draw(st.permutations(list(lexicons.values())))
    assert merge(shuffled) == together  # whatever order the files come in
    gone = data.draw(st.sampled_from(sorted(lexicons)))  # a file removed: as if it had never been there
    assert merge(lexicon for name, lexicon in lexicons.items() if name != gone) == merge(
        [ranked([text for number, texts in enumerate(files) if str(number) != gone for text in texts], source)]
    )


def test_a_files_lexicon_holds_only_words_it_uses_and_at_most_the_cap(source):
    text = "\n".join(LINES)
    lexicon = ranked([text], source)
    assert lexicon and all(len(words) <= MAX_TRANSLATIONS for words in lexicon.values())
    assert all(word in text or word.casefold() in text.casefold() for words in lexicon.values() for word in words)
    assert "韩国" in lexicon["korea"] and "Südkorea" in lexicon["korea"]


def test_ranks_come_from_the_dictionary_not_the_file(source):
    """A word has the same rank in every file that uses it, so merging needs no file order."""
    first = ranked(["美国和韩国签署了协议。"], source)
    second = ranked(["韩国的半导体。 Die Vereinigten Staaten."], source)
    assert first["korea"]["韩国"] == second["korea"]["韩国"]
    assert english_key("United States") in first


def test_the_source_is_made_once_and_opens_in_an_instant(source, tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path))
    made = LexiconSource.load()  # parses CLDR and CC-CEDICT into the empty cache folder
    assert [path.suffix for path in tmp_path.iterdir()] == [".sqlite"]
    started = time.perf_counter()
    again = LexiconSource.load()
    assert time.perf_counter() - started < 1.0
    assert ranked(["美国和韩国"], made) == ranked(["美国和韩国"], again) == ranked(["美国和韩国"], source)
