"""A stalling LLM server, against every face (issue 17, finding 1).

The fake server drips its reply a byte at a time, the way the probe's slow
server made ``qa ask --json`` take 93 s under a 3 s timeout. Each face must
fall back to the extractive answer within ``llm_timeout`` plus a small margin,
and while one question waits, the others keep being answered.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import CORPUS, HEADLINE, FakeLLM, Scripted, free_port
from qa.faces.cli import app

TIMEOUT = 2.0
# What the margin covers: the extractive answer and the fall-back itself, on a loaded two-core machine.
MARGIN = 1.5
SLOW_WORD = "Korea"  # questions naming it get the stalling reply
QUICK = ["Where did the astronauts train?", "What is the Artemis program?", "Who signed the letter of intent?"]

runner = CliRunner()


def stall_on_korea(request: dict) -> Scripted:
    prompt = request["messages"][-1]["content"]
    if SLOW_WORD in prompt.split("<passages>")[0]:
        return Scripted("The letter of intent was signed in Washington [1]. " * 10, drip=0.2)  # a minute and more
    return Scripted("Quickly answered [1].")


@pytest.fixture
def slow_llm(fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> FakeLLM:
    fake_llm.reply = stall_on_korea
    monkeypatch.setenv("QA_LLM_BASE_URL", fake_llm.url)
    monkeypatch.setenv("QA_LLM_MODEL", "m")
    monkeypatch.setenv("QA_LLM_TIMEOUT", str(TIMEOUT))
    return fake_llm


def timed_cli(args: list[str]) -> tuple[float, Any]:
    started = time.monotonic()
    result = runner.invoke(app, args)
    return time.monotonic() - started, result


@pytest.mark.parametrize("flags", [[], ["--json"]], ids=["text-streamed", "json"])
def test_cli_falls_back_within_the_timeout(slow_llm: FakeLLM, index_dir: Path, flags: list[str]) -> None:
    common = ["--corpus", str(CORPUS), "--index-dir", str(index_dir), *flags]
    baseline, quick = timed_cli(["ask", HEADLINE, "--no-llm", *common])  # loading the index and model
    assert quick.exit_code == 0, quick.output
    seconds, result = timed_cli(["ask", HEADLINE, *common])
    assert result.exit_code == 0, result.output
    assert f"did not answer within {TIMEOUT:g}s" in result.output
    assert seconds < baseline + TIMEOUT + MARGIN, (seconds, baseline)
    if flags:
        answer = json.loads(result.output[result.output.index("{"):])
        assert answer["mode"] == "extractive" and answer["citations"]


def _post(url: str, payload: dict) -> tuple[float, dict]:
    started = time.monotonic()
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return time.monotonic() - started, json.loads(response.read())


def test_http_answers_others_while_one_waits(slow_llm: FakeLLM, make_bot) -> None:
    import uvicorn

    from qa.faces.http import create_app

    bot = make_bot(llm_base_url=slow_llm.url, llm_model="m", llm_timeout=TIMEOUT)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(bot), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    try:
        slow: dict[str, Any] = {}
        waiting = threading.Thread(target=lambda: slow.update(zip(("seconds", "answer"), _post(url + "/ask", {"question": HEADLINE}))))
        waiting.start()
        time.sleep(0.3)  # the slow question is at the LLM now
        quick = [_post(url + ("/chat" if n % 2 else "/ask"), {"question": q, "conversation_id": f"c{n}"} if n % 2 else {"question": q})
                 for n, q in enumerate(QUICK)]
        assert waiting.is_alive(), "the quick questions should be answered while the slow one waits"
        waiting.join(30)
        assert all(answer["mode"] == "llm" for _, answer in quick)
        assert max(seconds for seconds, _ in quick) < TIMEOUT
        assert slow["answer"]["mode"] == "extractive" and "did not answer within" in slow["answer"]["warnings"][-1]
        assert slow["seconds"] < TIMEOUT + MARGIN
    finally:
        server.should_exit = True
        thread.join(10)


class TimedWeb:
    """A Slack Web API client that records when each thread got its reply."""

    def __init__(self) -> None:
        self.posted: list[tuple[float, dict[str, Any]]] = []

    def chat_postMessage(self, **kwargs: Any) -> dict[str, Any]:
        self.posted.append((time.monotonic(), kwargs))
        return {"ok": True, "ts": "9.9"}

    chat_update = chat_postEphemeral = chat_postMessage


def test_slack_answers_other_threads_while_one_waits(slow_llm: FakeLLM, make_bot, tmp_path: Path) -> None:
    from qa.faces.slack import SlackBot

    bot = make_bot(llm_base_url=slow_llm.url, llm_model="m", llm_timeout=TIMEOUT, feedback_log=tmp_path / "f.jsonl")
    web = TimedWeb()
    slack = SlackBot.create(bot, web, bot.settings)

    def mention(channel: str, text: str) -> threading.Thread:
        event = {"type": "app_mention", "user": "U1", "text": f"<@UQA> {text}", "channel": channel, "channel_type": "channel", "ts": "1.1"}
        worker = threading.Thread(target=slack.on_event, args=("app_mention", event, f"E-{channel}", "UQA"))
        worker.start()
        return worker

    started = time.monotonic()
    slow = mention("CSLOW", HEADLINE)
    time.sleep(0.3)
    quick = [mention(f"CQUICK{n}", q) for n, q in enumerate(QUICK)]
    for worker in [*quick, slow]:
        worker.join(30)
    when = {post["channel"]: at - started for at, post in web.posted}
    assert set(when) == {"CSLOW", "CQUICK0", "CQUICK1", "CQUICK2"}
    assert max(when[f"CQUICK{n}"] for n in range(3)) < when["CSLOW"]
    assert when["CSLOW"] < TIMEOUT + MARGIN
