"""The chat page in a real browser: Debian's chromium driven by Playwright, against ``qa serve``.

Every request the page makes is intercepted: one that leaves 127.0.0.1 is
aborted and fails the test, so the page and ``/docs`` are shown to work offline.
Set SCREENSHOTS_DIR to keep the screenshots (the README's come from here).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import HEADLINE, HEADLINE_SOURCE, REPO, FakeLLM, Scripted, free_port, qa_serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]
HEADLINE_CITATION = f"{HEADLINE_SOURCE}:22"
ABSTAINING = "Who painted the Mona Lisa?"  # off-topic: refused by the calibrated default
TOKEN = "a-token-for-the-browser-test"
DESKTOP = {"width": 1280, "height": 760}
PHONE = {"width": 390, "height": 844}
WAIT = 60_000  # ms: an answer on a busy 2-core machine

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'")
expect = sync_api.expect


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        if os.environ.get("QA_REQUIRE_CHROMIUM"):
            pytest.fail(f"{CHROMIUM} is missing and QA_REQUIRE_CHROMIUM is set: install.sh installs it with apt-get install chromium")
        pytest.skip(f"{CHROMIUM} is not installed (Debian: apt-get install chromium; install.sh does it)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def feedback_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web-feedback") / "feedback.jsonl"


@pytest.fixture(scope="module")
def server(index_dir: Path, feedback_log: Path) -> Iterator[str]:
    with qa_serve(index_dir, env={"QA_FEEDBACK_LOG": str(feedback_log)}) as url:
        yield url


class Requests:
    """Every request a page made, the ones that left loopback aborted."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.outside: list[str] = []

    def route(self, route: object) -> None:
        url = route.request.url
        self.urls.append(url)
        if urlsplit(url).hostname != "127.0.0.1":
            self.outside.append(url)
            route.abort()
        else:
            route.continue_()


@contextlib.contextmanager
def opened(browser: object, viewport: dict[str, int] = DESKTOP) -> Iterator[tuple[object, Requests]]:
    context = browser.new_context(viewport=viewport)
    requests = Requests()
    context.route("**/*", requests.route)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page, requests
    finally:
        context.close()
    assert not requests.outside, f"the page asked outside 127.0.0.1: {requests.outside}"
    assert not errors, f"script errors on the page: {errors}"


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    with opened(browser) as (page, _):
        yield page


def ask(page: object, question: str) -> object:
    """Type the question, press Enter, and wait for its answer; the answer's box."""
    turns = page.locator("article.turn")
    before = turns.count()
    box = page.get_by_label("Your question")
    box.fill(question)
    box.press("Enter")
    answer = turns.nth(before).locator(".answer")
    expect(answer).to_have_attribute("aria-busy", "false", timeout=WAIT)
    return answer


def screenshot(page: object, name: str) -> None:
    """Into SCREENSHOTS_DIR (relative to the repository) if set, in 64 colours: small enough to commit, sharp enough to read."""
    if os.environ.get("SCREENSHOTS_DIR"):
        from PIL import Image

        folder = REPO / os.environ["SCREENSHOTS_DIR"]
        folder.mkdir(parents=True, exist_ok=True)
        image = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
        image.quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(folder / name, optimize=True)


def test_the_headline_question_shows_its_answer_and_citation(server: str, page: object) -> None:
    page.goto(server + "/")
    expect(page.get_by_label("Your question")).to_be_focused()
    answer = ask(page, HEADLINE)
    expect(answer.locator(".answer-text")).to_contain_text("협력의향서(LOI)")
    expect(answer.locator(".citations .chip").first).to_have_text(HEADLINE_CITATION)
    expect(answer.locator(".citations blockquote").first).to_contain_text("국립표준기술연구소(NIST)")


def test_opening_the_citation_highlights_line_22(server: str, browser: object) -> None:
    for viewport, name in ((DESKTOP, "chat.png"), (PHONE, "chat-phone.png")):
        with opened(browser, viewport) as (page, _):
            page.goto(server + "/")
            answer = ask(page, HEADLINE)
            chip = answer.locator(".citations .chip").first
            chip.click()
            dialog = page.get_by_role("dialog")
            expect(dialog).to_be_visible()
            expect(dialog.get_by_role("heading")).to_have_text(HEADLINE_CITATION)
            line = dialog.locator('.line.cited[data-line="22"]')
            expect(line).to_be_visible()
            expect(line.locator("mark")).to_contain_text("협력의향서(LOI)")
            expect(line).to_be_focused()
            assert dialog.locator(".line.cited").count() == 1
            assert dialog.locator(".line").count() > 1  # the line in its context
            wide = page.evaluate("document.scrollingElement.scrollWidth > window.innerWidth")
            assert not wide, f"the page scrolls sideways at {viewport['width']} px"
            screenshot(page, name)
            page.keyboard.press("Escape")
            expect(dialog).to_be_hidden()
            expect(chip).to_be_focused()


