"""The HTTP face: the chat page at ``/`` and the JSON API over one warm ``Bot``.

Answers are the very models ``qa ask --json`` prints, so a client written
against the CLI's JSON works against the API unchanged. Every refusal is a
4xx with ``{"detail": "<one line>"}`` saying what to fix.

Everything the page and ``/docs`` load ships in ``qa/faces/web/``: no CDN, no
build step, so both work with no internet. The server is safe to expose
beyond loopback when ``api_token`` is set (see ``TokenGate``).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.bot import MAX_QUESTION_CHARS, Bot, check_question
from qa.errors import QAError, QuestionError, SourceError
from qa.faces.feedback import FeedbackLog, Vote
from qa.lru import LRU
from qa.models import Answer, SourceExcerpt
from qa.questionlog import QuestionLog
from qa.settings import Settings

if TYPE_CHECKING:
    from qa.chat import Conversation

log = logging.getLogger(__name__)

# The page, its login form, and the vendored Swagger UI (Apache-2.0, see web/swagger/LICENSE).
WEB = Path(__file__).resolve().parent / "web"

# The page's own policy: its script, styles and requests go to this server only.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

SESSION_COOKIE = "qa_session"
# Paths open without the token: a load balancer's probe, the login form and the
# page's own static files (code that ships in the public package, nothing secret).
OPEN_PATHS = ("/healthz", "/login")
OPEN_PREFIX = "/static/"

CONVERSATION_ID = r"^[A-Za-z0-9_.:-]+$"

# The default of the max_body_bytes setting, and what the Slack bot's HTTP receiver takes.
MAX_BODY_BYTES: int = Settings.model_fields["max_body_bytes"].default


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
        pattern=CONVERSATION_ID,
        description="Chosen by the client (a UUID will do); questions with the same id are one conversation.",
        examples=["3f2c9d1e-thread-1"],
    )


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer_id: str = Field(min_length=1, max_length=64, description="The `answer_id` that came with the answer from `/chat/stream`.")
    vote: Literal["up", "down"]


class Health(BaseModel):
    status: str


class Recorded(BaseModel):
    status: Literal["recorded"] = "recorded"


@dataclass(frozen=True)
class _Answered:
    """An answer awaiting a vote, with the conversation's earlier questions."""

    answer: Answer
    history: list[str]


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


class TokenGate:
    """Every request but ``OPEN_PATHS`` carries the token, as ``Authorization: Bearer`` or the page's session cookie.

    The page cannot add a header to its own first load, so a browser signs in
    once through the form at ``/login`` and gets a cookie: HttpOnly (scripts
    never see it) and SameSite=Strict (another site's form cannot ride on it).
    The cookie holds an HMAC of the token, not the token. A browser that asks
    for a page without either gets the form instead of the JSON refusal.
    """

    def __init__(self, app: ASGIApp, token: str):
        self.app = app
        self._token = token.encode("utf-8")
        self.session = session_value(token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in OPEN_PATHS or path.startswith(OPEN_PREFIX) or self._allows(scope):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if scope["method"] == "GET" and b"text/html" in headers.get(b"accept", b""):
            response: Response = login_page(scope.get("root_path", ""), path, status=401)
        else:
            response = JSONResponse(
                {"detail": "missing or wrong token: send the header Authorization: Bearer <api_token>"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        await response(scope, receive, send)

    def _allows(self, scope: Scope) -> bool:
        headers = dict(scope["headers"])
        scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self._token):
            return True
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get(b"cookie", b"").decode("latin-1"))
        except CookieError:
            return False
        morsel = cookies.get(SESSION_COOKIE)
        return morsel is not None and hmac.compare_digest(morsel.value.encode("latin-1"), self.session.encode("latin-1"))


def session_value(token: str) -> str:
    """What the session cookie holds: proof of the token that does not reveal it."""
    return hmac.new(token.encode("utf-8"), b"qa web session", hashlib.sha256).hexdigest()


def login_page(root_path: str, next_path: str, status: int = 200, error: str = "") -> HTMLResponse:
    """The sign-in form, with the path to go back to and, after a wrong token, why."""
    page = (WEB / "login.html").read_text(encoding="utf-8")
    page = page.replace("{{root}}", html.escape(root_path)).replace("{{next}}", html.escape(_safe_next(next_path)))
    page = page.replace("{{error}}", f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "")
    return HTMLResponse(page, status_code=status, headers=PAGE_HEADERS)


def _safe_next(path: str) -> str:
    """Only a path on this server: never ``//elsewhere`` or a full URL."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


class Buckets:
    """A token bucket per client: ``rate`` requests a minute, bursts of up to ``rate``.

    Clients are keyed by address; behind a reverse proxy every request comes
    from the proxy, so the limit is then one for all.
    """

    def __init__(self, rate: int, clients: int = 10_000):
        self.rate = rate
        self._buckets: LRU[str, tuple[float, float]] = LRU(clients)

    def take(self, client: str, now: float) -> float:
        """0 if the request may go ahead (and count it), else the seconds until it may."""
        tokens, then = self._buckets.get(client) or (float(self.rate), now)
        tokens = min(float(self.rate), tokens + (now - then) * self.rate / 60.0)
        if tokens < 1.0:
            self._buckets.put(client, (tokens, now))
            return (1.0 - tokens) * 60.0 / self.rate
        self._buckets.put(client, (tokens - 1.0, now))
        return 0.0


class RateLimit:
    """429 with ``Retry-After`` for a client over the rate; static files and ``/healthz`` are free."""

    def __init__(self, app: ASGIApp, rate: int):
        self.app = app
        self.buckets = Buckets(rate)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path != "/healthz" and not path.startswith(OPEN_PREFIX):
            client = (scope.get("client") or ("unknown", 0))[0]
            wait = self.buckets.take(client, time.monotonic())
            if wait:
                seconds = max(1, round(wait + 0.5))
                response = JSONResponse(
                    {"detail": f"too many requests: over {self.buckets.rate} a minute from {client}; retry in {seconds} s"},
                    status_code=429,
                    headers={"Retry-After": str(seconds)},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _one_line(errors: list[dict[str, Any]]) -> tuple[int, str]:
    """FastAPI's error list as a status and a sentence; malformed JSON is a 400, not a 422."""
    for error in errors:
        if error["type"] == "json_invalid":
            return 400, f"body is not valid JSON: {error.get('ctx', {}).get('error', 'parse error')}"
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error["loc"] if p not in ("body", "query")) or "body"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return 422, "; ".join(parts)


