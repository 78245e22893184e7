"""The Slack bot, without Slack: a mock Web API on loopback and signed requests to the real events endpoint."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from slack_sdk.signature import SignatureVerifier

from conftest import CORPUS, HEADLINE, HEADLINE_SOURCE, Scripted, free_port
from qa.bot import Bot
from qa.faces.feedback import FeedbackLog
from qa.questionlog import QuestionLog
from qa.models import Answer, Citation, Passage
from qa.settings import Settings
from qa.faces.slack import (
    APOLOGY,
    EXPIRED_VOTE,
    FEEDBACK_BLOCK,
    HELP,
    SECTION_LIMIT,
    SHARE_ACTION,
    WORKING,
    Message,
    SlackBot,
    SlackConfig,
    SlackSetupError,
    Streamer,
    Thread,
    answer_blocks,
    message_of,
    mrkdwn_escape,
    should_answer,
    voted_blocks,
)
from qa.faces.slack_app import EVENTS_PATH, connect, http_server, load_collections, wire

BOT_USER = "UQABOT"
SECRET = "test-signing-secret"
WAIT = 30.0


# --- a mock Slack Web API -----------------------------------------------------------------


@dataclass
class Call:
    method: str
    body: dict[str, Any]


@dataclass
class MockSlack:
    """Records every Web API call; answers like Slack would, enough for Bolt and the bot."""

    calls: list[Call] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    url: str = ""

    def record(self, call: Call, token: str) -> dict[str, Any]:
        with self.changed:
            self.calls.append(call)
            self.changed.notify_all()
        if token == "xoxb-revoked":
            return {"ok": False, "error": "invalid_auth"}
        if call.method == "auth.test":
            return {"ok": True, "user_id": BOT_USER, "bot_id": "BQABOT", "team_id": "T1", "user": "qa"}
        if call.method == "chat.postMessage":
            return {"ok": True, "channel": call.body.get("channel"), "ts": f"{time.time():.6f}", "message": call.body}
        return {"ok": True, "channel": call.body.get("channel"), "ts": call.body.get("ts")}

    def posts(self, channel: str, method: str = "chat.postMessage") -> list[dict[str, Any]]:
        with self.changed:
            return [c.body for c in self.calls if c.method == method and c.body.get("channel") == channel]

    def wait(self, channel: str, count: int = 1, method: str = "chat.postMessage") -> list[dict[str, Any]]:
        deadline = time.monotonic() + WAIT
        with self.changed:
            while len(self.posts_unlocked(channel, method)) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"no {method} #{count} in {channel} within {WAIT}s: {self.calls}"
                self.changed.wait(left)
            return self.posts_unlocked(channel, method)

    def posts_unlocked(self, channel: str, method: str) -> list[dict[str, Any]]:
        return [c.body for c in self.calls if c.method == method and c.body.get("channel") == channel]

    def wait_response(self, url_path: str) -> dict[str, Any]:
        """The body posted to a response_url (Bolt's ``respond``), which names no channel."""
        deadline = time.monotonic() + WAIT
        with self.changed:
            while not (found := [c.body for c in self.calls if c.method == url_path]):
                left = deadline - time.monotonic()
                assert left > 0, f"nothing posted to {url_path} within {WAIT}s"
                self.changed.wait(left)
            return found[0]

    def methods(self, channel: str) -> list[str]:
        with self.changed:
            return [c.method for c in self.calls if c.body.get("channel") == channel]


def mock_handler(mock: MockSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
            if self.headers.get("Content-Type", "").startswith("application/json"):
                body = json.loads(raw or "{}")
            else:
                body = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            reply = json.dumps(mock.record(Call(self.path.rsplit("/", 1)[-1], body), token)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def mock_slack() -> Iterator[MockSlack]:
    mock = MockSlack()
    server = ThreadingHTTPServer(("127.0.0.1", 0), mock_handler(mock))
    mock.url = f"http://127.0.0.1:{server.server_address[1]}/api/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield mock
    server.shutdown()


# --- the events endpoint, served for real on loopback --------------------------------------


@dataclass
class Served:
    url: str
    slack: Any
    outcomes: list[tuple[str | None, bool]]
    handled: threading.Condition

    def outcomes_of(self, event_id: str, count: int = 1) -> list[bool]:
        """Whether the bot answered each delivery of the event, once it has decided."""
        deadline = time.monotonic() + WAIT
        with self.handled:
            while len(found := [answered for e, answered in self.outcomes if e == event_id]) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"event {event_id} reached the bot {len(found)} times, not {count}"
                self.handled.wait(left)
            return found


@pytest.fixture(scope="module")
def settings(index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The bot's settings, with the feedback log in a folder of its own."""
    folder = tmp_path_factory.mktemp("slack")
    return Settings.load(corpus_dir=CORPUS, index_dir=index_dir, feedback_log=folder / "feedback.jsonl", question_log=folder / "questions.sqlite")


@pytest.fixture(scope="module")
def served(bot: Bot, settings: Settings, mock_slack: MockSlack) -> Iterator[Served]:
    config = SlackConfig(bot_token="xoxb-test", signing_secret=SECRET, api_url=mock_slack.url)
    app = connect(config, http=True)
    slack = wire(app, bot, settings)
    outcomes: list[tuple[str | None, bool]] = []
    handled = threading.Condition()
    on_event = slack.on_event

    def recorded(kind: str, event: dict[str, Any], event_id: str | None, bot_user_id: str | None) -> bool:
        answered = on_event(kind, event, event_id, bot_user_id)
        with handled:
            outcomes.append((event_id, answered))
            handled.notify_all()
        return answered

    slack.on_event = recorded
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(http_server(app), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield Served(f"http://127.0.0.1:{port}", slack, outcomes, handled)
    server.should_exit = True
    thread.join(10)


def signed_post(
    url: str, body: str, content_type: str = "application/json", secret: str = SECRET, age: int = 0, retry: int | None = None
) -> tuple[int, str, float]:
    timestamp = str(int(time.time()) - age)
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body),
    }
    if retry is not None:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    request = urllib.request.Request(url + EVENTS_PATH, data=body.encode("utf-8"), headers=headers, method="POST")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), time.monotonic() - started
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), time.monotonic() - started


_counter = iter(range(1, 10**6))


def event(
    kind: str, text: str, channel: str, *, ts: str | None = None, thread_ts: str | None = None, channel_type: str = "channel"
) -> tuple[str, str, str]:
    """An Events API envelope as Slack sends it; returns (event_id, ts, body)."""
    number = next(_counter)
    ts = ts or f"1700000000.{number:06d}"
    inner = {"type": kind, "user": "UASKER", "text": text, "ts": ts, "channel": channel, "channel_type": channel_type, "event_ts": ts}
    if thread_ts:
        inner["thread_ts"] = thread_ts
    event_id = f"Ev{number:08d}"
    envelope = {"token": "x", "team_id": "T1", "api_app_id": "A1", "type": "event_callback", "event_id": event_id, "event_time": 1700000000, "event": inner}
    return event_id, ts, json.dumps(envelope)


def send(served: Served, kind: str, text: str, channel: str, **options: Any) -> tuple[str, str]:
    """Deliver a signed event; Slack wants the acknowledgement within 3 seconds."""
    event_id, ts, body = event(kind, text, channel, **options)
    status, _, seconds = signed_post(served.url, body)
    assert status == 200 and seconds < 3, (status, seconds)
    return event_id, ts


def cited_sources(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


# --- pure logic ----------------------------------------------------------------------------


def test_message_of_strips_the_mention_and_skips_bots_and_edits() -> None:
    message = message_of("app_mention", {"user": "U1", "text": f"<@{BOT_USER}> {HEADLINE}", "ts": "1.1", "channel": "C1"}, BOT_USER)
    assert message is not None and message.question == HEADLINE and message.starts_thread
    assert message_of("message", {"user": BOT_USER, "text": "mine", "ts": "1.2", "channel": "C1"}, BOT_USER) is None
    assert message_of("message", {"bot_id": "B2", "user": "U2", "text": "x", "ts": "1.3", "channel": "C1"}, BOT_USER) is None
    assert message_of("message", {"subtype": "message_changed", "ts": "1.4", "channel": "C1"}, BOT_USER) is None


def test_should_answer_dms_mentions_and_follow_ups_in_threads_the_bot_started(bot: Bot) -> None:
    def message(kind: str, ts: str, thread_ts: str | None = None, direct: bool = False, channel: str = "C1") -> Message:
        return Message(kind=kind, channel=channel, ts=ts, thread_ts=thread_ts or ts, user="U1", text="q", direct=direct)

    started = Thread(bot.conversation(), started=True)
    joined = Thread(bot.conversation(), started=False)
    assert should_answer(message("message", "2", direct=True), None, ["C9"])
    assert should_answer(message("app_mention", "2"), None, [])
    assert not should_answer(message("app_mention", "2"), None, ["C9"])
    assert not should_answer(message("message", "2"), None, [])
    assert should_answer(message("message", "2", thread_ts="1"), started, [])
    assert not should_answer(message("message", "2", thread_ts="1"), joined, [])
    assert not should_answer(message("message", "2", thread_ts="1"), None, [])


def test_answer_blocks_carry_answer_citations_sources_and_votes(bot: Bot) -> None:
    blocks = answer_blocks(bot.ask(HEADLINE), "a1")
    text = cited_sources(blocks)
    assert f"`{HEADLINE_SOURCE}:" in text and "*Sources*" in text
    assert blocks[-1]["block_id"] == FEEDBACK_BLOCK and [b["value"] for b in blocks[-1]["elements"]] == ["a1", "a1"]
    assert len(blocks) <= 50
    assert all(len(b["text"]["text"]) <= SECTION_LIMIT for b in blocks if b["type"] == "section")


def test_answer_blocks_escape_and_cut_long_text() -> None:
    quote = "<b>&" + "x" * 5000
    citation = Citation(source="a.txt", line_start=1, line_end=2, char_start=0, char_end=len(quote), quote=quote)
    passage = Passage(rank=1, source="a.txt", line_start=1, line_end=2, char_start=0, char_end=len(quote), text=quote, score=1.0)
    answer = Answer(question="q", answer=quote + " [1]", abstained=False, citations=[citation], passages=[passage])
    blocks = answer_blocks(answer, "a1")
    assert blocks[0]["text"]["text"].startswith("&lt;b&gt;&amp;") and len(blocks[0]["text"]["text"]) <= SECTION_LIMIT
    assert "`a.txt:1-2`\n>&lt;b&gt;" in blocks[1]["text"]["text"] and blocks[1]["text"]["text"].endswith("…")
    assert mrkdwn_escape("a<@U1>") == "a&lt;@U1&gt;"


def test_voted_blocks_replace_only_the_buttons() -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "answer"}}, {"type": "actions", "block_id": FEEDBACK_BLOCK, "elements": []}]
    voted = voted_blocks(blocks, "down", "U7")
    assert voted[0] == blocks[0] and voted[1]["type"] == "context" and "<@U7>" in voted[1]["elements"][0]["text"]


