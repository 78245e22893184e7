"""The Slack face: which events deserve an answer, and the Block Kit that answers them.

Kept free of Bolt so that it can be read and tested as plain functions; the
wiring to Slack's transports lives in ``qa.faces.slack_app``. Only the ``Bot``
facade is called, and only through a Slack Web API client (``slack_sdk``'s
``WebClient`` or anything with its ``chat_postMessage``, ``chat_update`` and
``chat_postEphemeral`` methods).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from qa.bot import Bot
from qa.errors import QAError
from qa.faces.feedback import FeedbackLog, Vote
from qa.lru import LRU
from qa.crosslingual.reading import READING_LABEL
from qa.models import Answer
from qa.settings import Settings

if TYPE_CHECKING:
    from qa.chat import Conversation

log = logging.getLogger(__name__)

SLACK_API_URL = "https://slack.com/api/"
FEEDBACK_BLOCK = "qa_feedback"
VOTE_ACTIONS = {"qa_vote_up": "up", "qa_vote_down": "down"}
# Slack refuses a section whose text is over 3000 characters; quotes and
# snippets are cut well before, so a reply stays readable on a phone.
SECTION_LIMIT = 3000
QUOTE_LIMIT = 500
SNIPPET_LIMIT = 240
# Slack events remembered to drop its retries and the app_mention/message pair
# that one mention in a followed thread produces.
EVENTS_REMEMBERED = 5000
# Answers whose 👍/👎 can still be recorded; a vote names its answer by id.
ANSWERS_REMEMBERED = 5000

APOLOGY = "Sorry, something went wrong while I was answering. The error is logged; please try again in a moment."
HELP = "Ask me a question about the documents, e.g. _What did NIST sign with Korea?_"
EXPIRED_VOTE = "That answer is too old to rate (the bot restarted since). Ask again and rate the new answer."

_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")


class SlackSetupError(QAError):
    """A Slack token or URL is missing or malformed."""


class SlackConfig(BaseModel):
    """Slack credentials, from the environment because they are secrets, not settings."""

    model_config = ConfigDict(frozen=True)

    bot_token: str
    app_token: str | None = None
    signing_secret: str | None = None
    api_url: str = SLACK_API_URL

    @classmethod
    def from_env(cls, mode: Literal["socket", "http"]) -> "SlackConfig":
        """Every variable the mode needs, or one error naming all that are missing."""
        needed = ["SLACK_BOT_TOKEN", "SLACK_APP_TOKEN" if mode == "socket" else "SLACK_SIGNING_SECRET"]
        missing = [name for name in needed if not os.environ.get(name)]
        if missing:
            raise SlackSetupError(
                f"{' and '.join(missing)} not set: {mode} mode needs {' and '.join(needed)} (see README, 'Slack bot')"
            )
        api_url = os.environ.get("SLACK_API_URL") or SLACK_API_URL
        if not api_url.startswith(("http://", "https://")):
            raise SlackSetupError(f"SLACK_API_URL must be an http(s) URL, not {api_url!r}")
        return cls(
            bot_token=os.environ["SLACK_BOT_TOKEN"],
            app_token=os.environ.get("SLACK_APP_TOKEN") or None,
            signing_secret=os.environ.get("SLACK_SIGNING_SECRET") or None,
            # slack_sdk joins method names onto the base URL, so it must end in '/'.
            api_url=api_url if api_url.endswith("/") else api_url + "/",
        )


class SlackWeb(Protocol):
    def chat_postMessage(self, **kwargs: Any) -> Any: ...
    def chat_update(self, **kwargs: Any) -> Any: ...
    def chat_postEphemeral(self, **kwargs: Any) -> Any: ...


class Message(BaseModel):
    """A person's message, reduced to what deciding and answering need."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["app_mention", "message"]
    channel: str
    ts: str
    thread_ts: str
    user: str
    text: str
    direct: bool

    @property
    def question(self) -> str:
        return " ".join(_MENTION.sub(" ", self.text).split())

    @property
    def starts_thread(self) -> bool:
        return self.thread_ts == self.ts


