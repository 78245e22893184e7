"""The ``qa`` command: index a folder, ask it questions, check it against a golden file.

A thin face over ``Bot``: it parses flags into ``Settings``, draws progress
and prints models. Every ``QAError`` becomes one line on stderr and exit 1.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from qa.bot import Bot, Progress
from qa.errors import QAError
from qa.evaluate import load_golden, misses, summarise
from qa.models import Answer
from qa.settings import Settings

app = typer.Typer(
    help="Answer questions from your documents, citing the exact file and lines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

IndexDir = Annotated[Optional[Path], typer.Option("--index-dir", help="Index folder [default: index]", show_default=False)]
Model = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="sentence-transformers model name or local path [default: all-MiniLM-L6-v2]", show_default=False),
]
Corpus = Annotated[Optional[Path], typer.Option("--corpus", help="Corpus folder [default: corpus]", show_default=False)]
Retriever = Annotated[Optional[str], typer.Option("--retriever", help="dense, lexical or hybrid [default: hybrid]", show_default=False)]
Config = Annotated[Optional[Path], typer.Option("--config", help="Config file [default: ./qa.toml or $QA_CONFIG]", show_default=False)]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


@contextmanager
def user_errors() -> Iterator[None]:
    """One line and a non-zero exit for the user's mistakes; tracebacks only for bugs."""
    try:
        yield
    except QAError as error:
        err.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Progress]:
    """A rich progress bar on a terminal; silence in pipes and CI logs."""
    if not (enabled and err.is_terminal):
        yield lambda stage, done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeRemainingColumn

    with Bar(TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err, transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def load_settings(config: Path | None, **flags: object) -> Settings:
    return Settings.load(config, **flags)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens, to stderr.")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@app.command()
def index(
    corpus_dir: Annotated[Optional[Path], typer.Argument(help="Folder of .txt/.md files [default: corpus]", show_default=False)] = None,
    model: Model = None,
    index_dir: IndexDir = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Start from scratch, e.g. after changing the model.")] = False,
    config: Config = None,
) -> None:
    """Build or update the index; only new or changed files are embedded."""
    with user_errors():
        settings = load_settings(config, corpus_dir=corpus_dir, model=model, index_dir=index_dir)
        with progress_bar(True) as progress:
            report = Bot.index(settings, rebuild=rebuild, progress=progress)
        err.print(report.summary())


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in any language.")],
    k: Annotated[Optional[int], typer.Option("-k", help="Passages to retrieve [default: 5]", show_default=False)] = None,
    as_json: AsJson = False,
    corpus_dir: Corpus = None,
    index_dir: IndexDir = None,
    model: Model = None,
    retriever: Retriever = None,
    config: Config = None,
) -> None:
    """Answer a question from the documents, with citations."""
    with user_errors():
        settings = load_settings(config, corpus_dir=corpus_dir, index_dir=index_dir, model=model, retriever=retriever, top_k=k)
        with progress_bar(True) as progress:
            bot = Bot.load(settings, progress=progress)
        answer = bot.ask(question)
        if as_json:
            print(answer.model_dump_json(indent=2))
        else:
            print_answer(answer)
    global _answered
    _answered = True


def print_answer(answer: Answer) -> None:
    out.print(escape(answer.answer))
    if answer.citations:
        out.print()
        for number, citation in enumerate(answer.citations, start=1):
            out.print(f"[bold][{number}][/bold] [cyan]{escape(citation.label)}[/cyan]  «{escape(citation.quote)}»")
    elif answer.passages:
        out.print()
        for passage in answer.passages[:3]:
            snippet = " ".join(passage.text.split())[:160]
            out.print(f"[dim]{passage.rank}.[/dim] [cyan]{passage.source}:{passage.line_start}-{passage.line_end}[/cyan]  {escape(snippet)}")


@app.command(name="eval")
def evaluate(
    golden: Annotated[Path, typer.Argument(help="Golden file: one JSON case per line.")],
    as_json: AsJson = False,
    corpus_dir: Corpus = None,
    index_dir: IndexDir = None,
    model: Model = None,
    retriever: Retriever = None,
    config: Config = None,
) -> None:
    """Run every question of a golden file and report hit@1, hit@5, MRR@10 and answer checks."""
    with user_errors():
        cases = load_golden(golden)
        settings = load_settings(config, corpus_dir=corpus_dir, index_dir=index_dir, model=model, retriever=retriever)
        with progress_bar(True) as progress:
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


# Set once ``qa ask`` has printed its answer: nothing is left to do but exit.
_answered = False


def run() -> None:
    """Console entry point.

    After an answer, the process ends without the interpreter's teardown:
    freeing onnxruntime, faiss and every module costs about 0.2 s of a 0.7 s
    ``qa ask``. ``ask`` writes no files and holds no lock, and the output is
    flushed first, so nothing is lost. Other commands exit normally.
    """
    try:
        app()
    except SystemExit as done:
        if not _answered:
            raise
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(done.code if isinstance(done.code, int) else 0)


if __name__ == "__main__":
    run()