def _event(name: str, data: Any) -> str:
    """One server-sent event; JSON never holds a raw line break, so one ``data:`` line suffices."""
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def create_app(bot: Bot) -> FastAPI:
    """The page and the API over a loaded bot; every request shares it and its warm model."""
    settings = bot.settings
    api = FastAPI(
        title="qa",
        summary="Answer questions from your documents, citing the exact file and lines.",
        description=(
            "Answers quote the documents and cite `file:lines`. `/ask` and `/chat` return the same JSON as "
            "`qa ask --json`; errors are 4xx with `{\"detail\": \"...\"}`. "
            + ("Every endpoint but `/healthz` wants `Authorization: Bearer <token>`." if settings.api_token else "")
        ),
        version="0.1.0",
        docs_url=None,  # served below from the vendored Swagger UI, not a CDN
        redoc_url=None,
    )
    conversations: LRU[str, Conversation] = LRU(settings.conversations)
    answered: LRU[str, _Answered] = LRU(settings.conversations)
    feedback = FeedbackLog(settings.feedback_log)
    questions = QuestionLog.from_settings(settings)
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

    @api.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(WEB / "index.html", headers={**PAGE_HEADERS, "Cache-Control": "no-cache"})

    @api.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        """The page's sign-in: a form post of the token, answered with the session cookie."""
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        next_path = _safe_next(form.get("next", ["/"])[0])
        root = request.scope.get("root_path", "")
        if settings.api_token is None:
            return RedirectResponse(root + next_path, status_code=303)
        given = form.get("token", [""])[0].strip()
        if not hmac.compare_digest(given.encode("utf-8"), settings.api_token.encode("utf-8")):
            return login_page(root, next_path, status=401, error="That token is not right; ask whoever runs this server for it.")
        response = RedirectResponse(root + next_path, status_code=303)
        response.set_cookie(
            SESSION_COOKIE, session_value(settings.api_token), httponly=True, samesite="strict",
            secure=request.url.scheme == "https", path=(root or "") + "/",
        )
        return response

    @api.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        """FastAPI's Swagger UI with its assets served from the package, so it renders offline."""
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + (api.openapi_url or "/openapi.json"),
            title="qa API",
            swagger_js_url=root + "/static/swagger/swagger-ui-bundle.js",
            swagger_css_url=root + "/static/swagger/swagger-ui.css",
            swagger_favicon_url=root + "/static/swagger/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @api.post("/ask", response_model=Answer, summary="Answer one question, with citations")
    def ask(request: AskRequest) -> Answer:
        """The same object as ``qa ask --json``."""
        with asking:
            return questions.asked("http", bot.ask, request.question, k=request.k)

    @api.post("/chat", response_model=Answer, summary="Answer a question in a conversation")
    def chat(request: ChatRequest) -> Answer:
        """Follow-ups are read against the conversation's earlier questions; the least recently used conversations are forgotten."""
        conversation = conversations.get_or_create(request.conversation_id, bot.conversation)
        with asking:
            history = [turn.question for turn in conversation.turns]
            return questions.asked("http", conversation.ask, request.question, history=history)

    @api.post(
        "/chat/stream",
        summary="Answer in a conversation, streamed as server-sent events",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}, "description": "Events `text`, then `answer` or `error`."}},
    )
    def chat_stream(request: ChatRequest) -> StreamingResponse:
        """What the page uses. Events: `text` (`{"text": "..."}`, pieces of an LLM's reply as they come; none
        without an LLM), then one `answer` (`{"answer_id": "...", "answer": <the /chat object>}`; the id is
        what `/feedback` takes) or one `error` (`{"detail": "..."}`). The final answer replaces the streamed
        text: its citation markers are checked and renumbered."""
        conversation = conversations.get_or_create(request.conversation_id, bot.conversation)
        events: queue.Queue[str | None] = queue.Queue()

        def work() -> None:
            try:
                answer_id = uuid.uuid4().hex  # the question log's entry id too, so a vote counts there as well
                with asking:
                    history = [turn.question for turn in conversation.turns]
                    answer = questions.asked(
                        "http", conversation.ask, request.question, history=history, entry_id=answer_id,
                        on_text=lambda text: events.put(_event("text", {"text": text})),
                    )
                answered.put(answer_id, _Answered(answer, history))
                events.put(_event("answer", {"answer_id": answer_id, "answer": answer.model_dump(mode="json")}))
            except QAError as error:
                events.put(_event("error", {"detail": str(error)}))
            except Exception:  # a bug: its traceback goes to the log, the page gets one line
                log.exception("answering %r failed", request.question)
                events.put(_event("error", {"detail": "the server failed to answer; its log has the details"}))
            finally:
                events.put(None)

        def stream() -> Iterator[str]:
            while (event := events.get()) is not None:
                yield event

        threading.Thread(target=work, name="qa-answer", daemon=True).start()
        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    @api.post("/feedback", response_model=Recorded, summary="Vote 👍/👎 on an answer from /chat/stream")
    def vote(request: FeedbackRequest) -> Recorded:
        """Appended to the same feedback log as the Slack bot's votes (setting `feedback_log`), and counted in the question log."""
        found = answered.get(request.answer_id)
        if found is None:
            raise HTTPException(404, "that answer is no longer kept (the server restarted or has answered many since); ask again to vote")
        feedback.append(Vote.of(request.vote, found.answer, found.history, face="web"))
        questions.vote(request.answer_id, request.vote)
        return Recorded()

    @api.get("/source", response_model=SourceExcerpt, summary="Cited lines in context, from the stored extraction")
    def source(
        source: str = Query(min_length=1, max_length=4096, description="A citation's `source`: the id of an indexed document."),
        line_start: int = Query(ge=1, description="First cited line."),
        line_end: int | None = Query(None, ge=1, description="Last cited line (default: `line_start`)."),
        context: int = Query(3, ge=0, le=200, description="Lines shown before and after."),
        char_start: int | None = Query(None, ge=0, description="A citation's `char_start`, with `char_end`: its quote is `marked`."),
        char_end: int | None = Query(None, ge=1, description="A citation's `char_end`."),
    ) -> SourceExcerpt:
        """What ``qa show`` prints: a citation's lines (``/source?source=handbook.pdf&line_start=57``) with their page.
        Reads only documents in the index, by id, never another path."""
        return bot.source(source, line_start, line_end, context, char_start=char_start, char_end=char_end)

    @api.get("/healthz", response_model=Health, summary="Liveness: the index is loaded and the model warm")
    def healthz() -> Health:
        return Health(status="ok")

    api.mount("/static", StaticFiles(directory=WEB), name="static")

    # The last added runs first: CORS answers preflights (which carry no token),
    # then the rate limit, the token, and the body size.
    api.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.api_token:
        api.add_middleware(TokenGate, token=settings.api_token)
    if settings.rate_limit:
        api.add_middleware(RateLimit, rate=settings.rate_limit)
    if settings.cors_origins:
        api.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"]
        )
    return api


def serve(app: ASGIApp, host: str, port: int) -> None:
    """Run until interrupted; uvicorn's own access log goes to stderr."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)
