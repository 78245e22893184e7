"""Conversations: follow-up questions read against the turns before them.

``bot.conversation()`` is the whole API the faces need (the CLI's ``qa chat``,
the Slack bot): ``ask`` a question, read ``turns``, ``reset``. How a follow-up
is understood lives in ``Bot.ask``: condensed by the LLM when one is
configured, else searched with the entities and evidence of the earlier turns
(see ``qa.stages.followup``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qa.stages.llm import TextSink
from qa.models import Answer

if TYPE_CHECKING:
    from qa.bot import Bot


class Conversation:
    """One thread of questions; ``bot.conversation()`` makes one."""

    def __init__(self, bot: "Bot"):
        self._bot = bot
        self.turns: list[Answer] = []

    def ask(self, question: str, on_text: TextSink | None = None) -> Answer:
        """Answer in the light of the earlier turns; ``on_text`` receives an LLM answer as it streams."""
        answer = self._bot.ask(question, history=self.turns, on_text=on_text)
        # Only the last turns are ever read back (follow-ups look two or four back),
        # and of the earlier ones only their questions and answers, never their passages
        # (/sources shows the last turn's): a conversation of any length holds a bounded
        # number of answers, each a few kilobytes.
        if self.turns:
            self.turns[-1] = self.turns[-1].model_copy(update={"passages": []})
        self.turns.append(answer)
        del self.turns[: -self._bot.settings.conversation_turns]
        return answer

    def reset(self) -> None:
        self.turns.clear()
