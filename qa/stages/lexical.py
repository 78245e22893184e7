"""Language-aware terms and BM25 scoring: the exact-match half of retrieval.

The English-only embedding model cannot see that "NIST" in a question and
"NIST" in a Korean sentence are the same thing; a lexical index can. Terms are
normalised so that surface variants meet: case, width (``ＮＩＳＴ``),
hyphenated codes (``F-35`` ~ ``F35``) and digit grouping (``2,000`` ~ ``2000``).
Chinese and Korean runs, which have no spaces between words, become
overlapping character bigrams; Latin words are lower-cased and stemmed (Snowball's English).
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable

import numpy as np
import snowballstemmer

ANALYZER = "bigram-snowball-v4"
# Latin words of this many letters or more also index their first letters, folded:
# cognates across languages share them ("Astronauten" ~ "astronauts", "Technologie"
# ~ "technology"), and the bridge looks them up as a weaker, cross-lingual match.
COGNATE_LETTERS = 5
COGNATE_PREFIX = "~"

_TOKEN = re.compile(
    r"""
    (?P<code>[^\W_]+(?:[-/.][^\W_]+)+)     # F-35, SM-6, AN/SPY-7, U.S., 2+2 style codes
  | (?P<number>\d{1,3}(?:[,.]\d{3})+(?!\d)) # 2,000 / 1.000.000
  | (?P<word>[^\W_]+)
    """,
    re.VERBOSE,
)

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HANGUL = r"\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f"
_KANA = r"\u3040-\u30ff"
_SCRIPT_RUN = re.compile(rf"[{_HAN}]+|[{_HANGUL}]+|[{_KANA}]+|[^{_HAN}{_HANGUL}{_KANA}]+")
_CJK_FIRST = re.compile(rf"[{_HAN}{_HANGUL}{_KANA}]")

# Stop words only for the question languages; documents keep every term.
STOP_WORDS = frozenset(
    """a an and are as at be by did do does for from has have how in is it its of on or that the this to
    was were what when where which who whom whose why with will would can could should about into than
    then there their they them these those been being also not no yes you your we our i me my he she his her
    der die das und ist im in den dem des ein eine einer eines zu mit von für auf als wie was wer wo wann
    """.split()
)

def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Snowball's English stemmer, so that a question's "cooperation" meets a dictionary's "cooperate"."""
    if not word.isascii() or not word.isalpha():
        return word
    return _ENGLISH_STEMMER.stemWord(word)


_ENGLISH_STEMMER = snowballstemmer.stemmer("english")


def _latin_terms(run: str) -> list[str]:
    terms = []
    for match in _TOKEN.finditer(run):
        token = match.group(0)
        if match.group("number"):
            terms.append(re.sub(r"[,.]", "", token))
            continue
        if match.group("code"):
            parts = [part for part in re.split(r"[-/.]", token) if len(part) > 1 and not part.isdigit()]
            words = [re.sub(r"[-/.]", "", token), *parts]
        else:
            words = [stem(token)]
        for word in words:
            terms.append(word)
            terms.extend(_mixed_parts(word))
    return terms


def _mixed_parts(word: str) -> list[str]:
    """"fy2022" also as "fy" and "2022", "f35a" as "35": numbers meet their own kind."""
    if word.isalpha() or word.isdigit():
        return []
    return [part for part in re.findall(r"[^\W\d_]+|\d+", word) if len(part) > 1 or part.isdigit()]


def _cjk_terms(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def analyze(text: str) -> list[str]:
    """Terms of a text, in order, duplicates kept (for term frequency)."""
    terms: list[str] = []
    for run in _SCRIPT_RUN.findall(normalise(text)):
        if _CJK_FIRST.match(run):
            terms.extend(_cjk_terms(run))
        else:
            terms.extend(_latin_terms(run))
    return terms


def index_terms(text: str) -> list[str]:
    """What a chunk is indexed under: its terms and the cognate keys of its long Latin words."""
    return analyze(text) + cognate_keys(text)


def analyze_query(text: str) -> list[str]:
    """Terms of a question: as ``analyze``, less the question words and particles."""
    return [term for term in analyze(text) if term not in STOP_WORDS]


def cognate_keys(text: str) -> list[str]:
    """``~techn`` for "Technologie": the folded first letters of each long Latin word."""
    keys = []
    for word in _LONG_LATIN_WORD.findall(text):
        folded = "".join(c for c in unicodedata.normalize("NFKD", word.casefold()) if not unicodedata.combining(c))
        keys.append(COGNATE_PREFIX + folded[:COGNATE_LETTERS])
    return keys


_LONG_LATIN_WORD = re.compile(rf"[A-Za-z\u00c0-\u024f]{{{COGNATE_LETTERS},}}")


Postings = Callable[[str], "tuple[np.ndarray, np.ndarray] | None"]


class BM25:
    """Okapi BM25 over postings read term by term: nothing is loaded but the question's terms.

    ``postings(term)`` gives the ids of the chunks holding a term and how often
    each does; ``lengths`` holds each id's term count, negative for an id
    whose chunk is gone. The index keeps postings in SQLite
    (``qa.stages.index``), so a question reads a few rows whatever the size
    of the corpus.
    """

    def __init__(self, postings: Postings, lengths: np.ndarray, k1: float = 1.2, b: float = 0.75):
        self.k1, self.b = k1, b
        self._postings = functools.lru_cache(maxsize=256)(postings)
        live = lengths >= 0
        self.size = len(lengths)
        self.total = int(live.sum())
        average = float(lengths[live].mean()) if self.total else 0.0
        self._norm = (k1 * (1 - b + b * np.maximum(lengths, 0) / max(average, 1e-9))).astype(np.float32)

    @classmethod
    def of(cls, documents: list[list[str]], k1: float = 1.2, b: float = 0.75) -> "BM25":
        """An in-memory BM25 over term lists, id ``i`` for document ``i``."""
        found: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
        for position, terms in enumerate(documents):
            for term, count in Counter(terms).items():
                found[term][0].append(position)
                found[term][1].append(count)
        table = {term: (np.asarray(ids, np.int32), np.asarray(tfs, np.uint16)) for term, (ids, tfs) in found.items()}
        return cls(table.get, np.asarray([len(d) for d in documents], np.int32), k1, b)

    def holds(self, term: str) -> bool:
        return self._postings(term) is not None

    def idf(self, term: str) -> float:
        """The term's idf; a term no document holds gets the highest, as the rarest word would."""
        found = self._postings(term)
        held = len(found[0]) if found is not None else 0
        return math.log(1 + (self.total - held + 0.5) / (held + 0.5))

    def scores(self, weights: dict[str, float]) -> np.ndarray:
        """One BM25 score per id for weighted query terms (zeros where none match)."""
        scores = np.zeros(self.size, dtype=np.float32)
        for term, weight in weights.items():
            found = self._postings(term)
            if found is None:
                continue
            ids, counts = found
            counts = counts.astype(np.float32)
            scores[ids] += np.float32(weight * self.idf(term) * (self.k1 + 1)) * counts / (counts + self._norm[ids])
        return scores
