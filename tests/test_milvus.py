"""The Milvus store answers as the files do: the same passages, citations and scores, through updates.

A real Milvus server (milvus-lite, the ``qa[milvus]`` extra) runs on 127.0.0.1
for this module; without the package the module is skipped with the reason,
and fails instead where QA_REQUIRE_MILVUS is set (CI sets it).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.bot import Bot
from qa.errors import QAError
from qa.evaluate import load_golden
from qa.settings import Settings
from qa.stages import index as index_store
from tests.conftest import CORPUS, HEADLINE, HEADLINE_SOURCE, MACHINE_VARIABLES, REPO, cited_source, free_port, qa_serve, wait_for_port

try:
    import milvus_lite  # noqa: F401
    import pymilvus  # noqa: F401
except ImportError as missing:
    if os.environ.get("QA_REQUIRE_MILVUS"):
        raise RuntimeError(f"QA_REQUIRE_MILVUS is set but {missing.name} is missing: install.sh installs qa[dev], which brings it") from None
    pytest.skip(f"{missing.name} is not installed (pip install 'qa[milvus]' milvus-lite; install.sh does it)", allow_module_level=True)

from qa.stages import milvus  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A milvus-lite server on a free loopback port; yields its address."""
    port = free_port()
    folder = tmp_path_factory.mktemp("milvus")
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "qa.stages.milvus", str(folder / "data"), str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_for_port(port, process, folder / "server.log", timeout=60)
    yield f"milvus://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=30)
    log.close()


def _url(server: str) -> str:
    """Each test its own collections on the shared server."""
    return f"{server}/t{uuid.uuid4().hex[:10]}"


def _passages(answer) -> list[tuple]:
    return [(p.source, p.line_start, p.line_end, p.char_start, p.char_end, p.page, p.text, round(p.score, 5)) for p in answer.passages]


def test_every_seed_question_gets_the_same_passages_and_answer_from_both_stores(server: str, seed_settings: Settings, bot: Bot) -> None:
    url = _url(server)
    milvus.publish(url, bot._stored)
    engine = Bot.load(seed_settings.model_copy(update={"store": url}), build_if_missing=False)
    assert engine._stored.name == bot._stored.name and isinstance(engine._stored, milvus.MilvusStore)
    cases = load_golden(REPO / "tests" / "golden" / "seeds.jsonl")
    for case in cases:
        files, engined = bot.ask(case.question), engine.ask(case.question)
        assert _passages(engined) == _passages(files), case.question
        assert engined.answer == files.answer and engined.abstained == files.abstained, case.question
        assert [c.model_dump() for c in engined.citations] == [c.model_dump() for c in files.citations], case.question
    headline = engine.ask(HEADLINE)
    assert headline.citations[0].source == HEADLINE_SOURCE and headline.citations[0].line_start <= 22 <= headline.citations[0].line_end
    cited = headline.citations[0]
    assert engine.source(cited.source, cited.line_start, cited.line_end) == bot.source(cited.source, cited.line_start, cited.line_end)
    assert [(i, c.text) for i, c, _ in engine._stored.each_chunk()] == [(i, c.text) for i, c, _ in bot._stored.each_chunk()]


