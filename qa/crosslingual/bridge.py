"""Cross-lingual bridges: extra query terms in the documents' languages.

The default embedding model reads English only, so an English question over a
Korean article is matched on what both share: acronyms, numbers, names. This
module widens that overlap without any hand-written list of the corpus's own
words (each can be turned off with the ``bridges`` setting):

- ``aliases`` the corpus itself states, a local name followed by its acronym
  in brackets: ``국립표준기술연구소(NIST)``, ``印度太平洋(FOIP)``;
- ``dictionary``: bilingual lexicons from maintained packages (CC-CEDICT and
  its hanja readings, CLDR names through babel, the German glosses read
  backwards), cut down to the words the corpus uses;
- ``sounds``: Hangul loanwords that sound and spell like the English word;
- ``cognates``: long Latin words that begin alike ("astronauts" ~ "Astronauten").

Each source yields ``Expansion`` terms with a weight below 1, so a bridged
term can lift a passage but never outweighs a word the question really holds.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from qa.stages.lexical import COGNATE_PREFIX, STOP_WORDS, analyze, analyze_query, cognate_keys
from qa.crosslingual.lexicon import SOUND_PREFIX, english_key, english_skeleton, spelling_distance

ALIAS_WEIGHT = 0.6
# A dictionary translation counts almost as the word itself (0.9 measured best of
# 0.25-1.5 on the seeds and XQuAD zh); below 1, so the question's own words set the ceiling.
LEXICON_WEIGHT = 0.9
# A question word reaches a Hangul word of the same consonants when their spellings are
# this close: looser than a gloss needs (0.3, qa.crosslingual.lexicon), since only words the corpus
# holds are candidates ("channel" ~ 채널 at 0.4; "Korean" is not 그린, at 0.5).
SOUND_MAX_DISTANCE = 0.4
# A cognate weighs half a word (measured 0.3-1.0 on the seeds and XQuAD): a shared beginning
# is evidence, not proof ("Technologie" is "technology", "Konkurrenz" is not "concurrency").
COGNATE_WEIGHT = 0.5

# A Chinese/Japanese name, or up to three Korean words, directly followed by a
# bracketed Latin name or acronym: 国立标准(NIST), 로리 로카시오(Laurie E. Locascio).
_ALIAS = re.compile(
    r"(?P<name>[\u3400-\u9fff\u3040-\u30ff·ㆍ]{2,16}|(?:[\uac00-\ud7a3]+ ){0,2}[\uac00-\ud7a3]+)"
    r"\s?[(（](?P<code>[A-Za-z][A-Za-z0-9&+.\- ]{1,40}?)[)）]"
)


def mine_aliases(text: str) -> dict[str, list[str]]:
    """``{term of the Latin name: [local names]}`` from ``name(CODE)`` patterns in one text."""
    found: dict[str, list[str]] = defaultdict(list)
    for match in _ALIAS.finditer(text):
        name, code = match.group("name").strip(), match.group("code").strip()
        for key in analyze(code):
            if len(key) >= 2 and not key.isdigit() and name not in found[key]:
                found[key].append(name)
    return dict(found)


def merge_aliases(maps: Iterable[dict[str, list[str]]]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = defaultdict(list)
    for aliases in maps:
        for key, names in aliases.items():
            for name in names:
                if name not in merged[key]:
                    merged[key].append(name)
    return dict(merged)


BRIDGES = ("aliases", "dictionary", "sounds", "cognates")


class Bridge:
    """Expands a question's terms with weighted terms in other languages."""

    def __init__(
        self,
        aliases: dict[str, list[str]],
        lexicon: dict[str, list[str]] | None = None,
        enabled: Iterable[str] = BRIDGES,
    ):
        self.aliases = aliases
        self.lexicon = lexicon or {}
        self.enabled = frozenset(enabled)

    def alternatives(self, question: str, terms: list[str]) -> list[list[dict[str, float]]]:
        """For each bridged word of the question, its translations as weighted terms.

        The translations of one word are alternatives: a passage is credited
        for the best one it holds, not for all of them, so a word with seven
        Chinese renderings counts once, like a word matched as it stands.
        """
        have = set(terms)
        groups: list[list[dict[str, float]]] = []

        def add(texts: Iterable[str], weight: float) -> None:
            """A bridged name weighs as one word, however many terms it splits into."""
            group = []
            for text in texts:
                found = [term for term in dict.fromkeys(analyze(text)) if term not in have]
                if found:
                    group.append({term: weight / len(found) for term in found})
            if group:
                groups.append(group)

        if "aliases" in self.enabled:
            for term in dict.fromkeys(terms):
                add(self.aliases.get(term, ()), ALIAS_WEIGHT)
        if "dictionary" in self.enabled:
            for key in _phrases(question):
                add(self.lexicon.get(key, ()), LEXICON_WEIGHT)
        if "sounds" in self.enabled:
            for word in re.findall(r"[A-Za-z]{4,}", question):
                if word.lower() not in STOP_WORDS:
                    heard = self.lexicon.get(SOUND_PREFIX + english_skeleton(word), ())
                    add([hangul for hangul in heard if spelling_distance(word, hangul) <= SOUND_MAX_DISTANCE], LEXICON_WEIGHT)
        if "cognates" in self.enabled:
            # A cognate is the word's alternative, not an addition to it: "Japan" in a
            # German text must not count again as "~japan".
            seen = set()
            for word in _LONG_WORD.findall(question):
                own, keys = analyze_query(word), cognate_keys(word)
                if own and keys and keys[0] not in seen:
                    seen.add(keys[0])
                    groups.append([{own[0]: 1.0}, {keys[0]: COGNATE_WEIGHT}])
        return groups

    def translates(self, word: str) -> bool:
        """Does a bridge carry the word into another language? A cognate key is no translation."""
        own = set(analyze_query(word))
        return any(
            term not in own and not term.startswith(COGNATE_PREFIX)
            for group in self.alternatives(word, list(own))
            for translation in group
            for term in translation
        )


_LONG_WORD = re.compile(r"[^\W\d_]{5,}")


def _phrases(question: str) -> list[str]:
    """Lexicon keys a question may hold: stemmed words, pairs and triples, no stop words at the ends."""
    words = re.findall(r"[a-z0-9]+", question.lower())
    phrases = []
    for size in (1, 2, 3):
        for start in range(len(words) - size + 1):
            window = words[start : start + size]
            if window[0] in STOP_WORDS or window[-1] in STOP_WORDS:
                continue
            phrases.append(english_key(" ".join(window)))
    return phrases
