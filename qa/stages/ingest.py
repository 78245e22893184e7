"""Read a folder of documents into ``Document`` models.

A document's id is its path relative to the corpus root, so citations stay
valid when the whole folder moves. Text is decoded strictly: a citation that
quotes mis-decoded bytes would be worse than no citation at all.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

from qa.errors import CorpusError
from qa.models import Document

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md")

# Byte-order marks say the encoding outright; anything else must be UTF-8. UTF-8's mark is
# kept as character 0 (U+FEFF), as ``open(path, encoding="utf-8")`` reads it: dropping it
# would shift every offset of the file by one from the text a reader slices.
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def find_files(corpus_dir: Path) -> list[Path]:
    """Every ``.txt``/``.md`` file under the folder, sorted, hidden ones skipped."""
    if not corpus_dir.exists():
        raise CorpusError(f"corpus folder {corpus_dir} does not exist")
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus path {corpus_dir} is not a folder")
    files = [
        path
        for path in corpus_dir.rglob("*")
        if path.suffix.lower() in SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(corpus_dir).parts)
    ]
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


def read_documents(corpus_dir: Path) -> Iterator[Document]:
    """Yield each readable document; binary files are skipped with a warning."""
    for path in find_files(corpus_dir):
        name = source_id(corpus_dir, path)
        raw = path.read_bytes()
        text = decode(raw, name)
        if text is None:
            log.warning("skipping %s: it looks binary", name)
            continue
        yield Document(source=name, text=text, sha256=hashlib.sha256(raw).hexdigest())
