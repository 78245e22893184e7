"""Conversations: follow-up questions read against the turns before them.

Without an LLM a follow-up such as "Where was it signed?" names nothing to
search for; the previous questions do. Each turn is therefore retrieved with
the recent questions of the conversation appended, while the answer is still
composed for the question actually asked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qa.models import Answer

if TYPE_CHECKING:
    from qa.bot import Bot

# How many earlier questions a follow-up carries into retrieval.
TURNS_CARRIED = 2


class Conversation:
    """One thread of questions; ``bot.conversation()`` makes one."""

    def __init__(self, bot: "Bot"):
        self._bot = bot
        self.turns: list[Answer] = []

    def ask(self, question: str) -> Answer:
        history = [turn.question for turn in self.turns[-TURNS_CARRIED:]]
        answer = self._bot.ask(question, history=history)
        self.turns.append(answer)
        return answer

    def reset(self) -> None:
        self.turns.clear()
