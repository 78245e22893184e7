"""Optional LLM answers over the OpenAI-compatible chat-completions protocol.

One small client serves OpenAI, Ollama, vLLM and the llama.cpp server alike,
since all of them speak ``POST {base_url}/chat/completions`` with or without
server-sent events. The model only ever rewrites what retrieval found: its
answer must cite the passages it was given, every ``[n]`` is checked against
them, and whenever the model fails, times out or cites nothing real the
extractive answer stands instead, so turning an LLM on can never make the bot
answer without evidence.

Passages reach the model as quoted data inside ``<passages>``, with every
angle bracket (and look-alike) of a document, its file name or the question
turned into ‹ ›, so nothing they hold can close that block, and the system
prompt tells the model that instructions found in documents are content, not
orders.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

from qa.stages.answer import citation_of, sentences_of
from qa.errors import LLMError, SettingsError
from qa.crosslingual.language import detect
from qa.stages.lexical import analyze
from qa.models import Answer, Citation, Passage
from qa.secrets import redact, split_credentials
from qa.settings import Settings
from qa.text import attribute, fence

# Where the editable prompt files ship; ``prompts_dir`` points elsewhere.
BUNDLED_PROMPTS = Path(__file__).resolve().parents[2] / "prompts"
PROMPT_FILES = ("system", "answer", "condense")

LANGUAGE_NAMES = {"en": "English", "de": "German", "zh": "Chinese", "ko": "Korean", "ja": "Japanese", "ru": "Russian", "es": "Spanish"}

# [3], [1, 2] or [1][2]; anything else in brackets is left as text.
_MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
# A held-back "[..." longer than this is plainly not a marker.
_MAX_MARKER = 16

# Earlier turns shown to the model when it condenses a follow-up.
TURNS_CONDENSED = 4

TextSink = Callable[[str], None]
Message = dict[str, str]


@dataclass(frozen=True)
class Prompts:
    """The three prompt templates, read from ``prompts/`` so that they can be edited without code."""

    system: str
    answer: str
    condense: str

    @classmethod
    def load(cls, directory: Path | None = None) -> "Prompts":
        directory = directory or BUNDLED_PROMPTS
        texts = {}
        for name in PROMPT_FILES:
            path = directory / f"{name}.md"
            if not path.is_file():
                raise SettingsError(f"prompt file {path} is missing; copy it from {BUNDLED_PROMPTS} or unset prompts_dir")
            texts[name] = path.read_text(encoding="utf-8").strip()
        return cls(**texts)


class ChatClient:
    """Chat completions, whole or streamed; every failure becomes an ``LLMError``.

    A password in the base URL is sent as basic auth and never kept in the URL
    that messages and httpx's logs show; the API key goes in a header only.
    """

    def __init__(self, base_url: str, model: str, api_key: str | None, timeout: float):
        bare_url, credentials = split_credentials(base_url)
        self.url = bare_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.timeout = timeout
        self._secrets = [api_key, *(credentials or ())]
        import httpx  # only when an LLM is configured: no asker without one pays for the import

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # trust_env=False: a proxy variable must never route documents elsewhere.
        self._http = httpx.Client(timeout=timeout, headers=headers, trust_env=False, auth=credentials)

    def complete(self, messages: list[Message]) -> str:
        return "".join(self._request(messages, stream=False))

    def stream(self, messages: list[Message]) -> Iterator[str]:
        """Text deltas as they arrive."""
        return self._request(messages, stream=True)

    def _request(self, messages: list[Message], stream: bool) -> Iterator[str]:
        """Deltas from a worker thread, waited for no longer than the deadline.

        httpx's timeouts bound each connect and each read, so a server that
        answers a byte at a time, or sends its headers slowly, could hold a
        request for many times ``timeout``. The request runs on its own thread
        instead and this generator waits for it until ``timeout`` has passed
        since the call, then gives up; the thread ends by itself at its next
        read (it checks the same deadline) or its read timeout.
        """
        deadline = time.monotonic() + self.timeout
        pieces: queue.Queue[tuple[str, object]] = queue.Queue()
        abandoned = threading.Event()

        def produce() -> None:
            try:
                for delta in self._deltas(messages, stream, deadline, abandoned):
                    pieces.put(("text", delta))
                pieces.put(("end", None))
            except BaseException as error:  # handed to the caller's thread, raised there
                pieces.put(("error", error))

        threading.Thread(target=produce, name="qa-llm-request", daemon=True).start()
        try:
            while True:
                try:
                    kind, value = pieces.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    raise self._timed_out() from None
                if kind == "end":
                    return
                if kind == "error":
                    raise value  # type: ignore[misc]
                yield value  # type: ignore[misc]
        finally:
            abandoned.set()

    def _deltas(self, messages: list[Message], stream: bool, deadline: float, abandoned: threading.Event) -> Iterator[str]:
        import httpx

        payload = {"model": self.model, "messages": messages, "stream": stream, "temperature": 0}
        try:
            with self._http.stream("POST", self.url, json=payload) as response:
                self._check_status(response)
                if not stream:
                    body = bytearray()
                    for part in response.iter_bytes():
                        if abandoned.is_set() or time.monotonic() > deadline:
                            raise self._timed_out()
                        body += part
                    yield self._content(bytes(body))
                    return
                for line in response.iter_lines():
                    if abandoned.is_set() or time.monotonic() > deadline:
                        raise self._timed_out()
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    delta = self._delta(data)
                    if delta:
                        yield delta
        except httpx.TimeoutException:
            raise self._timed_out() from None
        except httpx.HTTPError as error:
            raise self._error(f"cannot reach the LLM server at {self.url}: {error}") from None

    def _timed_out(self) -> LLMError:
        return LLMError(f"the LLM server at {self.url} did not answer within {self.timeout:g}s")

    def _error(self, message: str) -> LLMError:
        """An ``LLMError`` whose message quotes no secret, whatever the server or httpx put in it."""
        return LLMError(" ".join(redact(message, self._secrets).split()))

    def _content(self, body: bytes) -> str:
        try:
            return json.loads(body)["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError):
            raise self._error(f"the LLM server at {self.url} sent a reply that is not a chat completion") from None

    def _delta(self, data: str) -> str:
        try:
            return json.loads(data)["choices"][0].get("delta", {}).get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise self._error(f"the LLM server at {self.url} sent a malformed stream event") from None

    def _check_status(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        response.read()
        try:
            detail = json.loads(response.content)["error"]
            detail = detail.get("message", detail) if isinstance(detail, dict) else detail
        except (ValueError, KeyError, TypeError):
            detail = response.text[:200]
        raise self._error(f"the LLM server at {self.url} answered HTTP {response.status_code}: {detail}")


class CitationFilter:
    """Checks ``[n]`` markers as text streams past, renumbering them in order of first use.

    Markers naming a passage that was not given are dropped; the rest become
    [1], [2] ... in the order the answer first cites them, so that the streamed
    text and ``Answer.citations`` agree. A ``[`` is held back only until it is
    clear whether a marker follows.
    """

    def __init__(self, passages: int):
        self.passages = passages
        self.cited: list[int] = []  # passage numbers (1-based), in order of first citation
        self.dropped = 0
        self.text = ""
        self._held = ""

    def feed(self, delta: str) -> str:
        """The part of the text that can be shown now."""
        self._held += delta
        shown = []
        while self._held:
            bracket = self._held.find("[")
            if bracket < 0:
                shown.append(self._held)
                self._held = ""
                break
            shown.append(self._held[:bracket])
            self._held = self._held[bracket:]
            match = _MARKER.match(self._held)
            if match:
                shown.append(self._rewrite(match))
                self._held = self._held[match.end() :]
            elif re.fullmatch(r"\[[\d\s,]*", self._held) and len(self._held) < _MAX_MARKER:
                break  # may still become a marker
            else:
                shown.append("[")
                self._held = self._held[1:]
        out = "".join(shown)
        self.text += out
        return out

    def finish(self) -> str:
        out, self._held = self._held, ""
        self.text += out
        return out

    def _rewrite(self, match: re.Match[str]) -> str:
        markers = []
        for number in (int(n) for n in match.group(1).split(",")):
            if not 1 <= number <= self.passages:
                self.dropped += 1
                continue
            if number not in self.cited:
                self.cited.append(number)
            marker = f"[{self.cited.index(number) + 1}]"
            if marker not in markers:
                markers.append(marker)
        return "".join(markers)


def quote_passages(passages: list[Passage]) -> str:
    """Passages as numbered, quoted data that no document text or file name can break out of."""
    blocks = []
    for number, passage in enumerate(passages, start=1):
        source = attribute(f"{passage.source}:{passage.line_start}-{passage.line_end}")
        blocks.append(f'<passage n="{number}" source="{source}">\n{fence(passage.text)}\n</passage>')
    return "\n".join(blocks)


def language_name(text: str) -> str:
    return LANGUAGE_NAMES.get(detect(text), "the question's language")


def locate(claim: str, passage: Passage, question_language: str = "en") -> Citation:
    """The passage's sentence that shares most terms with the answer's claim, else the whole passage."""
    claim_terms = set(analyze(claim))
    best, best_overlap = None, 0
    for sentence in sentences_of(passage):
        overlap = len(claim_terms & set(analyze(sentence.text)))
        if overlap > best_overlap:
            best, best_overlap = sentence, overlap
    if best is None:
        return Citation(
            source=passage.source,
            line_start=passage.line_start,
            line_end=passage.line_end,
            char_start=passage.char_start,
            char_end=passage.char_end,
            quote=passage.text,
            page=passage.page,
        )
    return citation_of(best, question_language=question_language)


def claims_by_citation(text: str) -> dict[int, str]:
    """For each renumbered marker, the sentence of the answer that it closes."""
    claims: dict[int, str] = {}
    for sentence in re.split(r"(?<=[.!?。！？])\s*", text):
        for match in _MARKER.finditer(sentence):
            for number in match.group(1).split(","):
                claims.setdefault(int(number), "")
                claims[int(number)] += " " + _MARKER.sub(" ", sentence)
    return claims


class LLM:
    """Answers and condensed follow-ups from a chat model, always checked against the passages."""

    def __init__(self, client: ChatClient, prompts: Prompts):
        self.client = client
        self.prompts = prompts

    @classmethod
    def from_settings(cls, settings: Settings) -> "LLM | None":
        """The configured LLM, or ``None`` when no base URL is set (the default)."""
        if not settings.llm_base_url:
            return None
        if not settings.llm_model:
            raise SettingsError("llm_base_url is set but llm_model is not: set QA_LLM_MODEL (e.g. llama3.1 for Ollama)")
        client = ChatClient(settings.llm_base_url, settings.llm_model, settings.llm_api_key, settings.llm_timeout)
        return cls(client, Prompts.load(settings.prompts_dir))

    def answer(self, question: str, passages: list[Passage], extractive: Answer, on_text: TextSink | None = None) -> Answer:
        """The model's answer with checked citations, or ``extractive`` with a warning saying why not."""
        if not passages:
            return extractive
        user = self.prompts.answer.format(question=fence(question), language=language_name(question), passages=quote_passages(passages))
        messages = [{"role": "system", "content": self.prompts.system}, {"role": "user", "content": user}]
        checked = CitationFilter(len(passages))
        try:
            deltas: Iterable[str] = self.client.stream(messages) if on_text else [self.client.complete(messages)]
            for delta in deltas:
                shown = checked.feed(delta)
                if shown and on_text:
                    on_text(shown)
            tail = checked.finish()
            if tail and on_text:
                on_text(tail)
        except LLMError as error:
            return _fallback(extractive, f"{error}; showing the extractive answer")
        text = checked.text.strip()
        if not checked.cited:
            return _fallback(extractive, "the LLM's answer cited none of the passages; showing the extractive answer")
        claims = claims_by_citation(text)
        language = detect(question)
        citations = [locate(claims.get(n, text), passages[p - 1], language) for n, p in enumerate(checked.cited, start=1)]
        warnings = [f"removed {checked.dropped} citation marker(s) naming no passage"] if checked.dropped else []
        update = {"answer": text, "abstained": False, "citations": citations, "short_answer": None, "mode": "llm", "warnings": [*extractive.warnings, *warnings]}
        return extractive.model_copy(update=update)

    def condense(self, question: str, turns: list[Answer]) -> str:
        """The follow-up rewritten as a standalone question (an ``LLMError`` if the model fails)."""
        conversation = "\n".join(
            f"User: {fence(turn.question)}\nAssistant: {fence(turn.answer)}" for turn in turns[-TURNS_CONDENSED:]
        )
        prompt = self.prompts.condense.format(conversation=conversation, question=fence(question))
        rewritten = " ".join(self.client.complete([{"role": "user", "content": prompt}]).split())
        if not rewritten:
            raise LLMError("the LLM returned an empty condensed question")
        return rewritten.strip('"“”')


def _fallback(extractive: Answer, warning: str) -> Answer:
    return extractive.model_copy(update={"warnings": [*extractive.warnings, warning]})