def test_keyboard_only(server: str, page: object) -> None:
    page.goto(server + "/")
    page.keyboard.type(HEADLINE)  # the question box has the focus on load
    page.keyboard.press("Enter")
    expect(page.locator(".answer").first).to_have_attribute("aria-busy", "false", timeout=WAIT)
    for _ in range(30):  # back through the answer to its citation
        page.keyboard.press("Shift+Tab")
        if page.evaluate("document.activeElement.textContent") == HEADLINE_CITATION:
            break
    else:
        pytest.fail("Shift+Tab never reached the citation chip")
    page.keyboard.press("Enter")
    expect(page.locator('.line.cited[data-line="22"]')).to_be_focused()
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.textContent") == HEADLINE_CITATION


def test_a_follow_up_and_a_new_conversation(server: str, page: object) -> None:
    page.goto(server + "/")
    ask(page, HEADLINE)
    follow_up = ask(page, "Where was it signed?")
    expect(follow_up.locator(".citations .chip").first).to_contain_text(HEADLINE_SOURCE)
    expect(follow_up.locator(".note", has_text="Searched as:")).to_have_count(1)
    page.get_by_role("button", name="New conversation").click()
    expect(page.locator("article.turn")).to_have_count(0)
    expect(page.get_by_label("Your question")).to_be_focused()


def test_a_vote_goes_to_the_feedback_log(server: str, page: object, feedback_log: Path) -> None:
    page.goto(server + "/")
    answer = ask(page, HEADLINE)
    answer.get_by_role("button", name="Good answer").click()
    expect(answer.get_by_role("status")).to_have_text("Thanks, your vote is recorded.")
    expect(answer.get_by_role("button", name="Good answer")).to_have_attribute("aria-pressed", "true")
    votes = [json.loads(line) for line in feedback_log.read_text(encoding="utf-8").splitlines()]
    assert [(v["vote"], v["face"], v["question"]) for v in votes][-1] == ("up", "web", HEADLINE)
    assert votes[-1]["citations"][0]["source"] == HEADLINE_SOURCE


def test_an_abstention_shows_the_closest_passages(server: str, page: object) -> None:
    page.goto(server + "/")
    answer = ask(page, ABSTAINING)
    expect(answer).to_have_class("answer abstained")
    expect(answer.locator(".answer-text")).to_contain_text("do not answer")
    passages = answer.locator("details.passages")
    expect(passages).to_have_attribute("open", "")
    expect(passages.locator("summary")).to_contain_text("Closest passages")
    chips = passages.locator(".chip")
    assert chips.count() >= 1
    chips.first.click()  # a passage opens like a citation
    expect(page.locator(".line.cited").first).to_be_visible()


def test_pages_and_reading_aids_are_shown_when_an_answer_has_them(server: str, page: object) -> None:
    """Fields that PDFs (``page``) and foreign quotes (``reading``) bring, rendered from a scripted answer."""
    citation = {
        "source": "report.pdf", "line_start": 40, "line_end": 41, "char_start": 0, "char_end": 8, "page": 3,
        "quote": "협력의향서를 체결했다.", "marks": [[0, 5]], "reading": "signed a letter of intent",
    }
    answer = {
        "question": HEADLINE, "answer": "협력의향서를 체결했다. [1]", "abstained": False, "citations": [citation],
        "passages": [], "mode": "extractive", "searched": None, "warnings": [],
    }
    body = f"event: answer\ndata: {json.dumps({'answer_id': 'x1', 'answer': answer})}\n\n"
    page.route("**/chat/stream", lambda route: route.fulfill(status=200, content_type="text/event-stream", body=body))
    page.goto(server + "/")
    shown = ask(page, HEADLINE)
    expect(shown.locator(".citations .chip")).to_have_text("report.pdf:40-41 (page 3)")
    expect(shown.locator(".citations strong")).to_have_text("협력의향서")
    expect(shown.locator(".reading")).to_have_text("Reading: signed a letter of intent")
    expect(shown.get_by_role("button", name="citation 1, report.pdf:40-41 (page 3)")).to_be_visible()


def test_every_control_has_a_name(server: str, page: object) -> None:
    page.goto(server + "/")
    ask(page, HEADLINE)
    nameless = page.evaluate(
        """() => [...document.querySelectorAll('button, textarea, input, summary, [role=group]')].filter((node) => {
            const labelled = node.getAttribute('aria-labelledby');
            const name = node.getAttribute('aria-label') || (labelled && document.getElementById(labelled)?.textContent)
                || (node.labels && [...node.labels].map((l) => l.textContent).join('')) || node.textContent;
            return !name.trim();
        }).map((node) => node.outerHTML)"""
    )
    assert nameless == []