def test_config_names_every_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SlackSetupError, match="SLACK_BOT_TOKEN and SLACK_APP_TOKEN not set"):
        SlackConfig.from_env("socket")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    with pytest.raises(SlackSetupError, match="^SLACK_SIGNING_SECRET not set"):
        SlackConfig.from_env("http")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api")
    assert SlackConfig.from_env("http").api_url == "http://127.0.0.1:9/api/"
    monkeypatch.setenv("SLACK_API_URL", "slack.com/api")
    with pytest.raises(SlackSetupError, match="SLACK_API_URL"):
        SlackConfig.from_env("http")


class RecordingWeb:
    """A Web API client that only remembers what it was asked to do, as (method, arguments)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, method: str) -> Any:
        def call(**kwargs: Any) -> dict[str, Any]:
            self.calls.append((method, kwargs))
            return {"ok": True, "ts": "9.9"}

        return call

    @property
    def posted(self) -> list[dict[str, Any]]:
        return [arguments for method, arguments in self.calls if method == "chat_postMessage"]


def test_channel_allow_list_keeps_the_bot_to_its_channels(bot: Bot, index_dir: Path) -> None:
    settings = Settings.load(corpus_dir=CORPUS, index_dir=index_dir, slack_channels="CALLOWED, CALSO")
    web = RecordingWeb()
    slack = SlackBot.create(bot, web, settings)
    mention = {"type": "app_mention", "user": "U1", "text": f"<@{BOT_USER}> {HEADLINE}", "channel_type": "channel"}
    assert not slack.on_event("app_mention", mention | {"channel": "COTHER", "ts": "1.1"}, "E1", BOT_USER)
    assert slack.on_event("app_mention", mention | {"channel": "CALSO", "ts": "1.2"}, "E2", BOT_USER)
    assert slack.on_event("message", mention | {"type": "message", "channel": "DME", "channel_type": "im", "ts": "1.3"}, "E3", BOT_USER)
    assert [p["channel"] for p in web.posted] == ["CALSO", "DME"]


@pytest.mark.parametrize("flags, missing", [([], "SLACK_APP_TOKEN"), (["--http"], "SLACK_SIGNING_SECRET")])
def test_cli_without_tokens_is_one_line_and_exit_1(flags: list[str], missing: str) -> None:
    done = subprocess.run([sys.executable, "-m", "qa.faces.cli", "slack", *flags], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and missing in done.stderr and "Traceback" not in done.stderr


def test_refused_or_unreachable_slack_is_a_setup_error(mock_slack: MockSlack) -> None:
    with pytest.raises(SlackSetupError, match=r"refused SLACK_BOT_TOKEN \(.*invalid_auth"):
        connect(SlackConfig(bot_token="xoxb-revoked", signing_secret=SECRET, api_url=mock_slack.url), http=True)
    nowhere = f"http://127.0.0.1:{free_port()}/api/"
    with pytest.raises(SlackSetupError, match="cannot reach the Slack API"):
        connect(SlackConfig(bot_token="xoxb-test", signing_secret=SECRET, api_url=nowhere), http=True)


# --- through Bolt, over HTTP, against the mock Web API -------------------------------------


def test_signed_url_verification_is_answered(served: Served) -> None:
    status, body, _ = signed_post(served.url, json.dumps({"type": "url_verification", "challenge": "c-123", "token": "x"}))
    assert status == 200 and "c-123" in body


@pytest.mark.parametrize("secret, age", [("not-the-secret", 0), (SECRET, 600)], ids=["forged", "stale"])
def test_forged_or_stale_requests_are_refused(served: Served, mock_slack: MockSlack, secret: str, age: int) -> None:
    event_id, _, body = event("app_mention", f"<@{BOT_USER}> {HEADLINE}", "CFORGED")
    status, _, _ = signed_post(served.url, body, secret=secret, age=age)
    assert status == 401
    time.sleep(0.2)
    assert not any(e == event_id for e, _ in served.outcomes) and not mock_slack.posts("CFORGED")


def test_mention_gets_a_threaded_reply_citing_the_source(served: Served, mock_slack: MockSlack) -> None:
    _, ts = send(served, "app_mention", f"<@{BOT_USER}> {HEADLINE}", "CMENTION")
    [reply] = mock_slack.wait("CMENTION")
    assert reply["thread_ts"] == ts
    assert f"`{HEADLINE_SOURCE}:" in cited_sources(reply["blocks"])
    assert reply["text"] == mrkdwn_escape(served.slack.bot.ask(HEADLINE).answer)


def test_direct_message_is_answered_without_a_mention(served: Served, mock_slack: MockSlack) -> None:
    _, ts = send(served, "message", HEADLINE, "DDIRECT", channel_type="im")
    [reply] = mock_slack.wait("DDIRECT")
    assert reply["thread_ts"] == ts and HEADLINE_SOURCE in cited_sources(reply["blocks"])


def test_follow_up_in_its_thread_needs_no_mention_and_uses_the_thread(served: Served, mock_slack: MockSlack) -> None:
    _, root = send(served, "app_mention", f"<@{BOT_USER}> {HEADLINE}", "CTHREAD")
    mock_slack.wait("CTHREAD")
    event_id, _ = send(served, "message", "Where was it signed?", "CTHREAD", thread_ts=root)
    assert served.outcomes_of(event_id) == [True]
    follow_up = mock_slack.wait("CTHREAD", count=2)[1]
    assert follow_up["thread_ts"] == root and HEADLINE_SOURCE in cited_sources(follow_up["blocks"])
    thread = served.slack.threads.get(("CTHREAD", root))
    assert [turn.question for turn in thread.conversation.turns] == [HEADLINE, "Where was it signed?"]


def test_channel_message_without_mention_is_ignored(served: Served, mock_slack: MockSlack) -> None:
    event_id, _ = send(served, "message", HEADLINE, "CQUIET")
    assert served.outcomes_of(event_id) == [False]
    _, other_root = send(served, "message", "people talking", "CQUIET")
    event_id, _ = send(served, "message", HEADLINE, "CQUIET", thread_ts=other_root)
    assert served.outcomes_of(event_id) == [False]
    assert mock_slack.posts("CQUIET") == []


def test_slack_retry_of_an_event_is_not_answered_twice(served: Served, mock_slack: MockSlack) -> None:
    event_id, root, body = event("app_mention", f"<@{BOT_USER}> {HEADLINE}", "CRETRY")
    assert signed_post(served.url, body)[0] == 200
    assert served.outcomes_of(event_id) == [True]
    assert signed_post(served.url, body, retry=1)[0] == 200
    assert served.outcomes_of(event_id, count=2) == [True, False]
    # A mention in a thread the bot follows arrives twice, as app_mention and
    # as message, with two event ids but one ts: it is one question.
    mention, ts = send(served, "app_mention", f"<@{BOT_USER}> Where was it signed?", "CRETRY", thread_ts=root)
    twin, _ = send(served, "message", f"<@{BOT_USER}> Where was it signed?", "CRETRY", ts=ts, thread_ts=root)
    assert sorted(served.outcomes_of(mention) + served.outcomes_of(twin)) == [False, True]
    assert len(mock_slack.posts("CRETRY")) == 2


def test_feedback_click_is_logged_and_thanked(served: Served, mock_slack: MockSlack, settings: Settings) -> None:
    send(served, "app_mention", f"<@{BOT_USER}> {HEADLINE}", "CVOTE")
    [reply] = mock_slack.wait("CVOTE")
    buttons = reply["blocks"][-1]["elements"]
    down = next(b for b in buttons if b["action_id"] == "qa_vote_down")
    message = {"type": "message", "ts": "1700000099.000001", "text": reply["text"], "blocks": reply["blocks"]}
    payload = {
        "type": "block_actions",
        "user": {"id": "UVOTER"},
        "channel": {"id": "CVOTE"},
        "team": {"id": "T1"},
        "api_app_id": "A1",
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": "CVOTE"},
        "message": message,
        "trigger_id": "t1",
        "response_url": mock_slack.url + "response",
        "actions": [{"type": "button", "action_id": down["action_id"], "block_id": FEEDBACK_BLOCK, "value": down["value"], "action_ts": "1"}],
    }
    status, _, seconds = signed_post(served.url, urllib.parse.urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")
    assert status == 200 and seconds < 3
    [update] = mock_slack.wait("CVOTE", method="chat.update")
    assert update["ts"] == message["ts"] and "<@UVOTER>" in json.dumps(update["blocks"])
    assert not any(b.get("block_id") == FEEDBACK_BLOCK for b in update["blocks"])
    votes = [v for v in FeedbackLog(settings.feedback_log).read() if v.channel == "CVOTE"]
    assert len(votes) == 1 and votes[0].vote == "down" and votes[0].question == HEADLINE
    assert votes[0].citations and votes[0].citations[0].source == HEADLINE_SOURCE

    payload["actions"][0]["value"] = "forgotten-answer"
    signed_post(served.url, urllib.parse.urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")
    [expired] = mock_slack.wait("CVOTE", method="chat.postEphemeral")
    assert expired["text"] == EXPIRED_VOTE and expired["user"] == "UVOTER"


def test_a_failure_is_answered_with_an_apology_and_logged(served: Served, mock_slack: MockSlack, bot: Bot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: Any, **kwargs: Any) -> Answer:
        raise RuntimeError("index exploded")

    monkeypatch.setattr(bot, "ask", broken)
    caplog.set_level(logging.ERROR, logger="qa.faces.slack")
    _, ts = send(served, "app_mention", f"<@{BOT_USER}> {HEADLINE}", "CBROKEN")
    [reply] = mock_slack.wait("CBROKEN")
    assert reply["thread_ts"] == ts and reply["text"] == APOLOGY
    assert "failed to answer" in caplog.text and "index exploded" in caplog.text


def test_a_bare_mention_gets_help_not_an_error(served: Served, mock_slack: MockSlack) -> None:
    send(served, "app_mention", f"<@{BOT_USER}>", "CBARE")
    [reply] = mock_slack.wait("CBARE")
    assert reply["text"] == HELP


# --- /qa, concurrency, 👀, streaming, collections --------------------------------------------


def slash_command(served: Served, text: str, channel: str, user: str = "UASKER") -> tuple[int, float, str]:
    """A signed /qa as Slack posts it (form-encoded); returns status, seconds to acknowledge, and the response_url path."""
    response_path = f"response-{next(_counter)}"
    form = {
        "token": "x", "team_id": "T1", "team_domain": "t", "channel_id": channel, "channel_name": "general", "user_id": user,
        "user_name": "asker", "command": "/qa", "text": text, "api_app_id": "A1", "trigger_id": "t1",
        "response_url": served.slack.web.base_url + response_path,
    }
    status, _, seconds = signed_post(served.url, urllib.parse.urlencode(form), "application/x-www-form-urlencoded")
    return status, seconds, response_path


def test_slash_command_answers_privately_with_a_share_button(served: Served, mock_slack: MockSlack, settings: Settings) -> None:
    status, seconds, path = slash_command(served, HEADLINE, "CSLASH", user="USLASH")
    assert status == 200 and seconds < 3
    response = mock_slack.wait_response(path)
    assert response["response_type"] == "ephemeral"
    assert f"`{HEADLINE_SOURCE}:" in cited_sources(response["blocks"])
    [share] = response["blocks"][-1]["elements"]
    assert share["action_id"] == SHARE_ACTION and share["text"]["text"] == "Share in channel"
    assert mock_slack.posts("CSLASH") == []  # nothing public until shared
    [entry] = [e for e in QuestionLog(settings.question_log).entries(face="slack") if e.id == share["value"]]
    assert entry.who == "USLASH" and entry.question == HEADLINE and entry.citations


def test_shared_answer_is_posted_for_all_and_its_thread_takes_follow_ups(served: Served, mock_slack: MockSlack) -> None:
    _, _, path = slash_command(served, HEADLINE, "CSHARE")
    answer_id = mock_slack.wait_response(path)["blocks"][-1]["elements"][0]["value"]
    click_path = f"response-{next(_counter)}"
    payload = {
        "type": "block_actions", "user": {"id": "USHARER"}, "channel": {"id": "CSHARE"}, "team": {"id": "T1"}, "api_app_id": "A1",
        "container": {"type": "message", "message_ts": "1.1", "channel_id": "CSHARE", "is_ephemeral": True},
        "trigger_id": "t2", "response_url": served.slack.web.base_url + click_path,
        "actions": [{"type": "button", "action_id": SHARE_ACTION, "block_id": FEEDBACK_BLOCK, "value": answer_id, "action_ts": "1"}],
    }
    status, _, _ = signed_post(served.url, urllib.parse.urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")
    assert status == 200
    [shared] = mock_slack.wait("CSHARE")
    assert "thread_ts" not in shared and "<@USHARER> asked" in cited_sources(shared["blocks"])
    assert shared["blocks"][-1]["elements"][0]["action_id"] == "qa_vote_up"
    assert mock_slack.wait_response(click_path)["delete_original"] is True
    # Shared, the answer starts a thread the bot follows: a follow-up needs no mention.
    [(root, thread)] = [(key[1], t) for key, t in served.slack.threads._items.items() if key[0] == "CSHARE"]
    event_id, _ = send(served, "message", "Where was it signed?", "CSHARE", thread_ts=root)
    assert served.outcomes_of(event_id) == [True]
    assert [turn.question for turn in thread.conversation.turns] == [HEADLINE, "Where was it signed?"]


def test_blank_slash_command_gets_help(served: Served, mock_slack: MockSlack) -> None:
    _, _, path = slash_command(served, "   ", "CSLASHHELP")
    assert mock_slack.wait_response(path)["text"] == HELP


def test_eyes_while_working_then_removed(served: Served, mock_slack: MockSlack) -> None:
    _, ts = send(served, "app_mention", f"<@{BOT_USER}> {HEADLINE}", "CEYES")
    mock_slack.wait("CEYES", method="reactions.remove")
    assert mock_slack.methods("CEYES") == ["reactions.add", "chat.postMessage", "reactions.remove"]
    for method in ("reactions.add", "reactions.remove"):
        [reaction] = mock_slack.posts("CEYES", method)
        assert reaction["name"] == WORKING and reaction["timestamp"] == ts


def test_two_slow_answers_run_at_once(served: Served, mock_slack: MockSlack, bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two questions in two threads, each taking a second: both are being answered at the same time."""
    spans: list[tuple[float, float]] = []
    ask = bot.ask

    def slow(*args: Any, **kwargs: Any) -> Answer:
        started = time.monotonic()
        time.sleep(1.0)
        answer = ask(*args, **kwargs)
        spans.append((started, time.monotonic()))
        return answer

    monkeypatch.setattr(bot, "ask", slow)
    send(served, "app_mention", f"<@{BOT_USER}> {HEADLINE}", "CSLOW1")
    send(served, "app_mention", f"<@{BOT_USER}> {HEADLINE}", "CSLOW2")
    mock_slack.wait("CSLOW1")
    mock_slack.wait("CSLOW2")
    assert len(spans) == 2
    assert max(start for start, _ in spans) < min(end for _, end in spans), f"answered one after the other: {spans}"


