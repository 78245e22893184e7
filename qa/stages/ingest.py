"""Read a folder of documents into ``Document`` models.

A document's id is its path relative to the corpus root, so citations stay
valid when the whole folder moves. Text is decoded strictly: a citation that
quotes mis-decoded bytes would be worse than no citation at all.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from qa.errors import CorpusError
from qa.models import Document
from qa.text import one_line, unpaired_surrogate

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md")

# Byte-order marks say the encoding outright; anything else must be UTF-8.
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def _walk(corpus_dir: Path) -> Iterator[Path]:
    """Every visible file under the folder, without recursion: a tree 1,000 folders deep is walked like a flat one.

    A folder that cannot be listed is skipped with a warning, as one bad file is.
    """
    folders = [corpus_dir]
    while folders:
        folder = folders.pop()
        try:
            with os.scandir(folder) as entries:
                listed = list(entries)
        except OSError as error:
            log.warning("skipping folder %s: %s", one_line(str(folder)), error.strerror or error)
            continue
        for entry in listed:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir():
                    folders.append(Path(entry.path))
                elif entry.is_file():
                    yield Path(entry.path)
            except OSError as error:
                log.warning("skipping %s: %s", one_line(entry.path), error.strerror or error)


def find_files(corpus_dir: Path) -> list[Path]:
    """Every ``.txt``/``.md`` file under the folder, sorted, hidden ones skipped."""
    if not corpus_dir.exists():
        raise CorpusError(f"corpus folder {corpus_dir} does not exist")
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus path {corpus_dir} is not a folder")
    files = [path for path in _walk(corpus_dir) if path.suffix.lower() in SUFFIXES]
    if not files:
        raise CorpusError(f"corpus folder {corpus_dir} has no .txt or .md files")
    return sorted(files, key=lambda p: p.relative_to(corpus_dir).as_posix())


def source_id(corpus_dir: Path, path: Path) -> str:
    return path.relative_to(corpus_dir).as_posix()


def decode(raw: bytes, name: str) -> str | None:
    """The file's text, or ``None`` for a binary file; refuses undecodable text."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError as err:
                raise CorpusError(f"{name}: starts with a {encoding} byte-order mark but does not decode ({err.reason})") from None
    if b"\x00" in raw[:8192]:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"{name}: not UTF-8 (bad byte at offset {err.start}); convert it, e.g. iconv -f LATIN1 -t UTF-8"
        ) from None


def read_documents(corpus_dir: Path, max_bytes: int | None = None, max_line_chars: int | None = None) -> Iterator[Document]:
    """Yield each readable document; a file that cannot or should not be read is skipped with a warning naming it.

    Skipped: binary files, unreadable ones (permissions), names that are not
    valid UTF-8 (a citation could not name them), and files past the limits
    (``max_bytes``, or a line over ``max_line_chars``: minified or generated
    text that would make one unreadable chunk).
    """
    for path in find_files(corpus_dir):
        name = source_id(corpus_dir, path)
        if unpaired_surrogate(name) is not None:
            log.warning("skipping %s: its name is not valid UTF-8; rename it", one_line(name))
            continue
        try:
            size = path.stat().st_size
            if max_bytes is not None and size > max_bytes:
                log.warning("skipping %s: %d bytes, over the limit of %d (setting max_file_bytes)", one_line(name), size, max_bytes)
                continue
            raw = path.read_bytes()
        except OSError as error:
            log.warning("skipping %s: %s", one_line(name), error.strerror or error)
            continue
        text = decode(raw, one_line(name))
        if text is None:
            log.warning("skipping %s: it looks binary", one_line(name))
            continue
        if max_line_chars is not None and len(text) > max_line_chars:
            longest = max(map(len, text.splitlines()), default=0)
            if longest > max_line_chars:
                log.warning(
                    "skipping %s: a line of %d characters, over the limit of %d (setting max_line_chars)",
                    one_line(name), longest, max_line_chars,
                )
                continue
        yield Document(source=name, text=text, sha256=hashlib.sha256(raw).hexdigest())