CONTRAST = """() => {
    const rgb = (colour) => colour.match(/[\\d.]+/g).map(Number);
    const luminance = ([r, g, b]) => {
        const [R, G, B] = [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
        return 0.2126 * R + 0.7152 * G + 0.0722 * B;
    };
    const background = (node) => {
        for (; node; node = node.parentElement) {
            const colour = rgb(getComputedStyle(node).backgroundColor);
            if (colour.length < 4 || colour[3] > 0) return colour.slice(0, 3);
        }
        return [255, 255, 255];
    };
    const low = [];
    for (const node of document.querySelectorAll('body *')) {
        const own = [...node.childNodes].some((child) => child.nodeType === 3 && child.textContent.trim());
        if (!own || !node.checkVisibility() || node.closest('.visually-hidden') || node.disabled) continue;
        const style = getComputedStyle(node);
        const [a, b] = [luminance(rgb(style.color).slice(0, 3)), luminance(background(node))];
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        const large = parseFloat(style.fontSize) >= 24 || (parseFloat(style.fontSize) >= 18.66 && Number(style.fontWeight) >= 700);
        if (ratio < (large ? 3 : 4.5)) low.push(`${ratio.toFixed(2)}: ${node.outerHTML.slice(0, 80)}`);
    }
    return low;
}"""


def test_text_contrast_meets_wcag_aa(server: str, page: object) -> None:
    page.goto(server + "/")
    assert page.evaluate(CONTRAST) == []
    answer = ask(page, HEADLINE)
    answer.locator("details.passages summary").click()
    assert page.evaluate(CONTRAST) == []
    answer.locator(".citations .chip").first.click()
    expect(page.locator(".line.cited")).to_be_visible()
    assert page.evaluate(CONTRAST) == []  # the cited lines, on their highlight


def test_every_request_stays_on_loopback(server: str, browser: object) -> None:
    with opened(browser) as (page, requests):
        page.goto(server + "/")
        ask(page, HEADLINE).locator(".citations .chip").first.click()
        expect(page.locator(".line.cited")).to_be_visible()
        page.goto(server + "/docs")
        expect(page.locator(".opblock").first).to_be_visible(timeout=WAIT)
    paths = {urlsplit(url).path for url in requests.urls}
    assert {"/", "/static/app.js", "/static/style.css", "/chat/stream", "/source", "/docs", "/openapi.json"} <= paths
    assert all(urlsplit(url).hostname == "127.0.0.1" for url in requests.urls)


def test_docs_render(server: str, page: object) -> None:
    page.goto(server + "/docs")
    for path in ("/ask", "/chat", "/chat/stream", "/source", "/feedback"):
        expect(page.locator(f'.opblock-summary-path[data-path="{path}"]')).to_be_visible(timeout=WAIT)


@contextlib.contextmanager
def in_process(app: object) -> Iterator[str]:
    """The app on a loopback port in this process, for settings a test picks (an LLM, a token)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_an_llm_answer_streams_in(browser: object, make_bot, fake_llm: FakeLLM) -> None:
    from qa.faces.http import create_app

    pieces = ["KIAT and NIST ", "signed a letter ", "of intent in Washington [1]."]
    fake_llm.reply = lambda request: Scripted("".join(pieces), chunks=pieces) if request.get("stream") else Scripted("What did NIST sign with Korea?")
    with in_process(create_app(make_bot(llm_base_url=fake_llm.url, llm_model="fake"))) as url, opened(browser) as (page, _):
        page.add_init_script(
            "new MutationObserver(() => { if (document.querySelector('.answer-text.streaming')) window.streamed = true; })"
            ".observe(document, {subtree: true, childList: true});"
        )
        page.goto(url + "/")
        answer = ask(page, HEADLINE)
        assert page.evaluate("window.streamed === true"), "the streamed text was never shown"
        expect(answer.locator(".answer-text")).to_have_text("KIAT and NIST signed a letter of intent in Washington [1].")
        expect(answer.get_by_role("button", name=f"citation 1, {HEADLINE_SOURCE}", exact=False)).to_be_visible()


def test_with_a_token_the_page_signs_in_first(browser: object, make_bot) -> None:
    from qa.faces.http import create_app

    with in_process(create_app(make_bot(api_token=TOKEN))) as url, opened(browser) as (page, _):
        page.goto(url + "/")
        token = page.get_by_label("Access token")
        expect(token).to_be_focused()
        token.fill("not the token, not at all")
        token.press("Enter")
        expect(page.get_by_role("alert")).to_contain_text("not right")
        page.get_by_label("Access token").fill(TOKEN)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(url + "/")
        expect(page.get_by_label("Your question")).to_be_focused()  # the page's script is running
        answer = ask(page, HEADLINE)
        expect(answer.locator(".citations .chip").first).to_have_text(HEADLINE_CITATION)
