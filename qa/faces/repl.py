"""``qa chat``: a conversation in the terminal, and the answer printing it shares with ``qa ask``.

Lines go through ``input()`` so that readline gives editing and a history
that survives the session; slash commands act on the conversation, anything
else is a question. A ``QAError`` ends a turn, never the session.
"""

from __future__ import annotations

import functools
import readline
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape as _markup_escape

from qa.chat import Conversation
from qa.errors import QAError
from qa.crosslingual.reading import READING_LABEL
from qa.models import Answer, Citation, Passage, page_word
from qa.questionlog import QuestionLog
from qa.text import neutralise, one_line


def escape(text: str) -> str:
    """Text from documents, file names or a model, safe to print: no rich markup, no terminal escape sequences."""
    return _markup_escape(neutralise(text))

Ask = Callable[..., Answer]  # (question, on_text=...) -> Answer, as Bot.ask and Conversation.ask

HISTORY_LINES = 1000
HELP = """Ask a question in any language; follow-ups ("Where was it signed?") are read against the conversation.
  /sources  the last answer's passages in full
  /reset    forget the conversation
  /help     this text
  /quit     leave (or Ctrl-D)"""


def print_answer(out: Console, answer: Answer, streamed: bool = False) -> None:
    """The reply (unless it already streamed), then each citation with its quoted sentence and any reading beside it.

    An abstention says why and shows the closest passages instead.
    """
    if not streamed:
        out.print(escape(answer.answer))
    if answer.abstained and answer.reason:
        out.print(f"[dim]({escape(answer.reason)}; confidence {answer.confidence or 0:.2f})[/dim]")
    if answer.citations:
        out.print()
        for number, citation in enumerate(answer.citations, start=1):
            out.print(f"[bold][{number}][/bold] [cyan]{escape(one_line(citation.label))}[/cyan]  «{marked(citation)}»")
            if citation.reading:
                out.print(f"    [dim italic]{READING_LABEL}:[/dim italic] [italic]{escape(citation.reading)}[/italic]")
    elif answer.passages:
        out.print()
        for passage in answer.passages[:3]:
            snippet = " ".join(passage.text.split())[:160]
            out.print(f"[dim]{passage.rank}.[/dim] [cyan]{escape(span_label(passage))}[/cyan]  {escape(snippet)}")


def span_label(passage: Passage) -> str:
    """``file:12-14``, and the page (slide, sheet) of a converted file: ``handbook.pdf:57-60 (page 3)``."""
    where = f" ({page_word(passage.source)} {passage.page})" if passage.page is not None else ""
    return one_line(f"{passage.source}:{passage.line_start}-{passage.line_end}{where}")


def marked(citation: Citation) -> str:
    """The quote as rich markup: key phrases bold and underlined, the short answer in reverse video."""
    styles = {}
    for start, end in citation.marks:
        styles.update(dict.fromkeys(range(start, end), "bold underline"))
    if citation.short:
        styles.update(dict.fromkeys(range(*citation.short), "bold reverse"))
    pieces, position = [], 0
    while position < len(citation.quote):
        style = styles.get(position)
        end = position + 1
        while end < len(citation.quote) and styles.get(end) == style:
            end += 1
        text = escape(citation.quote[position:end])
        pieces.append(f"[{style}]{text}[/{style}]" if style else text)
        position = end
    return "".join(pieces)


def print_sources(out: Console, answer: Answer | None) -> None:
    if answer is None:
        out.print("[dim]No answer yet.[/dim]")
        return
    for passage in answer.passages:
        label = span_label(passage)
        out.print(f"[bold]{passage.rank}.[/bold] [cyan]{escape(label)}[/cyan] [dim]score {passage.score:.3f}[/dim]")
        out.print(escape(passage.text), end="\n\n")


def ask_and_print(out: Console, err: Console, ask: Ask, question: str) -> Answer:
    """Ask, streaming an LLM reply as it comes; a fallback after a partial stream is shown in full."""
    streamed = False

    def on_text(text: str) -> None:
        nonlocal streamed
        streamed = True
        out.print(escape(text), end="")

    answer = ask(question, on_text=on_text)
    if streamed:
        out.print()
    for warning in answer.warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    print_answer(out, answer, streamed=streamed and answer.mode == "llm")
    return answer


class Repl:
    """The read-ask-print loop over one conversation."""

    def __init__(self, conversation: Conversation, out: Console, err: Console, history_file: Path, questions: QuestionLog | None = None):
        self.conversation = conversation
        self.questions = questions
        self.out = out
        self.err = err
        self.history_file = history_file.expanduser()

    def run(self) -> None:
        self._load_history()
        self.out.print("[bold]qa chat[/bold] [dim]· /help for commands · Ctrl-D to leave[/dim]")
        try:
            while True:
                try:
                    line = input(self._prompt()).strip()
                except KeyboardInterrupt:
                    self.out.print()
                    continue
                except EOFError:
                    self.out.print()
                    return
                if not line:
                    continue
                if line.startswith("/"):
                    if not self._command(line):
                        return
                    continue
                try:
                    ask_and_print(self.out, self.err, self._asker(), line)
                except QAError as error:
                    self.err.print(f"[red]error:[/red] {escape(str(error))}")
                except KeyboardInterrupt:
                    self.err.print("interrupted")
                self.out.print()
        finally:
            self._save_history()

    def _asker(self) -> Ask:
        """The conversation's ``ask``, logged with the questions before it when there is a question log."""
        if self.questions is None:
            return self.conversation.ask
        history = [turn.question for turn in self.conversation.turns]
        return functools.partial(self.questions.asked, "chat", self.conversation.ask, history=history)

    def _command(self, line: str) -> bool:
        """Carry out a slash command; ``False`` means leave."""
        command = line.split()[0].lower()
        if command in ("/quit", "/exit", "/q"):
            return False
        if command == "/reset":
            self.conversation.reset()
            self.out.print("[dim]Conversation reset.[/dim]")
        elif command == "/sources":
            print_sources(self.out, self.conversation.turns[-1] if self.conversation.turns else None)
        elif command == "/help":
            self.out.print(escape(HELP))
        else:
            self.err.print(f"[red]error:[/red] unknown command {escape(command)}; /help lists them")
        return True

    def _prompt(self) -> str:
        if not self.out.is_terminal or self.out.no_color:
            return "? "
        # \001 and \002 tell readline the colour codes take no room on the line.
        return "\001\033[1;32m\002?\001\033[0m\002 "

    def _load_history(self) -> None:
        readline.set_history_length(HISTORY_LINES)
        try:
            readline.read_history_file(self.history_file)
        except OSError:
            pass

    def _save_history(self) -> None:
        try:
            self.history_file.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(self.history_file)
        except OSError as error:
            self.err.print(f"[yellow]warning:[/yellow] could not save the input history to {self.history_file}: {escape(str(error))}")
