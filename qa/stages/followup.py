"""Follow-up questions made searchable without an LLM.

"Where was it signed?" names nothing to search for; the conversation does.
A question that leans on the conversation (it has a pronoun or a vague
reference such as "it", "he", "there", "that collaboration", "es", "그", "它",
or names no entity of its own) is searched together with what the earlier
turns were about:

* the entities of the recent questions (acronyms, capitalised names, numbers,
  CJK words), most recent first: "NIST", "Korea";
* the whole last question, whose content words ("sign") and meaning steer
  both lexical and dense retrieval back to the topic.

The earlier answers' own sentences are deliberately not carried: when an
earlier answer quoted the wrong passage, carrying it would pull every later
turn to that passage too (on the multi-turn golden file it halved the
answers found).

A question that stands on its own is searched alone, so that changing the
subject does not drag the old topic along. The answer is always composed for
the question as asked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.models import Question
from qa.stages.lexical import analyze_query

# How many earlier turns a follow-up carries into retrieval.
TURNS_CARRIED = 2

_REFERENCES = frozenset(
    """
    it its it's he him his she her they them their there that those this these such former latter same
    one ones so also again else
    es er sie ihm ihn ihr ihre sein seine dort dabei dazu damit darauf dafür davon diese dieser dieses jene
    """.split()
)
_CJK_REFERENCES = ("그 ", "그는", "그가", "그의", "그곳", "거기", "이것", "그것", "해당", "它", "他", "她", "其", "该", "这", "那")
_WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")
_ENTITY = re.compile(r"^(?:[A-Z][\w&.-]*|[\w-]*\d[\w-]*|[A-Z]{2,}\w*)$")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7a3]")


def entities(question: str) -> list[str]:
    """Names, codes and numbers a question mentions; CJK questions keep their content words."""
    words = _WORD.findall(question)
    found = []
    for position, word in enumerate(words):
        if _CJK.search(word):
            if analyze_query(word):
                found.append(word)
        elif _ENTITY.match(word) and (position > 0 or word.isupper() or any(c.isdigit() for c in word)):
            found.append(word)
    return found


def is_follow_up(question: str, own_entities: list[str]) -> bool:
    """Does the question lean on earlier turns: a reference word, or no entity of its own?"""
    words = {word.casefold() for word in _WORD.findall(question)}
    if words & _REFERENCES or any(marker in question for marker in _CJK_REFERENCES):
        return True
    return not own_entities


def context(question: str, own_entities: list[str], earlier: Sequence[Question]) -> tuple[str, str]:
    """``(search, focus)``: the question plus the conversation's context if it leans on it.

    ``search`` goes to retrieval; ``focus`` (the question and the entities it
    refers to, without the earlier question's other words) picks the answer's
    sentences, so that a follow-up is not answered by the sentence that
    answered the turn before.
    """
    recent = list(earlier)[-TURNS_CARRIED:]
    if not recent or not is_follow_up(question, own_entities):
        return question, question
    carried: list[str] = []
    for turn in reversed(recent):
        carried.extend(entity for entity in turn.entities if entity not in carried)
    focus = " ".join([question, *carried])
    return f"{focus} {recent[-1].text}", focus
