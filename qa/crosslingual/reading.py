"""Readings: a quote in another language rendered in English beside it, from the glossing dictionaries.

Without an LLM the answer quotes the documents in their own language; an
English speaker asking about a Korean, Chinese or German article would get
nothing they can read. A reading renders the quote word by word with the same
dictionaries that gloss the index (CC-CEDICT through jieba, Kiwi and hanja for
Korean, FreeDict for German; see ``qa.crosslingual.gloss``), as running
English rather than a word list: one sense a word, dictionary notes and "to"
of verbs dropped, names, acronyms and numbers kept as the text writes them,
Korean names romanised, German function words and CJK punctuation carried
over. It keeps the source's word order, so it is a gist, and the faces always
show it labelled as a reading beside the exact quote, never in its place.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from qa.crosslingual.gloss import GlossedWord, loaded_glossary, needs_glosses
from qa.crosslingual.language import detect
from qa.crosslingual.lexicon import romanise

log = logging.getLogger(__name__)

# Languages a reading can be made from (the glossing dictionaries') and the one it is made in.
READABLE = frozenset({"de", "zh", "ko"})
READING_LANGUAGE = "en"
# How every face labels a reading, so nobody takes it for the quote.
READING_LABEL = "reading (word by word, from dictionaries)"

# German's closed classes, which FreeDict leaves as they stand: grammar, not vocabulary.
_GERMAN_FUNCTION = {
    "der": "the", "die": "the", "das": "the", "den": "the", "dem": "the", "des": "of the",
    "ein": "a", "eine": "a", "einen": "a", "einem": "a", "einer": "a", "eines": "of a",
    "und": "and", "oder": "or", "aber": "but", "sowie": "as well as", "auch": "also", "ebenfalls": "also",
    "mit": "with", "von": "of", "vom": "of the", "zu": "to", "zur": "to the", "zum": "to the",
    "im": "in the", "in": "in", "am": "at the", "an": "at", "auf": "on", "für": "for", "aus": "from",
    "bei": "at", "nach": "after", "über": "about", "unter": "among", "zwischen": "between", "durch": "through",
    "um": "around", "vor": "before", "seit": "since", "gegen": "against", "ohne": "without",
    "ist": "is", "sind": "are", "war": "was", "waren": "were", "wird": "is", "werden": "are", "wurde": "was",
    "wurden": "were", "hat": "has", "haben": "have", "hatte": "had", "sich": "", "es": "it", "sie": "they",
    "er": "he", "beide": "both", "beiden": "both", "nicht": "not", "sieht": "provides", "vor.": "for.",
    "darin": "therein", "zwei": "two", "drei": "three", "vier": "four", "fünf": "five", "zehn": "ten", "etwa": "such as", "eines": "of a", "dass": "that", "als": "as", "wie": "like",
}
# Chinese grammar words, read as the grammar they are: CC-CEDICT lists them by their old content senses first
# (在 "exist", 了 "finish", 等 "wait for", 被 "quilt", 中 "China"). Read only where jieba keeps the character as a word
# of its own; an empty reading drops a marker English has no word for (的, 了, 着).
_CHINESE_FUNCTION = {
    "的": "", "地": "", "得": "", "了": "", "着": "", "之": "of", "所": "", "把": "",
    "在": "in", "于": "in", "上": "on", "中": "in", "里": "in", "内": "within", "下": "under", "后": "after", "前": "before",
    "和": "and", "与": "and", "及": "and", "并": "and", "而": "and", "或": "or", "但": "but", "等": "etc.",
    "对": "to", "向": "towards", "为": "for", "以": "with", "由": "by", "被": "by", "从": "from", "将": "will",
    "会": "will", "可": "can", "能": "can", "是": "is", "有": "has", "也": "also", "还": "also", "又": "again",
    "都": "all", "已": "already", "便": "then", "就": "then", "其": "its", "该": "the", "此": "this", "这": "this",
    "更": "more", "最": "most", "很": "very", "不": "not", "没有": "not", "个": "",
}
_CJK_PUNCTUATION = str.maketrans({"，": ",", "。": ".", "、": ",", "：": ":", "；": ";", "？": "?", "！": "!", "（": "(", "）": ")",
                                  "“": '"', "”": '"', "《": '"', "》": '"', "「": '"', "」": '"', "ㆍ": "/", "·": "/", "△": "-", "▲": " "})  # one character for one: offsets stay
_KOREAN_CALENDAR = {"년": "year", "월": "month", "일": "day"}
_PIECE = re.compile(r"[\uac00-\ud7a3]+|[\u3400-\u4dbf\u4e00-\u9fff]+|[0-9A-Za-z\u00c0-\u024f][0-9A-Za-z\u00c0-\u024f.%&'’\-/]*|\S")
_NOTE = re.compile(r"\s*\([^)]*\)|\s*\[[^\]]*\]")


def sense(english: str) -> str:
    """One readable sense of a gloss: the plainest (fewest words; the first of equals), without notes or the "to" of a verb.

    CC-CEDICT and FreeDict often list a literal sense first (协力 "unite in
    common effort", then "cooperate"); the shorter one reads better in a sentence.
    """
    senses = [_NOTE.sub("", part).strip() for part in english.split(";")]
    senses = [part[3:] if part.startswith("to ") and len(part) > 3 else part for part in senses if part]
    return min(senses, key=lambda part: len(part.split())) if senses else ""


def render(quote: str, glosses: Sequence[GlossedWord], language: str) -> str:
    """The quote as running English: each glossed word by its sense, everything else as above."""
    parts: list[str] = []
    position = 0
    for start, end, english in sorted(glosses):
        if start < position:
            continue
        parts.extend(_unglossed(quote, position, start, language))
        word = _CHINESE_FUNCTION.get(quote[start:end], sense(english)) if language == "zh" else sense(english)
        if word and (not parts or parts[-1] != word):
            parts.append(word)
        position = end
    parts.extend(_unglossed(quote, position, len(quote), language))
    text = " ".join(part for part in parts if part)
    text = re.sub(r"\s+([,.;:!?)%])", r"\1", text)
    text = re.sub(r"([(])\s+", r"\1", text)
    text = re.sub(r"\(\s*\)", "", text)
    return re.sub(r"\s{2,}", " ", text).strip()


def _unglossed(quote: str, start: int, end: int, language: str) -> list[str]:
    """What the dictionaries left of ``quote[start:end]``: Latin words and numbers as written, CJK punctuation in ASCII, names romanised."""
    parts: list[str] = []
    text = quote.translate(_CJK_PUNCTUATION)
    for match in _PIECE.finditer(text, start, end):
        piece = match.group(0)
        before, after = text[match.start() - 1 : match.start()], text[match.end() : match.end() + 1]
        if "\uac00" <= piece[0] <= "\ud7a3":
            if before.isdigit() and piece[0] in _KOREAN_CALENDAR:
                parts.append(_KOREAN_CALENDAR[piece[0]])
            elif len(piece) >= 3 and not before.strip(" (▲") and not after.strip(" ("):
                parts.append(romanise(piece).capitalize())  # a whole word no dictionary knows: a name (민병주)
        elif "\u3400" <= piece[0] <= "\u9fff":
            continue  # a character CC-CEDICT has no word for: noise in English
        elif language == "de" and piece.lower() in _GERMAN_FUNCTION:
            parts.append(_GERMAN_FUNCTION[piece.lower()])
        else:
            parts.append(piece)
    return parts


def reading(quote: str, glosses: Sequence[GlossedWord], question_language: str) -> str | None:
    """An English reading of a quote in another language than the question's, or ``None`` when none is needed or possible.

    ``glosses`` are the quote's stored glosses (offsets in the quote); an
    index built without glosses has none, and the quote is glossed here.
    """
    language = detect(quote)
    if language == question_language or language not in READABLE:
        return None
    words = list(glosses)
    if not words and needs_glosses(quote):
        words = _gloss(quote)
    if not words:
        return None
    rendered = render(quote, words, language)
    return rendered or None


def _gloss(text: str) -> list[GlossedWord]:
    """Gloss at answer time (an index built without glosses): the dictionaries load once per process."""
    try:
        return loaded_glossary().gloss(text)
    except Exception as error:  # a missing dictionary must not fail an answer
        log.warning("no reading: the glossing dictionaries did not load (%s)", error)
        return []
