"""The HTTP face: ``POST /ask`` and ``POST /chat`` over one warm ``Bot``.

Answers are the very models ``qa ask --json`` prints, so a client written
against the CLI's JSON works against the API unchanged. Every refusal is a
4xx with ``{"detail": "<one line>"}`` saying what to fix.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.bot import MAX_QUESTION_CHARS, Bot, check_question
from qa.errors import QAError, QuestionError, SourceError
from qa.lru import LRU
from qa.models import Answer, SourceExcerpt

if TYPE_CHECKING:
    from qa.chat import Conversation

# A question is at most 2000 characters: even as JSON \u escapes that is
# 12 KB, so anything much larger is not a question and is refused unread.
MAX_BODY_BYTES = 32 * 1024


class _Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(
        description=f"The question, in any language; 1 to {MAX_QUESTION_CHARS} characters.",
        examples=["What did NIST sign with Korea?"],
    )

    @field_validator("question")
    @classmethod
    def _checked(cls, question: str) -> str:
        """The Bot's own rule, so the API and the CLI refuse the same questions."""
        try:
            return check_question(question)
        except QuestionError as error:
            raise ValueError(str(error)) from None


class AskRequest(_Question):
    k: int | None = Field(None, ge=1, le=100, description="Passages to retrieve; the server's top_k if left out.")


class ChatRequest(_Question):
    conversation_id: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Chosen by the client (a UUID will do); questions with the same id are one conversation.",
        examples=["3f2c9d1e-thread-1"],
    )


class Health(BaseModel):
    status: str


class BodyLimit:
    """Refuse request bodies over a size before anything parses them, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.limit:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse({"detail": f"request body over {self.limit} bytes"}, status_code=413)
        await response(scope, receive, send)


def _one_line(errors: list[dict[str, Any]]) -> tuple[int, str]:
    """FastAPI's error list as a status and a sentence; malformed JSON is a 400, not a 422."""
    for error in errors:
        if error["type"] == "json_invalid":
            return 400, f"body is not valid JSON: {error.get('ctx', {}).get('error', 'parse error')}"
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error["loc"] if p != "body") or "body"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return 422, "; ".join(parts)


def create_app(bot: Bot) -> FastAPI:
    """The API over a loaded bot; every request shares it and its warm model."""
    api = FastAPI(
        title="qa",
        summary="Answer questions from your documents, citing the exact file and lines.",
        description=(
            "Answers quote the documents and cite `file:lines`. `/ask` and `/chat` return the same JSON as "
            "`qa ask --json`; errors are 4xx with `{\"detail\": \"...\"}`."
        ),
        version="0.1.0",
    )
    conversations: LRU[str, Conversation] = LRU(bot.settings.conversations)
    # The Bot promises no thread safety and retrieval is CPU-bound, so
    # FastAPI's worker threads take turns.
    asking = threading.Lock()

    @api.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        status, detail = _one_line(list(error.errors()))
        return JSONResponse({"detail": detail}, status_code=status)

    @api.exception_handler(QAError)
    async def user_error(request: Request, error: QAError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=404 if isinstance(error, SourceError) else 400)

    @api.post("/ask", response_model=Answer, summary="Answer one question, with citations")
    def ask(request: AskRequest) -> Answer:
        """The same object as ``qa ask --json``."""
        with asking:
            return bot.ask(request.question, k=request.k)

    @api.post("/chat", response_model=Answer, summary="Answer a question in a conversation")
    def chat(request: ChatRequest) -> Answer:
        """Follow-ups are read against the conversation's earlier questions; the least recently used conversations are forgotten."""
        conversation = conversations.get_or_create(request.conversation_id, bot.conversation)
        with asking:
            return conversation.ask(request.question)

    @api.get("/source", response_model=SourceExcerpt, summary="Cited lines in context, from the stored extraction")
    def source(source: str, line_start: int, line_end: int | None = None, context: int = Query(3, ge=0, le=200)) -> SourceExcerpt:
        """What ``qa show`` prints: a citation's lines (``/source?source=handbook.pdf&line_start=57``) with their page."""
        return bot.source(source, line_start, line_end, context)

    @api.get("/healthz", response_model=Health, summary="Liveness: the index is loaded and the model warm")
    def healthz() -> Health:
        return Health(status="ok")

    api.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    return api


def serve(app: ASGIApp, host: str, port: int) -> None:
    """Run until interrupted; uvicorn's own access log goes to stderr."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)