def message_of(kind: str, event: dict[str, Any], bot_user_id: str | None) -> Message | None:
    """The person's message in an event; None for edits, joins, bots (this one included) and the like."""
    if kind not in ("app_mention", "message") or event.get("subtype") or event.get("bot_id"):
        return None
    user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
    if not (user and channel and ts) or user == bot_user_id:
        return None
    return Message(
        kind=kind,
        channel=channel,
        ts=ts,
        thread_ts=event.get("thread_ts") or ts,
        user=user,
        text=event.get("text") or "",
        direct=event.get("channel_type") == "im",
    )


@dataclass
class Thread:
    """A Slack thread is a conversation; ``started`` if the bot's answer opened it."""

    conversation: "Conversation"
    started: bool


def should_answer(message: Message, thread: Thread | None, channels: list[str]) -> bool:
    """Every DM; in channels, mentions, and follow-ups in a thread the bot started.

    A mention in someone else's thread is answered, but does not make the bot
    answer the rest of that thread: people there were not talking to it.
    """
    if message.direct:
        return True
    if channels and message.channel not in channels:
        return False
    if message.kind == "app_mention":
        return True
    return not message.starts_thread and thread is not None and thread.started


def mrkdwn_escape(text: str) -> str:
    """Slack's three control characters; anything else is shown as typed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _quoted(text: str) -> str:
    return "\n".join(f">{line}" for line in mrkdwn_escape(text).splitlines() or [""])


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, SECTION_LIMIT), "verbatim": True}}


def answer_blocks(answer: Answer, answer_id: str) -> list[dict[str, Any]]:
    """The reply: the answer, each citation with its quote, the passages behind it, and 👍/👎."""
    blocks = [_section(mrkdwn_escape(answer.answer))]
    if answer.abstained and answer.reason:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn_escape(answer.reason), "verbatim": True}]})
    for number, citation in enumerate(answer.citations, start=1):
        text = f"*[{number}]* `{citation.label}`\n{_quoted(_cut(citation.quote, QUOTE_LIMIT))}"
        if citation.reading:
            text += f"\n_{READING_LABEL}:_ {mrkdwn_escape(_cut(citation.reading, QUOTE_LIMIT))}"
        blocks.append(_section(text))
    if answer.passages:
        blocks.append({"type": "divider"})
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "*Sources*"}]})
        for passage in answer.passages:
            snippet = _cut(" ".join(passage.text.split()), SNIPPET_LIMIT)
            location = passage.label
            blocks.append(
                {
                    "type": "context",
                    "elements": [
                        {
                            "type": "mrkdwn",
                            "text": f"{passage.rank}. `{location}` (score {passage.score:.3f}) {mrkdwn_escape(snippet)}",
                            "verbatim": True,
                        }
                    ],
                }
            )
    blocks.append(
        {
            "type": "actions",
            "block_id": FEEDBACK_BLOCK,
            "elements": [
                {
                    "type": "button",
                    "action_id": action,
                    "text": {"type": "plain_text", "text": "👍" if vote == "up" else "👎", "emoji": True},
                    "value": answer_id,
                }
                for action, vote in VOTE_ACTIONS.items()
            ],
        }
    )
    return blocks


def notice_blocks(text: str) -> list[dict[str, Any]]:
    return [_section(mrkdwn_escape(text))]


def voted_blocks(blocks: list[dict[str, Any]], vote: str, user: str) -> list[dict[str, Any]]:
    """The answer as it was, its buttons replaced by who voted what, so nobody votes twice by accident."""
    thanks = {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": f"{'👍' if vote == 'up' else '👎'} from <@{user}>, thanks: the vote is logged."}],
    }
    return [thanks if block.get("block_id") == FEEDBACK_BLOCK else block for block in blocks]


@dataclass(frozen=True)
class Answered:
    """What a later vote on an answer needs to be logged."""

    answer: Answer
    history: list[str]
    channel: str
    thread_ts: str


@dataclass
class SlackBot:
    """Answers Slack messages through a ``Bot``; one instance serves the whole workspace."""

    bot: Bot
    web: SlackWeb
    feedback: FeedbackLog
    channels: list[str]
    threads: LRU[tuple[str, str], Thread]
    seen: LRU[str, None] = field(default_factory=lambda: LRU(EVENTS_REMEMBERED))
    answered: LRU[str, Answered] = field(default_factory=lambda: LRU(ANSWERS_REMEMBERED))
    # The Bot promises no thread safety and retrieval is CPU-bound anyway, so
    # questions are answered one at a time.
    asking: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(cls, bot: Bot, web: SlackWeb, settings: Settings) -> "SlackBot":
        return cls(
            bot=bot,
            web=web,
            feedback=FeedbackLog(settings.feedback_log),
            channels=settings.slack_channels,
            threads=LRU(settings.conversations),
        )

    def on_event(self, kind: str, event: dict[str, Any], event_id: str | None, bot_user_id: str | None) -> bool:
        """Answer the event if it is a question for the bot; True if it was answered.

        Called once the event is acknowledged, so it may take its time. Slack's
        retries repeat the event_id, and a mention in a followed thread comes
        both as app_mention and as message with the same ts: either way only
        the first delivery is answered.
        """
        message = message_of(kind, event, bot_user_id)
        if message is None:
            return False
        thread = self.threads.get((message.channel, message.thread_ts))
        if not should_answer(message, thread, self.channels):
            return False
        keys = [f"msg:{message.channel}:{message.ts}"] + ([f"event:{event_id}"] if event_id else [])
        if not self.seen.claim(*keys):
            log.info("event %s for %s:%s already answered; ignoring the repeat", event_id, message.channel, message.ts)
            return False
        self.answer(message)
        return True

    def answer(self, message: Message) -> None:
        """Reply in the message's thread; whatever fails, the thread gets a reply and the log the reason.

        The answer is posted as one message rather than a placeholder edited
        in place: the bot is warmed at start and answers well within a second,
        so a "searching…" message would only flicker.
        """
        try:
            text, blocks = self._reply(message)
        except QAError as error:
            text, blocks = str(error), notice_blocks(str(error))
        except Exception:
            log.exception("failed to answer %r in %s:%s", message.question, message.channel, message.ts)
            text, blocks = APOLOGY, notice_blocks(APOLOGY)
        try:
            self._post(message, text, blocks)
        except Exception:
            log.exception("could not post the answer in %s:%s; posting an apology instead", message.channel, message.ts)
            self._post(message, APOLOGY, notice_blocks(APOLOGY))

    def _post(self, message: Message, text: str, blocks: list[dict[str, Any]]) -> None:
        self.web.chat_postMessage(
            channel=message.channel,
            thread_ts=message.thread_ts,
            text=text,
            blocks=blocks,
            unfurl_links=False,
            unfurl_media=False,
        )

    def _reply(self, message: Message) -> tuple[str, list[dict[str, Any]]]:
        if not message.question:
            return HELP, notice_blocks(HELP)
        thread = self.threads.get_or_create(
            (message.channel, message.thread_ts),
            lambda: Thread(self.bot.conversation(), started=message.starts_thread),
        )
        with self.asking:
            history = [turn.question for turn in thread.conversation.turns]
            answer = thread.conversation.ask(message.question)
        answer_id = uuid.uuid4().hex
        self.answered.put(answer_id, Answered(answer, history, message.channel, message.thread_ts))
        return _cut(mrkdwn_escape(answer.answer), SECTION_LIMIT), answer_blocks(answer, answer_id)

    def on_vote(self, action_id: str, answer_id: str, user: str, channel: str, message: dict[str, Any]) -> None:
        """Log a 👍/👎 and replace the buttons with a thank-you."""
        vote = VOTE_ACTIONS[action_id]
        answered = self.answered.get(answer_id)
        if answered is None:
            self.web.chat_postEphemeral(channel=channel, user=user, text=EXPIRED_VOTE)
            return
        self.feedback.append(
            Vote.of(vote, answered.answer, answered.history, user=user, channel=channel, thread_ts=answered.thread_ts)
        )
        self.web.chat_update(
            channel=channel, ts=message["ts"], text=message.get("text", ""), blocks=voted_blocks(message.get("blocks", []), vote, user)
        )