def test_updates_publish_only_new_segments_and_match_a_build_on_files(server: str, tmp_path: Path, corpus_copy: Path, bot: Bot) -> None:
    url = _url(server)
    settings = Settings.load(corpus_dir=corpus_copy, index_dir=tmp_path / "index", store=url)
    first = Bot.index(settings)
    assert first.published == url and f"live in {url}" in first.summary()
    reader = Bot.load(settings.model_copy(update={"index_dir": tmp_path / "nothing-here"}), build_if_missing=False)
    assert reader.ask(HEADLINE).citations[0].source == HEADLINE_SOURCE

    sent: list[str] = []
    (corpus_copy / "rail.txt").write_text("The Shinkansen opened in 1964 between Tokyo and Osaka.\nIt runs at up to 320 km/h.\n", encoding="utf-8")
    korean = corpus_copy / HEADLINE_SOURCE
    korean.write_text(korean.read_text(encoding="utf-8") + "\n두 기관은 2023년에 첫 공동 과제를 시작한다.\n", encoding="utf-8")
    german = next(p for p in corpus_copy.iterdir() if p.name.startswith("000_"))
    german_text = milvus._extraction_key(index_store.read_manifest(tmp_path / "index").extractor, hashlib.sha256(german.read_bytes()).hexdigest())
    german.unlink()
    import qa.stages.milvus as module

    original = module._send_segment
    module._send_segment = lambda engine, part, name, starts: (sent.append(name), original(engine, part, name, starts))
    try:
        Bot.index(settings)
    finally:
        module._send_segment = original
    assert len(sent) == 1  # the new segment alone: the seeds' segment is in the engine already

    # A reader that opened the first generation follows the switch at its next question.
    answer = reader.ask("When did the Shinkansen open?")
    assert answer.citations[0].source == "rail.txt"
    files = Bot.load(settings.model_copy(update={"store": ""}), build_if_missing=False)
    for question in ["When did the Shinkansen open?", HEADLINE, "Who leads the Artemis program?", "What did the US and Japan agree?"]:
        assert _passages(reader.ask(question)) == _passages(files.ask(question)), question
    assert not any(c.source == german.name for _, c, _ in reader._stored.each_chunk())

    # Generations before the one replaced are deleted, with the segments and extracted texts only they used.
    engine = milvus._engine(url)
    assert engine.value(german_text) is not None  # the generation replaced still cites it
    Bot.index(settings, rebuild=True)
    assert engine.value(german_text) is None
    history = json.loads(engine.blob(milvus.HISTORY))
    assert len(history) == 2
    kept = {name for entry in history for name in entry["segments"]}
    rows = engine.call("query", engine.chunks, filter="id >= 0", output_fields=["segment"], limit=10_000)
    assert {row["segment"] for row in rows} == kept


