"""Analyse a question once, into the ``Question`` that retrieval, abstention and answering share.

Everything a later stage needs from the question's words is computed here and
nowhere else: its lexical terms, their bridged translations, the names and
numbers it mentions (and which of them no document holds), the conversation
context a follow-up leans on, the kind of short answer it asks for, and its
language.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from qa.crosslingual.bridge import Bridge
from qa.crosslingual.language import detect
from qa.models import AnswerType, Question
from qa.stages.followup import context, entities
from qa.stages.lexical import analyze_query

_SALIENT = re.compile(r"[^\W_](?:[\w&]|[-./](?=\w))*")

# What a question asks for, by its question words (English, German, Spanish, Chinese, Korean, Russian).
# First match wins: "In which year" is a date before "which" makes it anything else.
_ANSWER_TYPES: tuple[tuple[AnswerType, re.Pattern[str]], ...] = (
    ("date", re.compile(
        r"\b(?:when|what (?:year|date|day|month|time)|which (?:year|date|day|month)|in what year|how long ago|"
        r"wann|in welchem jahr|an welchem tag|cuándo|en qué año|когда|в каком году)\b|何时|什么时候|哪一?年|几月|哪天|언제|몇 년|몇년",
        re.IGNORECASE,
    )),
    ("number", re.compile(
        r"\b(?:how (?:many|much|far|long|old|large|big|high|tall)|what (?:percentage|percent|number|amount|share)|"
        r"wie (?:viele?|hoch|lange|weit|alt|groß)|cuántos?|cuántas?|cuánto|сколько)\b|多少|几个|几名|几家|多大|多长|몇|얼마",
        re.IGNORECASE,
    )),
    ("person", re.compile(r"\b(?:who|whom|whose|wer|wem|wen|wessen|quién|quiénes|кто|кого)\b|谁|누가|누구", re.IGNORECASE)),
    ("place", re.compile(r"\b(?:where|wo|wohin|woher|dónde|где|куда)\b|哪里|哪儿|在哪|어디", re.IGNORECASE)),
)


def answer_type(text: str) -> AnswerType:
    """The kind of short answer the question asks for, by its question words; ``other`` when it asks for none."""
    for kind, pattern in _ANSWER_TYPES:
        if pattern.search(text):
            return kind
    return "other"


def salient_words(text: str) -> list[str]:
    """Words that name something exactly: acronyms of three capitals or more, and numbers.

    Capitalised words are left out (German capitalises every noun), and so
    are two-letter abbreviations such as "PM" or "MoU", which documents
    usually spell out instead.
    """
    return [word for word in _SALIENT.findall(text) if any(c.isdigit() for c in word) or sum(c.isupper() for c in word) >= 3]


def weighted_terms(terms: Sequence[str], alternatives: Sequence[Sequence[dict[str, float]]]) -> dict[str, float]:
    """The question's own terms at 1.0 and every bridged term at its best weight below that."""
    weights = dict.fromkeys(terms, 1.0)
    for group in alternatives:
        for translation in group:
            for term, weight in translation.items():
                if term not in terms:
                    weights[term] = max(weights.get(term, 0.0), weight)
    return weights


def analyse(
    text: str,
    earlier: Sequence[Question] = (),
    bridge: Bridge | None = None,
    known: Callable[[str], bool] | None = None,
    standalone: str | None = None,
) -> Question:
    """The question, read in its conversation (``earlier``, oldest first).

    ``known`` says whether some document holds a word; without it no name is
    called unknown. ``standalone`` is the question as an LLM rewrote it, which
    replaces the conversation's context.
    """
    own_entities = entities(text)
    if standalone is not None:
        search = focus = standalone
    else:
        search, focus = context(text, own_entities, earlier)
    terms = analyze_query(search)
    alternatives = bridge.alternatives(search, terms) if bridge is not None else []
    if focus == search:
        focus_terms, focus_alternatives = terms, alternatives
    else:
        focus_terms = analyze_query(focus)
        focus_alternatives = bridge.alternatives(focus, focus_terms) if bridge is not None else []
    names = salient_words(text)
    unknown = [word for word in names if known is not None and not known(word)]
    return Question(
        text=text,
        language=detect(text),
        search=search,
        focus=focus,
        terms=tuple(terms),
        alternatives=tuple(tuple(group) for group in alternatives),
        weights=weighted_terms(focus_terms, focus_alternatives),
        entities=tuple(own_entities),
        names=tuple(names),
        unknown_names=tuple(unknown),
        answer_type=answer_type(text),
    )
