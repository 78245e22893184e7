"""The HTTP API through a real ``qa serve`` process on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import CORPUS, HEADLINE, HEADLINE_SOURCE, free_port
from qa.bot import Bot

STARTUP = 120.0


def call(url: str, body: bytes | None = None, content_type: str = "application/json") -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def post(url: str, payload: Any) -> tuple[int, Any]:
    return call(url, json.dumps(payload).encode("utf-8"))


@pytest.fixture(scope="module")
def server(index_dir: Path) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "qa.faces.cli", "serve", "--port", str(port), "--corpus", str(CORPUS), "--index-dir", str(index_dir)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"qa serve exited with {process.returncode}:\n{process.stdout.read()}")
            try:
                if call(url + "/healthz") == (200, {"status": "ok"}):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"qa serve did not answer /healthz within {STARTUP}s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def test_ask_returns_what_qa_ask_json_prints(server: str, bot: Bot) -> None:
    status, body = post(server + "/ask", {"question": HEADLINE})
    assert status == 200
    assert body == json.loads(bot.ask(HEADLINE).model_dump_json())
    assert body["citations"][0]["source"] == HEADLINE_SOURCE


def test_ask_takes_k(server: str) -> None:
    status, body = post(server + "/ask", {"question": HEADLINE, "k": 2})
    assert status == 200 and len(body["passages"]) == 2


def test_chat_follow_ups_use_the_conversation(server: str, bot: Bot) -> None:
    conversation = bot.conversation()
    for question in (HEADLINE, "Where was it signed?"):
        status, body = post(server + "/chat", {"conversation_id": "t-1", "question": question})
        assert status == 200 and body == json.loads(conversation.ask(question).model_dump_json())
    assert body["citations"][0]["source"] == HEADLINE_SOURCE
    status, alone = post(server + "/chat", {"conversation_id": "t-2", "question": "Where was it signed?"})
    assert status == 200 and alone == json.loads(bot.ask("Where was it signed?").model_dump_json())


@pytest.mark.parametrize(
    "path, payload, status, detail",
    [
        ("/ask", {"question": ""}, 422, "question: the question is empty"),
        ("/ask", {"question": "   "}, 422, "question: the question is empty"),
        ("/ask", {"question": "x" * 2001}, 422, "the limit is 2000"),
        ("/ask", {}, 422, "question: Field required"),
        ("/ask", {"question": HEADLINE, "colour": "red"}, 422, "colour: Extra inputs are not permitted"),
        ("/ask", {"question": HEADLINE, "k": 0}, 422, "k: Input should be greater than or equal to 1"),
        ("/ask", ["not", "an", "object"], 422, "body: Input should be a valid dictionary"),
        ("/chat", {"question": HEADLINE}, 422, "conversation_id: Field required"),
        ("/chat", {"conversation_id": "a b", "question": HEADLINE}, 422, "conversation_id: String should match pattern"),
    ],
)
def test_bad_input_is_a_clear_4xx(server: str, path: str, payload: Any, status: int, detail: str) -> None:
    got, body = post(server + path, payload)
    assert got == status and detail in body["detail"], body


def test_source_shows_cited_lines_as_qa_show_does(server: str, bot: Bot) -> None:
    citation = bot.ask(HEADLINE).citations[0]
    status, body = call(f"{server}/source?source={citation.source}&line_start={citation.line_start}&context=1")
    assert status == 200 and body == json.loads(bot.source(citation.source, citation.line_start, context=1).model_dump_json())
    assert body["page"] is None and citation.quote in body["lines"][citation.line_start - body["first_line"]]
    status, body = call(f"{server}/source?source=nowhere.pdf&line_start=1")
    assert status == 404 and body["detail"] == "no indexed file is named 'nowhere.pdf'"


def test_bad_json_is_400(server: str) -> None:
    status, body = call(server + "/ask", b'{"question": "unterminated')
    assert status == 400 and body["detail"].startswith("body is not valid JSON")


def test_oversize_body_is_413_unread(server: str) -> None:
    status, body = post(server + "/ask", {"question": "x" * 100_000})
    assert status == 413 and "over" in body["detail"]


def test_openapi_docs_describe_the_endpoints(server: str) -> None:
    status, schema = call(server + "/openapi.json")
    assert status == 200 and {"/ask", "/chat", "/healthz"} <= set(schema["paths"])
    assert "Answer" in schema["components"]["schemas"]
    status, page = call(server + "/docs")
    assert status == 200 and "swagger" in page.lower()


def test_oversize_chunked_body_is_413(server: str) -> None:
    """A body without Content-Length is counted as it streams in."""
    import http.client

    host, port = server.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    chunks = (b'{"question": "' + b"x" * 8192 for _ in range(8))
    connection.request("POST", "/ask", body=chunks, headers={"Content-Type": "application/json"}, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413 and "over" in json.loads(response.read())["detail"]
    connection.close()