def test_the_cli_publishes_and_answers_from_the_store_without_the_index_folder(server: str, tmp_path: Path) -> None:
    url = _url(server)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")} | {"QA_STORE": url}
    built = subprocess.run(
        [sys.executable, "-m", "qa.faces.cli", "index", str(CORPUS), "--index-dir", str(tmp_path / "index")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )
    assert built.returncode == 0, built.stderr
    assert f"live in {url}" in built.stderr
    asked = subprocess.run(
        [sys.executable, "-m", "qa.faces.cli", "ask", HEADLINE, "--json", "--no-llm", "--index-dir", str(tmp_path / "elsewhere"), "--store", url],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )
    assert asked.returncode == 0, asked.stderr
    citation = json.loads(asked.stdout)["citations"][0]
    assert citation["source"] == HEADLINE_SOURCE and citation["line_start"] <= 22 <= citation["line_end"]
    assert not (tmp_path / "elsewhere").exists()


def test_two_servers_and_a_slack_bot_answer_from_milvus_throughout_an_update(server: str, tmp_path: Path, corpus_copy: Path) -> None:
    """Readers on the store alone (no index folder) keep answering while qa index publishes twice, never from a half-written state."""
    import threading
    from http.server import ThreadingHTTPServer

    from tests.test_slack import BOT_USER, SECRET, MockSlack, event, mock_handler, signed_post

    url = _url(server)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("QA_", "SLACK_")) or k in MACHINE_VARIABLES} | {"QA_STORE": url}

    def qa_index() -> None:
        built = subprocess.run(
            [sys.executable, "-m", "qa.faces.cli", "index", str(corpus_copy), "--index-dir", str(tmp_path / "index")],
            capture_output=True, text=True, env=clean, cwd=tmp_path, timeout=600,
        )
        assert built.returncode == 0, built.stderr

    qa_index()
    mock = MockSlack()
    api = ThreadingHTTPServer(("127.0.0.1", 0), mock_handler(mock))
    mock.url = f"http://127.0.0.1:{api.server_address[1]}/api/"
    threading.Thread(target=api.serve_forever, daemon=True).start()
    slack_port = free_port()
    slack_env = clean | {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": mock.url, "QA_RATE_LIMIT": "0"}
    slack_log = (tmp_path / "slack.log").open("w")
    slack = subprocess.Popen(
        [sys.executable, "-m", "qa.faces.cli", "slack", "--http", "--port", str(slack_port), "--index-dir", str(tmp_path / "no-index")],
        stdout=slack_log, stderr=subprocess.STDOUT, env=slack_env, cwd=tmp_path,
    )
    slack_url = f"http://127.0.0.1:{slack_port}"
    readers = {"QA_STORE": url, "QA_RATE_LIMIT": "0"}
    try:
        wait_for_port(slack_port, slack, tmp_path / "slack.log")
        with qa_serve(tmp_path / "no-index", env=readers) as first, qa_serve(tmp_path / "no-index", env=readers) as second:
            seen: list[tuple[int, str]] = []
            mentions: list[str] = []
            stop = threading.Event()

            def keep_asking() -> None:
                while not stop.is_set():
                    seen.extend(cited_source(reader, HEADLINE) for reader in (first, second))
                    _, ts, envelope = event("app_mention", f"<@{BOT_USER}> {HEADLINE}", "CREADERS")
                    assert signed_post(slack_url, envelope)[0] == 200
                    mentions.append(ts)
                    stop.wait(0.1)

            asking = threading.Thread(target=keep_asking)
            asking.start()
            try:
                (corpus_copy / "festival.txt").write_text("The pier festival takes place in Lisbon on 12 May.\n", encoding="utf-8")
                qa_index()
                (corpus_copy / "000_81784bd76aef5d8c.txt").unlink()  # the second publish deletes the generation the readers started on
                qa_index()
            finally:
                stop.set()
                asking.join(60)
            assert len(seen) >= 4 and set(seen) == {(200, HEADLINE_SOURCE)}, seen
            replies = mock.wait("CREADERS", len(mentions))
            assert len(mentions) >= 2 and all(f"`{HEADLINE_SOURCE}:" in json.dumps(r["blocks"], ensure_ascii=False) for r in replies), replies
            festival = "Where does the pier festival take place?"
            for reader in (first, second):
                assert cited_source(reader, festival) == (200, "festival.txt")
            _, _, envelope = event("app_mention", f"<@{BOT_USER}> {festival}", "CFESTIVAL")
            signed_post(slack_url, envelope)
            assert "`festival.txt:" in json.dumps(mock.wait("CFESTIVAL")[0]["blocks"], ensure_ascii=False)
    finally:
        slack.terminate()
        slack.wait(30)
        slack_log.close()
        api.shutdown()
    assert not (tmp_path / "no-index").exists()


def test_blobs_span_rows_and_a_shorter_one_leaves_no_rows_behind(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(milvus, "BLOB_ROW", 8)
    engine = milvus._engine(_url(server))
    engine.create_collections(4)
    long, short = bytes(range(256)) * 3, b"a short one"
    engine.put_blob("history", long)
    assert engine.blob("history") == long and int(engine.value("history")) > 100
    engine.put_blob("history", short)
    assert engine.blob("history") == short
    left = engine.get(engine.state, [f"history/{i:06d}" for i in range(200)], ["data"])
    assert len(left) == int(engine.value("history")) == 2
    engine.delete_blob("history")
    assert engine.blob("history") is None and not engine.get(engine.state, list(left), ["data"])


@pytest.mark.parametrize(
    "store, message",
    [
        ("http://127.0.0.1:19530", "is not a Milvus URL; write it as milvus://host:19530"),
        ("milvus://127.0.0.1:19530/9lives", "has a collection prefix ('9lives') that is not letters"),
    ],
)
def test_a_bad_store_url_is_one_clear_line(store: str, message: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    result = subprocess.run(
        [sys.executable, "-m", "qa.faces.cli", "ask", HEADLINE, "--store", store, "--index-dir", str(tmp_path / "index")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_empty_or_unreachable_store_says_what_to_do(server: str, tmp_path: Path) -> None:
    url = _url(server)
    with pytest.raises(QAError, match=f"no index in {url}: build one with: qa index --store {url}"):
        Bot.load(Settings.load(corpus_dir=CORPUS, index_dir=tmp_path / "index", store=url), build_if_missing=False)
    nobody = f"milvus://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(QAError, match="cannot reach the Milvus server at http://127.0.0.1"):
        milvus.read(nobody)
    assert time.monotonic() - started < 60


def test_parse_url() -> None:
    assert milvus.parse_url("milvus://db.example:19531/team_docs") == ("http://db.example:19531", "team_docs")
    assert milvus.parse_url("milvus://localhost") == ("http://localhost:19530", "qa")
    with pytest.raises(QAError, match="not a Milvus URL"):
        milvus.parse_url("milvus:///qa")
