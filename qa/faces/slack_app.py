"""Bolt wiring for ``qa.faces.slack``: Socket Mode, or HTTP events at ``/slack/events``.

Bolt acknowledges each event before its listener runs on its worker pool
(sized by the ``slack_workers`` setting: that many questions are answered at
once, the rest wait their turn), so a slow answer never makes Slack retry;
it also verifies every HTTP request's signature and age against the signing
secret, refusing forged or stale ones with 401 before any listener sees them.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from slack_bolt import App, BoltResponse
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from starlette.concurrency import run_in_threadpool

from qa.bot import Bot
from qa.faces.http import MAX_BODY_BYTES, BodyLimit, Health
from qa.settings import Settings
from qa.faces.slack import SHARE_ACTION, SLASH_COMMAND, VOTE_ACTIONS, SlackBot, SlackConfig, SlackSetupError

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


class _SameToken(logging.Filter):
    """Bolt warns that SLACK_BOT_TOKEN goes unused when handed a client; the client holds that very token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def connect(config: SlackConfig, *, http: bool, workers: int = 8) -> App:
    """A Bolt app whose bot token Slack has accepted (auth.test); done before the slow model load so a bad token fails fast."""
    web = WebClient(token=config.bot_token, base_url=config.api_url)
    bolt_log = logging.getLogger("slack_bolt")
    bolt_log.addFilter(_SameToken())
    try:
        return App(
            client=web,
            signing_secret=config.signing_secret if http else None,
            request_verification_enabled=http,
            logger=bolt_log,
            listener_executor=ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qa-slack"),
        )
    except (BoltError, SlackApiError, SlackClientError) as error:
        raise SlackSetupError(f"Slack refused SLACK_BOT_TOKEN ({_reason(error)}); check the token and SLACK_API_URL") from None
    except OSError as error:
        raise SlackSetupError(f"cannot reach the Slack API at {config.api_url} ({_reason(error)}); check SLACK_API_URL") from None


def load_collections(settings: Settings, default: Bot) -> dict[str, Bot]:
    """One warm ``Bot`` per index folder of ``slack_collections``, shared by the channels mapped to it.

    Loaded at start, so that a missing or mismatched index stops ``qa slack``
    with its one-line error instead of failing a channel's first question.
    """
    bots: dict[Path, Bot] = {default.settings.index_dir.resolve(): default}
    channels = {}
    for channel, index_dir in settings.slack_collections.items():
        key = index_dir.resolve()
        if key not in bots:
            bots[key] = Bot.load(settings.model_copy(update={"index_dir": index_dir}), build_if_missing=False)
            bots[key].search("warm up")
        channels[channel] = bots[key]
    return channels


def wire(app: App, bot: Bot, settings: Settings, collections: dict[str, Bot] | None = None) -> SlackBot:
    """Route mentions, messages, ``/qa``, 👍/👎 and share clicks to a ``SlackBot`` answering through ``bot`` (and ``collections``)."""
    slack = SlackBot.create(bot, app.client, settings, collections)

    def on_message(body: dict[str, Any], event: dict[str, Any], context: Any, request: Any) -> None:
        retry = request.headers.get("x-slack-retry-num", [None])[0]
        if retry:
            log.info("Slack retry %s of event %s (%s)", retry, body.get("event_id"), request.headers.get("x-slack-retry-reason"))
        slack.on_event(event["type"], event, body.get("event_id"), context.bot_user_id)

    app.event("app_mention")(on_message)
    app.event("message")(on_message)

    @app.action(re.compile("^(" + "|".join(VOTE_ACTIONS) + ")$"))
    def on_vote(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        slack.on_vote(action["action_id"], action["value"], body["user"]["id"], body["channel"]["id"], body["message"])

    @app.command(SLASH_COMMAND)
    def on_command(ack: Any, command: dict[str, Any], respond: Any) -> None:
        ack()
        slack.on_command(command, respond)

    @app.action(SHARE_ACTION)
    def on_share(ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        ack()
        channel = (body.get("channel") or {}).get("id") or body.get("container", {}).get("channel_id", "")
        slack.on_share(action["value"], body["user"]["id"], channel, respond)

    return slack


def http_server(app: App) -> FastAPI:
    """Slack's Events API endpoint; Bolt's dispatch is blocking, so it runs off the event loop."""
    server = FastAPI(title="qa Slack events", docs_url=None, redoc_url=None, openapi_url=None)

    @server.post(EVENTS_PATH)
    async def events(request: Request) -> Response:
        body = await request.body()
        response: BoltResponse = await run_in_threadpool(app.dispatch, to_bolt_request(request, body))
        return to_starlette_response(response)

    @server.get("/healthz")
    def healthz() -> Health:
        return Health(status="ok")

    server.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    return server


def socket_mode(app: App, config: SlackConfig) -> None:
    """Connect out to Slack over a websocket: no public URL needed."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    try:
        SocketModeHandler(app, app_token=config.app_token).start()
    except OSError as error:
        raise SlackSetupError(f"cannot reach the Slack API at {config.api_url} ({_reason(error)}); check SLACK_API_URL") from None
    except SlackApiError as error:
        raise SlackSetupError(f"Slack refused SLACK_APP_TOKEN ({_reason(error)}); use the app-level token (xapp-…) with the connections:write scope") from None


def _reason(error: Exception) -> str:
    if isinstance(error, SlackApiError):
        return str(error.response.get("error", error))
    return str(error).splitlines()[0]