def test_one_threads_questions_are_answered_in_order(bot: Bot, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    slack = SlackBot.create(bot, RecordingWeb(), settings)
    spans: list[tuple[float, float]] = []
    ask = bot.ask

    def slow(*args: Any, **kwargs: Any) -> Answer:
        started = time.monotonic()
        time.sleep(0.3)
        answer = ask(*args, **kwargs)
        spans.append((started, time.monotonic()))
        return answer

    monkeypatch.setattr(bot, "ask", slow)
    mention = {"user": "U1", "channel": "CORDER", "channel_type": "channel"}
    slack.on_event("app_mention", mention | {"text": f"<@{BOT_USER}> {HEADLINE}", "ts": "5.0"}, "EO1", BOT_USER)
    workers = [
        threading.Thread(target=slack.on_event, args=("message", mention | {"text": q, "ts": ts, "thread_ts": "5.0"}, e, BOT_USER))
        for q, ts, e in (("Where was it signed?", "5.1", "EO2"), ("When was it signed?", "5.2", "EO3"))
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WAIT)
    spans.sort()
    assert len(spans) == 3 and all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:]))
    assert len(slack.threads.get(("CORDER", "5.0")).conversation.turns) == 3


def test_streamer_edits_at_most_every_interval() -> None:
    web = RecordingWeb()
    now = [0.0]
    stream = Streamer(web, "C1", "1.0", interval=2.0, clock=lambda: now[0])
    for moment, piece in ((0.0, "It "), (0.5, "was "), (1.9, "signed "), (2.1, "in "), (2.2, "Washington "), (4.5, "DC.")):
        now[0] = moment
        stream(piece)
    assert [method for method, _ in web.calls] == ["chat_postMessage", "chat_update", "chat_update"]
    assert web.calls[0][1]["text"] == "It  …" and web.calls[1][1]["text"] == "It was signed in  …"
    assert web.calls[2][1]["text"] == "It was signed in Washington DC. …"
    stream.finish("final", [{"type": "divider"}])
    assert web.calls[-1] == ("chat_update", {"channel": "C1", "ts": "9.9", "text": "final", "blocks": [{"type": "divider"}]})


