"""An index build's dictionary work, done in a worker process while the embedding model loads.

Glossing (Kiwi's model, jieba's and CC-CEDICT's dictionaries) takes seconds,
and so does loading the embedding model: in two processes they overlap, and
on two cores the dictionaries cost a build next to nothing. Only the files a
build adds or changes are sent, and the glossary loads only when one of them
needs glosses; their query lexicons are looked up in a file on disk
(``qa.crosslingual.lexicon.LexiconSource``), which costs nothing to open. A
build starts the worker (``start``) before it reads the corpus.

The worker is a fresh interpreter (``python -P -X utf8 -c``) that imports qa
from where this process did, so it neither inherits the caller's
threads, as a fork would, nor imports the current folder's or the caller's
main script, as a plain ``-c`` or multiprocessing's spawn would. It stays for
the process's later builds with its dictionaries loaded, and leaves after
``IDLE_SECONDS`` without work, so a server that built its index at start-up
does not keep it.

Requests and replies travel as files in a private folder; the pipes carry
their ids alone, one per line, so no pipe ever fills: a build that fails
before it reads its reply leaves nothing blocked, and replies to other
threads' builds wait for them.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import qa
from qa.errors import QAError
from qa.crosslingual.gloss import Glossary, GlossedWord, freedict_path, loaded_glossary, needs_glosses
from qa.crosslingual.lexicon import LexiconSource, Ranked, cedict_path, ranked_files

IDLE_SECONDS = 120.0


class DictionaryError(QAError):
    """The dictionary worker failed; its message says why."""


@dataclass(frozen=True)
class Prepared:
    """What the dictionaries make of some files: glosses of those asked for, and each one's query lexicon."""

    glosses: dict[str, list[GlossedWord]]  # source -> its glossed words
    lexicons: dict[str, Ranked]  # source -> its ranked lexicon (qa.crosslingual.lexicon.ranked_files)


def prepare_in_background(texts: Mapping[str, str], to_gloss: list[str]) -> Callable[[], Prepared]:
    """Start glossing the sources ``to_gloss`` and making the lexicon of each of ``texts``; call the result to wait."""
    request = uuid.uuid4().hex
    wanted = [source for source in to_gloss if needs_glosses(texts[source])]
    _write_atomically(_folder() / f"{request}.request", json.dumps({"gloss": wanted, "texts": dict(texts)}, ensure_ascii=False))
    _send(request)

    return lambda: _prepared(_await(request))


def prepare_here(texts: Mapping[str, str], to_gloss: Iterable[str], glossary: Callable[[], Glossary]) -> Prepared:
    """The same work done in this process, as a Ray worker does it with its share of a build's files.

    ``glossary`` is called only when a file needs glosses, so a worker handed
    only English files never loads the dictionaries.
    """
    wanted = [source for source in to_gloss if needs_glosses(texts[source])]
    return Prepared({source: glossary().gloss(texts[source]) for source in wanted}, _lexicons(dict(texts)))


def _prepared(reply: str) -> Prepared:
    done = json.loads(reply)
    if "error" in done:
        raise DictionaryError(f"the dictionary worker failed: {done['error']}")
    glosses = {source: [GlossedWord(*word) for word in words] for source, words in done["glosses"].items()}
    return Prepared(glosses, done["lexicons"])


_LOCK = threading.Lock()
_WORKER: subprocess.Popen | None = None
_WORKER_DICTIONARIES: tuple[Path | None, Path | None] | None = None
_FOLDER: Path | None = None
_ANSWERED: set[str] = set()


def _folder() -> Path:
    with _LOCK:
        return _folder_locked()


def _folder_locked() -> Path:
    """This process's private folder for requests and replies, removed at exit."""
    global _FOLDER
    if _FOLDER is None:
        _FOLDER = Path(tempfile.mkdtemp(prefix="qa-dictionaries-"))
        atexit.register(remove_folder)
    return _FOLDER


def remove_folder() -> None:
    """Remove this process's request folder; called at exit, and by the CLI, which exits without atexit."""
    if _FOLDER is not None:
        shutil.rmtree(_FOLDER, ignore_errors=True)


