"""Hardening of the Slack face (issue 17, finding 11): malformed timestamps and double votes."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from qa.faces.feedback import FeedbackLog
from qa.faces.slack import ALREADY_VOTED
from qa.faces.slack_app import EVENTS_PATH
from qa.settings import Settings

from conftest import HEADLINE
from test_slack import BOT_USER, MockSlack, Served, mock_slack, send, served, settings  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("served")


def raw_post(url: str, headers: dict[str, str], body: bytes = b"{}") -> tuple[int, str]:
    request = urllib.request.Request(url + EVENTS_PATH, data=body, headers={"Content-Type": "application/json", **headers}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.parametrize("timestamp", ["abc", "1700000000.5", "", " ", "\u00b2", "-5", None])
def test_11_a_malformed_timestamp_is_refused_not_a_500(served: Served, timestamp: str | None) -> None:
    headers = {"X-Slack-Signature": "v0=" + "0" * 64}
    if timestamp is not None:
        headers["X-Slack-Request-Timestamp"] = timestamp
    status, body = raw_post(served.url, headers)
    assert status == 401 and "Traceback" not in body


def test_11_one_vote_per_user_per_answer(served: Served, mock_slack: MockSlack, settings: Settings) -> None:
    send(served, "app_mention", f"<@{BOT_USER}> {HEADLINE}", "CTWICE")
    [reply] = mock_slack.wait("CTWICE")
    up = next(b for b in reply["blocks"][-1]["elements"] if b["action_id"] == "qa_vote_up")
    message = {"ts": "1700000099.000002", "text": reply["text"], "blocks": reply["blocks"]}
    for voter in ("UONE", "UONE", "UTWO"):
        served.slack.on_vote("qa_vote_up", up["value"], voter, "CTWICE", message)
    votes = [v for v in FeedbackLog(settings.feedback_log).read() if v.channel == "CTWICE"]
    assert sorted(v.user for v in votes) == ["UONE", "UTWO"]
    [again] = mock_slack.wait("CTWICE", method="chat.postEphemeral")
    assert again["text"] == ALREADY_VOTED and again["user"] == "UONE"