def test_llm_answer_streams_into_one_message(make_bot: Any, fake_llm: Any, settings: Settings) -> None:
    fake_llm.reply = lambda request: Scripted(chunks=["It was ", "signed in ", "Washington DC [", "1]."])
    llm_bot = make_bot(llm_base_url=fake_llm.url, llm_model="test-model")
    web = RecordingWeb()
    slack = SlackBot.create(llm_bot, web, settings)
    slack.stream_interval = 0.0
    mention = {"user": "U1", "text": f"<@{BOT_USER}> Where was the letter of intent signed?", "ts": "6.0", "channel": "CSTREAM", "channel_type": "channel"}
    assert slack.on_event("app_mention", mention, "ES1", BOT_USER)
    methods = [method for method, _ in web.calls]
    assert methods[0] == "reactions_add" and methods[-1] == "reactions_remove"
    shown = [(method, arguments) for method, arguments in web.calls if method.startswith("chat_")]
    assert shown[0][0] == "chat_postMessage" and shown[0][1]["thread_ts"] == "6.0" and shown[0][1]["text"].endswith("…")
    assert len(shown) >= 3 and all(method == "chat_update" and arguments["ts"] == "9.9" for method, arguments in shown[1:])
    final = shown[-1][1]
    assert final["text"] == "It was signed in Washington DC [1]." and final["blocks"][-1]["block_id"] == FEEDBACK_BLOCK


