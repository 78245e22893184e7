"""Shared fixtures: the seed corpus indexed once per session with the real model,
and a fake OpenAI-compatible LLM server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from qa.stages import embed, onnx_encoder
from qa.stages import index as index_store
from qa.bot import Bot
from qa.settings import Settings

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"
HEADLINE = "What did NIST sign with Korea?"
KOREAN = HEADLINE_SOURCE = "002_7257b5aa37c3b2f3.txt"


def free_port() -> int:
    """A loopback port nobody listens on; the servers under test bind it next."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tiny_tokenizer(words):
    """A BERT-style word-level tokenizer over ``words``, for the tiny models the tests build."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]", model_max_length=64
    )


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests see neither the developer's QA_* or SLACK_* settings nor a qa.toml, nor their chat history.

    Where the machine keeps FreeDict's dictionary (QA_FREEDICT_DIR) is no setting: it stays, so that
    the tests read the same dictionaries as the modules they import, which look when imported.
    """
    import os

    for name in list(os.environ):
        if name.startswith(("QA_", "SLACK_")) and name not in MACHINE_VARIABLES:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


MACHINE_VARIABLES = ("QA_FREEDICT_DIR", "QA_REQUIRE_FREEDICT", "QA_REQUIRE_CHROMIUM", "QA_CACHE_DIR")


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    """Until a child started on ``port`` listens; fails with the end of its log if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"{process.args[:4]} did not listen on {port}: {log.read_text()[-2000:]}")
            time.sleep(0.1)


def cited_source(server: str, question: str) -> tuple[int, str]:
    """Ask a running ``qa serve``: its status and the first cited file (or what it said instead)."""
    request = urllib.request.Request(server + "/ask", data=json.dumps({"question": question}).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, body = response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")[:200]
    return status, body["citations"][0]["source"] if body["citations"] else str(body)[:200]


@contextlib.contextmanager
def qa_serve(index_dir: Path, env: dict[str, str] | None = None, startup: float = 120.0) -> Iterator[str]:
    """A real ``qa serve`` on a free loopback port over an index of the seed corpus; yields its URL.

    It runs in a scratch folder with none of the developer's QA_* settings, plus
    ``env``; its log goes to a file (a pipe nobody reads would fill and stall it)
    and is shown if it fails to start.
    """
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("QA_", "SLACK_")) or k in MACHINE_VARIABLES}
    command = [sys.executable, "-m", "qa.faces.cli", "serve", "--port", str(port), "--corpus", str(CORPUS), "--index-dir", str(index_dir)]
    with tempfile.TemporaryDirectory(prefix="qa-serve-") as scratch, open(Path(scratch) / "serve.log", "w+") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=scratch, env={**clean, **(env or {})})
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + startup
        try:
            while True:
                if process.poll() is not None:
                    output.seek(0)
                    pytest.fail(f"qa serve exited with {process.returncode}:\n{output.read()}")
                try:
                    with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"qa serve did not answer /healthz within {startup}s")
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session", autouse=True)
def _private_user_folders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The user's config, logs and state (qa.toml, the question log, chat history) in a folder of the session's.

    Session-wide, because module fixtures (the Slack and HTTP servers) read settings before any per-test fixture runs.
    The cache stays where it is: the parsed dictionaries there take seconds to rebuild.
    """
    home = tmp_path_factory.mktemp("user")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
            patch.setenv(name, str(home / name.lower()))
        yield home


@pytest.fixture(scope="session", autouse=True)
def _load_model_once() -> Iterator[None]:
    """Every test that embeds shares one loaded model: loading costs seconds."""
    original = embed.load_sentence_transformer
    embed.load_sentence_transformer = functools.lru_cache(maxsize=4)(original)
    yield
    embed.load_sentence_transformer = original


@pytest.fixture
def own_exports(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A machine cache of ONNX exports of the test's own, for tests that break or remove one.

    Other tests share the machine's, where a model is exported once for every index, as for users.
    """
    folder = tmp_path / "machine-cache" / "models"
    machine = onnx_encoder.export_dir
    monkeypatch.setattr(onnx_encoder, "export_dir", lambda model: folder / machine(model).name)
    return folder


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("index")
    Bot.index(Settings.load(corpus_dir=CORPUS, index_dir=path))
    return path


@pytest.fixture(scope="session")
def seed_settings(index_dir: Path) -> Settings:
    return Settings(corpus_dir=CORPUS, index_dir=index_dir)


@pytest.fixture(scope="session")
def bot(seed_settings: Settings) -> Bot:
    return Bot.load(seed_settings, build_if_missing=False)


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    """A writable copy of the seed corpus, for tests that change files."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    return target


@pytest.fixture
def make_bot(bot: Bot, index_dir: Path) -> Callable[..., Bot]:
    """A bot over the session's index with other settings, sharing the loaded model."""

    def make(**overrides: object) -> Bot:
        settings = Settings.load(**{"corpus_dir": CORPUS, "index_dir": index_dir, **overrides})
        bot._encode_query("warm")  # load the model once, then share it
        return Bot(settings, index_store.read(index_dir), embedder=bot._encoder)

    return make


Reply = Callable[[dict], "Scripted"]


@dataclass
class Scripted:
    """What the fake server does with one request."""

    text: str = ""
    status: int = 200
    delay: float = 0.0
    drip: float = 0.0  # seconds between bytes: a server that answers a byte at a time
    chunks: list[str] | None = None  # stream in these pieces; default: word by word
    raw_events: list[str] | None = None  # stream these ``data:`` payloads as they are


@dataclass
class FakeLLM:
    """An OpenAI-compatible chat-completions server; ``reply`` decides each answer."""

    reply: Reply
    requests: list[dict] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    fake = FakeLLM(reply=lambda request: Scripted("No reply scripted."))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            if self.path != "/v1/chat/completions":
                self.send_error(404)
                return
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            request["authorization"] = self.headers.get("Authorization")
            fake.requests.append(request)
            scripted = self._scripted = fake.reply(request)
            time.sleep(scripted.delay)
            try:
                self._answer(request, scripted)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up, as a timing-out client should

        def _answer(self, request: dict, scripted: Scripted) -> None:
            if scripted.status != 200:
                self._send(scripted.status, "application/json", json.dumps({"error": {"message": scripted.text}}).encode())
            elif request.get("stream"):
                self._stream(scripted)
            else:
                body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": scripted.text}, "finish_reason": "stop"}]}
                self._send(200, "application/json", json.dumps(body).encode())

        def _send(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not self._scripted.drip:
                self.wfile.write(body)
                return
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(self._scripted.drip)

        def _stream(self, scripted: Scripted) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            pieces = scripted.chunks if scripted.chunks is not None else [w + " " for w in scripted.text.split(" ")]
            events = scripted.raw_events or [json.dumps({"choices": [{"index": 0, "delta": {"content": p}}]}) for p in pieces]
            for event in events:
                self.wfile.write(f"data: {event}\n\n".encode())
                self.wfile.flush()
                time.sleep(scripted.drip)
            self.wfile.write(b"data: [DONE]\n\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield fake
    server.shutdown()
    server.server_close()
