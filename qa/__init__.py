"""qa: answer questions from documents in any language, citing file and lines.

    from qa import Bot
    answer = Bot.load().ask("What did NIST sign with Korea?")
    print(answer.answer, answer.citations[0].label)
"""

from qa.bot import Bot, IndexReport
from qa.errors import QAError
from qa.models import Answer, Chunk, Citation, Document, Passage
from qa.settings import Settings

__all__ = ["Answer", "Bot", "Chunk", "Citation", "Document", "IndexReport", "Passage", "QAError", "Settings"]