def test_channels_answer_from_their_own_collection(bot: Bot, settings: Settings, tmp_path: Path) -> None:
    corpus = tmp_path / "hr"
    corpus.mkdir()
    (corpus / "leave.txt").write_text("Holiday requests go to Ms. Park in the HR office.\nShe answers within two days.\n", encoding="utf-8")
    Bot.index(Settings.load(corpus_dir=corpus, index_dir=tmp_path / "hr-index"))
    mapped = settings.model_copy(
        update={"slack_collections": {"CHR": tmp_path / "hr-index", "CHR2": tmp_path / "hr-index", "CSEEDS": settings.index_dir}}
    )
    collections = load_collections(mapped, bot)
    assert collections["CHR"] is collections["CHR2"] is not bot and collections["CSEEDS"] is bot
    web = RecordingWeb()
    slack = SlackBot.create(bot, web, mapped, collections)
    mention = {"type": "app_mention", "user": "U1", "channel_type": "channel"}
    slack.on_event("app_mention", mention | {"text": f"<@{BOT_USER}> Who handles holiday requests?", "channel": "CHR", "ts": "7.1"}, "EC1", BOT_USER)
    slack.on_event("app_mention", mention | {"text": f"<@{BOT_USER}> {HEADLINE}", "channel": "COTHER", "ts": "7.2"}, "EC2", BOT_USER)
    hr, other = web.posted
    assert "`leave.txt:1`" in cited_sources(hr["blocks"]) and HEADLINE_SOURCE not in cited_sources(hr["blocks"])
    assert f"`{HEADLINE_SOURCE}:" in cited_sources(other["blocks"])
    logged = {e.question: e.collection for e in QuestionLog(settings.question_log).entries(face="slack", limit=None)}
    assert logged["Who handles holiday requests?"] == str(tmp_path / "hr-index")


def test_a_collection_without_an_index_stops_the_start(bot: Bot, settings: Settings, tmp_path: Path) -> None:
    from qa.errors import BadIndexError

    with pytest.raises(BadIndexError, match="no index in"):
        load_collections(settings.model_copy(update={"slack_collections": {"CNONE": tmp_path / "nothing"}}), bot)


def test_votes_reach_the_question_log(served: Served, mock_slack: MockSlack, settings: Settings) -> None:
    send(served, "app_mention", f"<@{BOT_USER}> {HEADLINE}", "CLOGVOTE")
    [reply] = mock_slack.wait("CLOGVOTE")
    up = reply["blocks"][-1]["elements"][0]
    served.slack.on_vote(up["action_id"], up["value"], "UVOTER", "CLOGVOTE", {"ts": "1.1", "text": reply["text"], "blocks": reply["blocks"]})
    [entry] = [e for e in QuestionLog(settings.question_log).entries(limit=None) if e.id == up["value"]]
    assert (entry.up, entry.down, entry.who, entry.face) == (1, 0, "UASKER", "slack")