def start() -> None:
    """Start the worker now, if none runs, so that its interpreter starts while the build reads the corpus."""
    global _WORKER, _WORKER_DICTIONARIES
    with _LOCK:
        if _WORKER is None or _WORKER.poll() is not None:
            _WORKER, _WORKER_DICTIONARIES = _start(), (cedict_path(), freedict_path())


def _send(request: str) -> None:
    with _LOCK:
        _send_locked(request)


def _send_locked(request: str) -> None:
    """Hand the request's id to the worker, starting one if none runs, it left, or the dictionaries changed."""
    global _WORKER, _WORKER_DICTIONARIES
    dictionaries = (cedict_path(), freedict_path())
    if _WORKER is not None and dictionaries != _WORKER_DICTIONARIES:
        _WORKER.stdin.close()  # it finishes what it has and leaves
        _WORKER = None
    for attempt in (1, 2):
        if _WORKER is None or _WORKER.poll() is not None:
            _WORKER, _WORKER_DICTIONARIES = _start(), dictionaries
        try:
            _WORKER.stdin.write(request + "\n")
            _WORKER.stdin.flush()
            return
        except BrokenPipeError:  # it left idle as the request came: a new one takes it
            _WORKER = None
    raise DictionaryError("the dictionary worker cannot be started")


def _start() -> subprocess.Popen:
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_package_root(), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen(
        [sys.executable, "-P", "-X", "utf8", "-c", f"from qa.crosslingual.dictionary_worker import serve; serve({str(_folder_locked())!r}, {IDLE_SECONDS!r})"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=environment,
    )


def _package_root() -> str:
    """The folder this process imported qa from, so that the worker runs the same code."""
    return str(Path(qa.__file__).resolve().parent.parent)


def _await(request: str) -> str:
    """The reply to ``request``, once the worker has written it."""
    global _WORKER
    with _LOCK:
        while request not in _ANSWERED:
            line = _WORKER.stdout.readline() if _WORKER is not None else ""
            if line:
                _ANSWERED.add(line.strip())
            elif (_folder_locked() / f"{request}.request").exists():  # it left idle before taking this request
                _WORKER = None
                _send_locked(request)
            else:
                raise DictionaryError(f"the dictionary worker stopped (exit status {_WORKER.wait() if _WORKER else 'unknown'})")
        _ANSWERED.discard(request)
        reply = _folder_locked() / f"{request}.reply"
        text = reply.read_text(encoding="utf-8")
        reply.unlink()
        return text


def serve(folder: str, idle_seconds: float) -> None:
    """The worker: one request id per line in, its reply file written and its id echoed; gone when idle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; its exit closes our stdin
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a library's print must not reach the reply pipe
    while select.select([sys.stdin], [], [], idle_seconds)[0]:
        line = sys.stdin.readline()
        if not line:
            return
        request = line.strip()
        path = Path(folder) / f"{request}.request"
        try:
            work = json.loads(path.read_text(encoding="utf-8"))
            path.unlink()
            done = prepare_here(work["texts"], work["gloss"], loaded_glossary)
            reply = {"glosses": done.glosses, "lexicons": done.lexicons}
        except Exception as error:  # the parent turns it into one line for the user
            reply = {"error": f"{type(error).__name__}: {error}"}
        _write_atomically(Path(folder) / f"{request}.reply", json.dumps(reply, ensure_ascii=False))
        replies.write(request + "\n")
        replies.flush()


# Files whose lexicons are looked up together: one query each, with a bounded share of the corpus in memory.
LEXICON_BATCH = 256


def _lexicons(texts: dict[str, str]) -> dict[str, Ranked]:
    if not texts:
        return {}
    source, sources, lexicons = LexiconSource.load(), list(texts), {}
    for start in range(0, len(sources), LEXICON_BATCH):
        lexicons.update(ranked_files({name: [texts[name]] for name in sources[start : start + LEXICON_BATCH]}, source))
    return lexicons


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
