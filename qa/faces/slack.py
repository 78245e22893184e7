"""The Slack face: which events deserve an answer, and the Block Kit that answers them.

Kept free of Bolt so that it can be read and tested as plain functions; the
wiring to Slack's transports lives in ``qa.faces.slack_app``. Only the ``Bot``
facade is called (one per collection: channels can be mapped to index
folders of their own), and only through a Slack Web API client
(``slack_sdk``'s ``WebClient`` or anything with its ``chat_*`` and
``reactions_*`` methods).

Questions are answered on the caller's threads (Bolt's bounded worker pool),
concurrently: one slow LLM answer holds up only its own Slack thread, whose
questions are answered in order because each follow-up reads the turns
before it.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from qa.bot import Bot
from qa.errors import QAError
from qa.faces.feedback import FeedbackLog, Vote
from qa.lru import LRU
from qa.crosslingual.reading import READING_LABEL
from qa.models import Answer
from qa.questionlog import QuestionLog
from qa.settings import Settings

if TYPE_CHECKING:
    from qa.chat import Conversation

log = logging.getLogger(__name__)

SLACK_API_URL = "https://slack.com/api/"
FEEDBACK_BLOCK = "qa_feedback"
VOTE_ACTIONS = {"qa_vote_up": "up", "qa_vote_down": "down"}
SHARE_ACTION = "qa_share"
SLASH_COMMAND = "/qa"
WORKING = "eyes"  # the 👀 reaction on a question while it is being answered
# An LLM answer streams into its message, edited at most this often (seconds):
# chat.update is rate-limited per workspace (Slack's tier 3, about 50 a minute),
# and several answers may stream at once.
STREAM_INTERVAL = 2.0
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
ALREADY_VOTED = "You have rated that answer already; thanks."
EXPIRED_VOTE = "That answer is too old to rate (the bot restarted since). Ask again and rate the new answer."
EXPIRED_SHARE = "That answer is too old to share (the bot restarted since). Ask again with /qa and share the new answer."
NOT_HERE = "I don't answer in this channel; ask me in one of the channels I serve, or in a direct message."

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
    def reactions_add(self, **kwargs: Any) -> Any: ...
    def reactions_remove(self, **kwargs: Any) -> Any: ...


# Bolt's ``respond``: posts to a slash command's response_url.
Respond = Callable[..., Any]


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
    """A Slack thread is a conversation; ``started`` if the bot's answer opened it.

    ``lock`` keeps one thread's questions in order: a follow-up must see the
    answer before it. Other threads are answered meanwhile.
    """

    conversation: "Conversation"
    started: bool
    lock: threading.Lock = field(default_factory=threading.Lock)


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


def _button(action_id: str, text: str, value: str) -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": text, "emoji": True}, "value": value}


def answer_blocks(answer: Answer, answer_id: str, share: bool = False) -> list[dict[str, Any]]:
    """The reply: the answer, each citation with its quote, the passages behind it, and 👍/👎.

    A private (``/qa``) answer offers "Share in channel" instead of votes: it
    is voted on once shared, where the channel sees it.
    """
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
    if share:
        buttons = [_button(SHARE_ACTION, "Share in channel", answer_id) | {"style": "primary"}]
    else:
        buttons = [_button(action, "👍" if vote == "up" else "👎", answer_id) for action, vote in VOTE_ACTIONS.items()]
    blocks.append({"type": "actions", "block_id": FEEDBACK_BLOCK, "elements": buttons})
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


class Streamer:
    """Shows an LLM answer as it streams: one message in the thread, edited at most every ``interval`` seconds.

    The first piece posts the message, later ones edit it; ``finish`` puts the
    final answer with its blocks in place (or posts it, if nothing streamed).
    A failed interim post or edit is logged and skipped: the final one still
    comes.
    """

    def __init__(self, web: SlackWeb, channel: str, thread_ts: str, interval: float = STREAM_INTERVAL, clock: Callable[[], float] = time.monotonic):
        self.web = web
        self.channel = channel
        self.thread_ts = thread_ts
        self.interval = interval
        self.clock = clock
        self.text = ""
        self.ts: str | None = None
        self.shown_at = 0.0

    def __call__(self, piece: str) -> None:
        self.text += piece
        now = self.clock()
        if self.ts is not None and now - self.shown_at < self.interval:
            return
        interim = _cut(mrkdwn_escape(self.text), SECTION_LIMIT - 2) + " …"
        try:
            if self.ts is None:
                self.ts = self.web.chat_postMessage(
                    channel=self.channel, thread_ts=self.thread_ts, text=interim, blocks=notice_blocks(self.text + " …"), unfurl_links=False, unfurl_media=False
                )["ts"]
            else:
                self.web.chat_update(channel=self.channel, ts=self.ts, text=interim, blocks=notice_blocks(self.text + " …"))
        except Exception as error:
            log.warning("could not show the streaming answer in %s:%s: %s", self.channel, self.thread_ts, error)
        self.shown_at = now

    def finish(self, text: str, blocks: list[dict[str, Any]]) -> None:
        if self.ts is None:
            self.web.chat_postMessage(
                channel=self.channel, thread_ts=self.thread_ts, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
            )
        else:
            self.web.chat_update(channel=self.channel, ts=self.ts, text=text, blocks=blocks)


@dataclass(frozen=True)
class Answered:
    """What a later vote on (or share of) an answer needs."""

    answer: Answer
    history: list[str]
    channel: str
    thread_ts: str | None
    bot: Bot | None = None  # the collection that answered a /qa, for the shared thread's follow-ups


@dataclass
class SlackBot:
    """Answers Slack messages and ``/qa`` commands; one instance serves the whole workspace.

    ``bot`` answers every channel not in ``collections`` (channel ID → the
    ``Bot`` of that channel's index folder) and every DM.
    """

    bot: Bot
    web: SlackWeb
    feedback: FeedbackLog
    channels: list[str]
    threads: LRU[tuple[str, str], Thread]
    questions: QuestionLog
    collections: dict[str, Bot] = field(default_factory=dict)
    stream_interval: float = STREAM_INTERVAL
    seen: LRU[str, None] = field(default_factory=lambda: LRU(EVENTS_REMEMBERED))
    answered: LRU[str, Answered] = field(default_factory=lambda: LRU(ANSWERS_REMEMBERED))
    votes: LRU[str, None] = field(default_factory=lambda: LRU(ANSWERS_REMEMBERED))

    @classmethod
    def create(cls, bot: Bot, web: SlackWeb, settings: Settings, collections: dict[str, Bot] | None = None) -> "SlackBot":
        return cls(
            bot=bot,
            web=web,
            feedback=FeedbackLog(settings.feedback_log),
            channels=settings.slack_channels,
            threads=LRU(settings.conversations),
            questions=QuestionLog.from_settings(settings),
            collections=collections or {},
        )

    def bot_for(self, channel: str) -> Bot:
        return self.collections.get(channel, self.bot)

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
        """Reply in the message's thread, 👀 on the question meanwhile; whatever fails, the thread gets a reply and the log the reason.

        An extractive answer comes within a second and is posted once; an
        LLM's streams into its message (``Streamer``).
        """
        self._react("reactions_add", message)
        stream = Streamer(self.web, message.channel, message.thread_ts, self.stream_interval)
        try:
            try:
                text, blocks = self._reply(message, stream)
            except QAError as error:
                text, blocks = str(error), notice_blocks(str(error))
            except Exception:
                log.exception("failed to answer %r in %s:%s", message.question, message.channel, message.ts)
                text, blocks = APOLOGY, notice_blocks(APOLOGY)
            try:
                stream.finish(text, blocks)
            except Exception:
                log.exception("could not post the answer in %s:%s; posting an apology instead", message.channel, message.ts)
                stream.finish(APOLOGY, notice_blocks(APOLOGY))
        finally:
            self._react("reactions_remove", message)

    def _react(self, method: str, message: Message) -> None:
        """The 👀 sign is a courtesy: without the reactions:write scope, or on any error, the answer still comes."""
        try:
            getattr(self.web, method)(channel=message.channel, timestamp=message.ts, name=WORKING)
        except Exception as error:
            log.warning("%s %s on %s:%s failed: %s", method, WORKING, message.channel, message.ts, error)

    def _reply(self, message: Message, on_text: Callable[[str], None]) -> tuple[str, list[dict[str, Any]]]:
        if not message.question:
            return HELP, notice_blocks(HELP)
        bot = self.bot_for(message.channel)
        thread = self.threads.get_or_create(
            (message.channel, message.thread_ts),
            lambda: Thread(bot.conversation(), started=message.starts_thread),
        )
        answer_id = uuid.uuid4().hex
        with thread.lock:
            history = [turn.question for turn in thread.conversation.turns]
            answer = self.questions.asked(
                "slack",
                thread.conversation.ask,
                message.question,
                who=message.user,
                history=history,
                collection=self._collection(message.channel),
                entry_id=answer_id,
                on_text=on_text,
            )
        self.answered.put(answer_id, Answered(answer, history, message.channel, message.thread_ts))
        return _cut(mrkdwn_escape(answer.answer), SECTION_LIMIT), answer_blocks(answer, answer_id)

    def _collection(self, channel: str) -> str:
        return str(self.bot_for(channel).settings.index_dir)

    def on_command(self, command: dict[str, Any], respond: Respond) -> None:
        """``/qa QUESTION``: answered privately (ephemeral), with a button to share the answer in the channel."""
        channel, user = command.get("channel_id", ""), command.get("user_id", "")
        question = " ".join((command.get("text") or "").split())
        if self.channels and channel not in self.channels and not channel.startswith("D"):
            respond(response_type="ephemeral", text=NOT_HERE, blocks=notice_blocks(NOT_HERE))
            return
        if not question:
            respond(response_type="ephemeral", text=HELP, blocks=notice_blocks(HELP))
            return
        answer_id = uuid.uuid4().hex
        try:
            bot = self.bot_for(channel)
            answer = self.questions.asked("slack", bot.ask, question, who=user, collection=self._collection(channel), entry_id=answer_id)
            self.answered.put(answer_id, Answered(answer, [], channel, None, bot))
            text, blocks = _cut(mrkdwn_escape(answer.answer), SECTION_LIMIT), answer_blocks(answer, answer_id, share=True)
        except QAError as error:
            text, blocks = str(error), notice_blocks(str(error))
        except Exception:
            log.exception("failed to answer /qa %r in %s", question, channel)
            text, blocks = APOLOGY, notice_blocks(APOLOGY)
        respond(response_type="ephemeral", text=text, blocks=blocks)

    def on_share(self, answer_id: str, user: str, channel: str, respond: Respond) -> None:
        """Post a private answer in the channel for all, as a thread whose follow-ups the bot answers; drop the private copy."""
        answered = self.answered.get(answer_id)
        if answered is None:
            respond(response_type="ephemeral", replace_original=False, text=EXPIRED_SHARE)
            return
        blocks = answer_blocks(answered.answer, answer_id)
        blocks.insert(0, {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<@{user}> asked: {mrkdwn_escape(answered.answer.question)}"}]})
        try:
            posted = self.web.chat_postMessage(
                channel=channel, text=_cut(mrkdwn_escape(answered.answer.answer), SECTION_LIMIT), blocks=blocks, unfurl_links=False, unfurl_media=False
            )
        except Exception as error:
            log.warning("could not share answer %s in %s: %s", answer_id, channel, error)
            respond(response_type="ephemeral", replace_original=False, text=f"I could not post in this channel ({error}); invite me with /invite @qa first.")
            return
        conversation = (answered.bot or self.bot_for(channel)).conversation()
        conversation.turns.append(answered.answer)
        self.threads.put((channel, posted["ts"]), Thread(conversation, started=True))
        self.answered.put(answer_id, Answered(answered.answer, [], channel, posted["ts"]))
        respond(delete_original=True)

    def on_vote(self, action_id: str, answer_id: str, user: str, channel: str, message: dict[str, Any]) -> None:
        """Log a 👍/👎 (feedback log and question log) and replace the buttons with a thank-you."""
        vote = VOTE_ACTIONS[action_id]
        answered = self.answered.get(answer_id)
        if answered is None:
            self.web.chat_postEphemeral(channel=channel, user=user, text=EXPIRED_VOTE)
            return
        # One vote per person per answer: a second click (or a replayed action) is not logged again.
        if not self.votes.claim(f"{answer_id}:{user}"):
            self.web.chat_postEphemeral(channel=channel, user=user, text=ALREADY_VOTED)
            return
        self.feedback.append(
            Vote.of(vote, answered.answer, answered.history, user=user, channel=channel, thread_ts=answered.thread_ts)
        )
        self.questions.vote(answer_id, vote)
        self.web.chat_update(
            channel=channel, ts=message["ts"], text=message.get("text", ""), blocks=voted_blocks(message.get("blocks", []), vote, user)
        )
