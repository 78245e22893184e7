"""The HTTP API through a real ``qa serve`` process on loopback."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fastapi.testclient import TestClient

from conftest import HEADLINE, HEADLINE_SOURCE, FakeLLM, Scripted, cited_source, qa_serve
from qa.bot import Bot
from qa.faces.http import Buckets, create_app, session_value
from qa.questionlog import QuestionLog
from qa.settings import Settings
from qa.errors import SettingsError

TOKEN = "s3cret-token-for-tests"


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
    with qa_serve(index_dir) as url:
        yield url


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


def test_docs_load_swagger_from_the_package_not_a_cdn(server: str) -> None:
    status, page = call(server + "/docs")
    assert status == 200 and "https://" not in page and "http://" not in page
    for asset in ("/static/swagger/swagger-ui-bundle.js", "/static/swagger/swagger-ui.css", "/static/swagger/favicon-32x32.png"):
        assert asset in page
        with urllib.request.urlopen(server + asset, timeout=30) as response:
            assert response.status == 200 and len(response.read()) > 500
    assert call(server + "/redoc")[0] == 404


def test_the_page_is_served_at_the_root_with_its_assets(server: str) -> None:
    with urllib.request.urlopen(server + "/", timeout=30) as response:
        page = response.read().decode()
        policy = response.headers["Content-Security-Policy"]
    assert '<label for="question"' in page and 'src="static/app.js"' in page
    assert "default-src 'self'" in policy
    for asset in ("/static/app.js", "/static/style.css"):
        with urllib.request.urlopen(server + asset, timeout=30) as response:
            assert response.status == 200


def test_source_marks_a_citations_quote_in_its_lines(server: str, bot: Bot) -> None:
    citation = bot.ask(HEADLINE).citations[0]
    query = (
        f"source={citation.source}&line_start={citation.line_start}&line_end={citation.line_end}"
        f"&char_start={citation.char_start}&char_end={citation.char_end}&context=2"
    )
    status, body = call(server + "/source?" + query)
    assert status == 200 and body["first_line"] == citation.line_start - 2
    quoted = [body["lines"][line - body["first_line"]][start:end] for line, start, end in body["marked"]]
    assert [line for line, _, _ in body["marked"]] == list(range(citation.line_start, citation.line_end + 1))
    assert "".join(quoted) == citation.quote.replace("\n", "")


@pytest.mark.parametrize(
    "query, status, detail",
    [
        ("source=../README.md&line_start=1", 404, "no indexed file is named '../README.md'"),
        ("source=/etc/passwd&line_start=1", 404, "no indexed file is named '/etc/passwd'"),
        (f"source={HEADLINE_SOURCE}&line_start=100000", 404, "there is no line 100000"),
        (f"source={HEADLINE_SOURCE}&line_start=22&char_start=5&char_end=3", 404, "not a span of"),
        (f"source={HEADLINE_SOURCE}&line_start=22&char_start=5", 404, "not a span of"),
        (f"source={HEADLINE_SOURCE}&line_start=1&context=1000", 422, "context: Input should be less than or equal to 200"),
        ("line_start=3", 422, "source: Field required"),
    ],
)
def test_source_refuses_what_is_not_an_indexed_place(server: str, query: str, status: int, detail: str) -> None:
    got, body = call(server + "/source?" + query)
    assert got == status and detail in body["detail"], body


def events(body: str) -> list[tuple[str, Any]]:
    """A server-sent event stream as (event, data) pairs."""
    parsed = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        parsed.append((fields["event"], json.loads(fields["data"])))
    return parsed


def test_chat_stream_without_llm_sends_the_answer_once(server: str, bot: Bot) -> None:
    status, body = call(server + "/chat/stream", json.dumps({"conversation_id": "s-1", "question": HEADLINE}).encode())
    assert status == 200
    [(name, data)] = events(body)
    assert name == "answer" and data["answer"] == json.loads(bot.ask(HEADLINE).model_dump_json())
    assert data["answer_id"]


def test_chat_stream_relays_an_llm_answer_as_it_comes(make_bot, fake_llm: FakeLLM) -> None:
    fake_llm.reply = lambda request: Scripted("KIAT signed a letter of intent with NIST [1].", chunks=["KIAT signed ", "a letter of intent ", "with NIST [1]."])
    client = TestClient(create_app(make_bot(llm_base_url=fake_llm.url, llm_model="fake")))
    response = client.post("/chat/stream", json={"conversation_id": "llm-1", "question": HEADLINE})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    got = events(response.text)
    assert [data["text"] for name, data in got if name == "text"] == ["KIAT signed ", "a letter of intent ", "with NIST [1]."]
    name, data = got[-1]
    assert name == "answer" and data["answer"]["mode"] == "llm" and data["answer"]["answer"].endswith("[1].")


def test_votes_go_to_the_feedback_log_with_the_conversation(make_bot, tmp_path: Path) -> None:
    log, questions = tmp_path / "votes.jsonl", tmp_path / "questions.sqlite"
    client = TestClient(create_app(make_bot(feedback_log=log, question_log=questions)))
    answer_ids = []
    for question in (HEADLINE, "Where was it signed?"):
        response = client.post("/chat/stream", json={"conversation_id": "v-1", "question": question})
        answer_ids.append(events(response.text)[-1][1]["answer_id"])
    assert client.post("/feedback", json={"answer_id": answer_ids[1], "vote": "down"}).json() == {"status": "recorded"}
    [vote] = [json.loads(line) for line in log.read_text().splitlines()]
    assert (vote["vote"], vote["face"], vote["question"], vote["history"]) == ("down", "web", "Where was it signed?", [HEADLINE])
    logged = {entry.id: entry for entry in QuestionLog(questions).entries()}
    assert (logged[answer_ids[1]].face, logged[answer_ids[1]].down, logged[answer_ids[0]].down) == ("http", 1, 0)
    unknown = client.post("/feedback", json={"answer_id": "0" * 32, "vote": "up"})
    assert unknown.status_code == 404 and "no longer kept" in unknown.json()["detail"]
    assert client.post("/feedback", json={"answer_id": answer_ids[0], "vote": "meh"}).status_code == 422


@pytest.fixture
def guarded(make_bot) -> TestClient:
    return TestClient(create_app(make_bot(api_token=TOKEN)))


@pytest.mark.parametrize("path", ["/ask", "/chat", "/chat/stream", "/feedback"])
def test_with_a_token_every_post_needs_it(guarded: TestClient, path: str) -> None:
    response = guarded.post(path, json={"question": HEADLINE})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["detail"]
    assert guarded.post(path, json={}, headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401


@pytest.mark.parametrize("path", ["/", "/docs", "/openapi.json", f"/source?source={HEADLINE_SOURCE}&line_start=22"])
def test_with_a_token_every_page_and_get_needs_it(guarded: TestClient, path: str) -> None:
    assert guarded.get(path).status_code == 401
    assert guarded.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_with_a_token_the_bearer_header_answers(guarded: TestClient) -> None:
    response = guarded.post("/ask", json={"question": HEADLINE}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and response.json()["citations"][0]["source"] == HEADLINE_SOURCE


def test_with_a_token_healthz_and_static_files_stay_open(guarded: TestClient) -> None:
    assert guarded.get("/healthz").json() == {"status": "ok"}
    assert guarded.get("/static/app.js").status_code == 200


def test_a_browser_signs_in_once_and_gets_a_session_cookie(guarded: TestClient) -> None:
    form = guarded.get("/docs", headers={"Accept": "text/html"})
    assert form.status_code == 401 and 'name="token"' in form.text and 'value="/docs"' in form.text
    wrong = guarded.post("/login", data={"token": "not-the-token-at-all", "next": "/docs"}, follow_redirects=False)
    assert wrong.status_code == 401 and "not right" in wrong.text and "qa_session" not in wrong.headers.get("set-cookie", "")
    right = guarded.post("/login", data={"token": TOKEN, "next": "/docs"}, follow_redirects=False)
    assert right.status_code == 303 and right.headers["location"] == "/docs"
    cookie = right.headers["set-cookie"]
    assert f"qa_session={session_value(TOKEN)}" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert TOKEN not in cookie
    assert guarded.get("/").status_code == 200  # the client kept the cookie
    assert guarded.post("/ask", json={"question": HEADLINE}).status_code == 200


@pytest.mark.parametrize("next_path", ["//elsewhere.example/", "https://elsewhere.example/", "/\\elsewhere.example"])
def test_sign_in_only_returns_to_this_server(guarded: TestClient, next_path: str) -> None:
    response = guarded.post("/login", data={"token": TOKEN, "next": next_path}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_a_short_token_is_refused() -> None:
    with pytest.raises(SettingsError, match="api_token"):
        Settings.load(api_token="short")


def test_cors_is_off_by_default_and_on_for_the_configured_origins(make_bot) -> None:
    closed = TestClient(create_app(make_bot()))
    asked = closed.post("/ask", json={"question": HEADLINE}, headers={"Origin": "https://intranet.example"})
    assert "access-control-allow-origin" not in asked.headers
    open_ = TestClient(create_app(make_bot(cors_origins="https://intranet.example", api_token=TOKEN)))
    preflight = open_.options(
        "/ask",
        headers={"Origin": "https://intranet.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"},
    )
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == "https://intranet.example"
    asked = open_.post("/ask", json={"question": HEADLINE}, headers={"Origin": "https://intranet.example", "Authorization": f"Bearer {TOKEN}"})
    assert asked.status_code == 200 and asked.headers["access-control-allow-origin"] == "https://intranet.example"
    other = open_.options("/ask", headers={"Origin": "https://other.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in other.headers


def test_a_client_over_the_rate_limit_gets_429(make_bot) -> None:
    client = TestClient(create_app(make_bot(rate_limit=3)))
    statuses = [client.get(f"/source?source={HEADLINE_SOURCE}&line_start=1").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get(f"/source?source={HEADLINE_SOURCE}&line_start=1")
    assert int(refused.headers["Retry-After"]) >= 1 and "too many requests" in refused.json()["detail"]
    assert client.get("/healthz").status_code == 200 and client.get("/static/style.css").status_code == 200


def test_buckets_refill_at_the_rate() -> None:
    buckets = Buckets(rate=60)  # one a second
    assert all(buckets.take("a", 0.0) == 0 for _ in range(60))
    assert buckets.take("a", 0.0) == pytest.approx(1.0)
    assert buckets.take("b", 0.0) == 0  # another client has its own bucket
    assert buckets.take("a", 0.5) == pytest.approx(0.5)
    assert buckets.take("a", 1.0) == 0
    assert buckets.take("a", 1.0) > 0


def test_the_body_limit_is_a_setting(make_bot) -> None:
    client = TestClient(create_app(make_bot(max_body_bytes=2048)))
    response = client.post("/ask", json={"question": "é" * 1999})  # 12 KB as JSON escapes
    assert response.status_code == 413 and response.json()["detail"] == "request body over 2048 bytes"


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


def test_answers_are_in_the_question_log(server: str) -> None:
    from qa.questionlog import QuestionLog
    from qa.settings import Settings

    post(server + "/ask", {"question": "Who signed the letter of intent?"})
    post(server + "/chat", {"conversation_id": "logged", "question": HEADLINE})
    post(server + "/chat", {"conversation_id": "logged", "question": "Where was it signed?"})
    logged = {e.question: e for e in QuestionLog(Settings.load().question_log).entries(face="http", limit=None)}
    assert logged["Who signed the letter of intent?"].citations and logged["Who signed the letter of intent?"].latency_ms > 0
    assert logged["Where was it signed?"].history == [HEADLINE]


def test_two_servers_answer_throughout_an_index_update_then_from_it(tmp_path: Path, corpus_copy: Path) -> None:
    """Two qa serve processes on one index keep answering while qa index rewrites it, never from a half-written state."""
    import subprocess
    import sys
    import threading

    def qa_index() -> None:
        built = subprocess.run([sys.executable, "-m", "qa.faces.cli", "index", str(corpus_copy), "--index-dir", str(index)], capture_output=True, text=True)
        assert built.returncode == 0, built.stderr

    index = tmp_path / "index"
    settings = Settings(corpus_dir=corpus_copy, index_dir=index)
    Bot.index(settings)
    festival = "Where does the pier festival take place?"
    unlimited = {"QA_RATE_LIMIT": "0"}  # the asking below is one client, faster than a person
    with qa_serve(index, env=unlimited) as first, qa_serve(index, env=unlimited) as second:
        seen: list[tuple[int, str]] = []
        stop = threading.Event()

        def keep_asking() -> None:
            while not stop.is_set():
                seen.extend(cited_source(url, HEADLINE) for url in (first, second))
                stop.wait(0.1)

        asking = threading.Thread(target=keep_asking)
        asking.start()
        try:
            (corpus_copy / "festival.txt").write_text("The pier festival takes place in Lisbon on 12 May.\n", encoding="utf-8")
            qa_index()
            (corpus_copy / "000_81784bd76aef5d8c.txt").unlink()  # a second build: the generation the servers started on is deleted
            qa_index()
        finally:
            stop.set()
            asking.join(60)
        assert len(seen) >= 4 and set(seen) == {(200, HEADLINE_SOURCE)}, seen
        for url in (first, second):
            assert cited_source(url, festival) == (200, "festival.txt")
