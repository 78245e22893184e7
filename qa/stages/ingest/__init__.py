"""Read a folder of documents, in any of the formats below, into ``Document`` models.

A document's id is its path relative to the corpus root, so citations stay
valid when the whole folder moves. Each format is turned into text that keeps
its structure (headings, table rows with their header, pages apart), and that
text is what lines and offsets count in; plain UTF-8 text is kept exactly as
the file has it. One file never sinks a build: a file that cannot be read is
skipped with a warning that names it and says why, and counted by reason and
extension in the summary.

One module per family: ``text`` (plain, Markdown, CSV/TSV, decoding),
``pdf`` (text layer and OCR), ``office`` (DOCX, PPTX, XLSX), ``markup``
(HTML, EPUB, email), ``files`` (which files), ``store`` (extractions kept in
the index).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import CorpusError
from qa.models import Document
from qa.stages.ingest import markup, office, pdf, text
from qa.stages.ingest.base import EXTRACTOR, Extraction, Unreadable
from qa.stages.ingest.files import find_files
from qa.stages.ingest.seen import SeenFiles, stat_of
from qa.stages.ingest.store import ExtractStore
from qa.text import one_line, unpaired_surrogate

log = logging.getLogger(__name__)

Reader = Callable[[bytes, str], Extraction]

READERS: dict[str, Reader] = {
    ".txt": text.plain,
    ".text": text.plain,
    ".md": text.plain,
    ".markdown": text.plain,
    ".csv": text.delimited,
    ".tsv": text.delimited,
    ".pdf": pdf.extract,
    ".html": markup.html,
    ".htm": markup.html,
    ".xhtml": markup.html,
    ".epub": markup.epub,
    ".eml": markup.email,
    ".docx": office.docx,
    ".pptx": office.pptx,
    ".xlsx": office.xlsx,
    ".xlsm": office.xlsx,
}
SUFFIXES = tuple(READERS)
# Formats whose extraction is the bytes decoded: a UTF-8 file of these is decoded again rather
# than its stored extraction read back, which cost more (1.4 s of a 10,000-file build's 2.2 s
# of reading, benchmarks/scale.py). The store still keeps it, for ``qa show``.
DECODED_ONLY = (".txt", ".text")

# (source, done, total), as ``qa.bot.Progress``.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Skipped:
    """A file that was not read, and why.

    ``reason`` is the one word the summary counts by: ``unsupported`` (a format
    qa does not read), ``empty``, ``corrupt``, ``encrypted``, ``binary``,
    ``undecodable``, ``unreadable`` (the file system refused), ``scanned`` (no
    text layer, no OCR), ``textless``, ``misnamed`` (a name that is not valid
    UTF-8) or ``oversized`` (past ``max_file_bytes`` or ``max_line_chars``); ``detail`` is the warning's why.
    """

    source: str
    reason: str
    detail: str

    @property
    def extension(self) -> str:
        suffix = Path(self.source).suffix.lower()
        return suffix or "(no extension)"

    def __str__(self) -> str:
        return one_line(f"{self.source}: {self.detail}")  # a file name's escape sequences and line breaks shown, not obeyed


@dataclass(frozen=True)
class Unchanged:
    """A file that looks as it did when the index hashed it (``seen``): its bytes were not read again."""

    source: str
    sha256: str


@dataclass
class Corpus:
    """What reading a corpus folder found: the documents read, the files known unchanged, and the files skipped with why."""

    documents: list[Document]
    skipped: list[Skipped] = field(default_factory=list)
    extracted: int = 0  # documents read from their files rather than from the store
    unchanged: list[Unchanged] = field(default_factory=list)

    @property
    def hashes(self) -> dict[str, str]:
        """Every readable file's source and the SHA-256 of its bytes, read or known."""
        return {**{d.source: d.sha256 for d in self.unchanged}, **{d.source: d.sha256 for d in self.documents}}

    def skipped_summary(self) -> str:
        return skipped_summary(self.skipped)


def skipped_summary(skipped: Sequence[Skipped]) -> str:
    """``skipped 3: 2 .exe, 1 encrypted .pdf``; empty when nothing was skipped."""
    if not skipped:
        return ""
    counts = Counter((s.reason, s.extension) for s in skipped)
    kinds = {(reason, extension): extension if reason == "unsupported" else f"{reason} {extension}" for reason, extension in counts}
    ordered = sorted(counts, key=lambda key: (-counts[key], kinds[key]))
    return f"skipped {len(skipped)}: " + ", ".join(f"{counts[key]} {kinds[key]}" for key in ordered)


def extract(raw: bytes, suffix: str) -> Extraction:
    """The text of a file's bytes in the format its suffix names; ``Unreadable`` says why not."""
    suffix = suffix.lower()
    reader = READERS.get(suffix)
    if reader is None:
        raise Unreadable("unsupported", f"qa does not read {suffix or 'files without an extension'} files")
    if not raw:
        raise Unreadable("empty", "the file is empty")
    try:
        return reader(raw, suffix)
    except Unreadable:
        raise
    except (RecursionError, MemoryError):
        raise
    except Exception as error:  # a reader library choking on a malformed file: skip it, never the build
        raise Unreadable("corrupt", f"could not be read ({type(error).__name__}: {str(error)[:200]})") from None


def read_corpus(
    corpus_dir: Path,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    store: ExtractStore | None = None,
    progress: Progress | None = None,
    max_bytes: int | None = None,
    max_line_chars: int | None = None,
    seen: SeenFiles | None = None,
    indexed: Mapping[str, str] | None = None,
) -> Corpus:
    """Every chosen file of the folder as a Document, or as a Skipped with its reason.

    With a ``store``, a file whose bytes were extracted before (same hash, same
    ``EXTRACTOR``) is taken from it, and fresh extractions are kept in it.
    With ``seen`` and the hashes the index holds (``indexed``), a file that
    looks as it did when it was indexed is not read: it is ``Unchanged``.
    Files over ``max_bytes``, or whose text has a line over ``max_line_chars``
    (minified or generated text, which would make one unreadable chunk), are
    skipped as ``oversized``.
    """
    chosen = find_files(corpus_dir, include, exclude)
    corpus = Corpus([])
    for number, (source, path) in enumerate(chosen, start=1):
        try:
            stat, looked_at = (stat_of(path), time.time_ns()) if seen is not None and path.suffix.lower() in READERS else (None, 0)
        except OSError:
            stat = None
        known = seen.hash_of(source, stat) if seen is not None and stat is not None else None
        if known is not None and indexed is not None and indexed.get(source) == known and (max_bytes is None or stat[0] <= max_bytes):
            corpus.unchanged.append(Unchanged(source, known))
            if progress is not None:
                progress("reading", number, len(chosen))
            continue
        try:
            document, fresh = _read_one(source, path, store, max_bytes, max_line_chars)
        except Unreadable as error:
            skipped = Skipped(source, error.reason, error.detail)
            corpus.skipped.append(skipped)
            if error.reason == "unsupported":
                log.info("skipping %s", skipped)
            else:
                log.warning("skipping %s", skipped)
        else:
            corpus.documents.append(document)
            corpus.extracted += fresh
            if seen is not None and stat is not None:
                seen.record(source, stat, document.sha256, looked_at)
        if progress is not None:
            progress("reading", number, len(chosen))
    if seen is not None:
        seen.keep_only(set(corpus.hashes))
    return corpus


def _read_one(
    source: str, path: Path, store: ExtractStore | None, max_bytes: int | None = None, max_line_chars: int | None = None
) -> tuple[Document, bool]:
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise Unreadable("unsupported", f"qa does not read {suffix or 'files without an extension'} files")
    if unpaired_surrogate(source) is not None:  # a citation could not name it, nor JSON carry it
        raise Unreadable("misnamed", "its name is not valid UTF-8; rename it")
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise Unreadable("oversized", f"{size} bytes, over the limit of {max_bytes} (setting max_file_bytes)")
        raw = path.read_bytes()
    except OSError as error:
        raise Unreadable("unreadable", error.strerror or str(error)) from None
    sha256 = hashlib.sha256(raw).hexdigest()
    extraction = None
    if suffix in DECODED_ONLY and store is not None and store.has(sha256):
        decoded = text.utf8_text(raw)
        extraction = Extraction(decoded) if decoded is not None else None
    if extraction is None and store is not None:
        extraction = store.load(sha256)
    fresh = extraction is None
    if extraction is None:
        extraction = extract(raw, suffix)
        for warning in extraction.warnings:
            log.warning("%s: %s", source, warning)
        if store is not None:
            store.save(sha256, extraction)
    if max_line_chars is not None and len(extraction.text) > max_line_chars:
        longest = max(map(len, extraction.text.splitlines()), default=0)
        if longest > max_line_chars:
            raise Unreadable("oversized", f"a line of {longest} characters, over the limit of {max_line_chars} (setting max_line_chars)")
    return Document(source=source, text=extraction.text, sha256=sha256, pages=extraction.pages), fresh


def read_documents(corpus_dir: Path) -> Iterator[Document]:
    """Each readable document of the folder, skipping the rest with a warning; an error if none is readable."""
    corpus = read_corpus(corpus_dir)
    if not corpus.documents:
        raise CorpusError(no_documents(corpus_dir, corpus))
    yield from corpus.documents


def no_documents(corpus_dir: Path, corpus: Corpus) -> str:
    summary = corpus.skipped_summary()
    return f"corpus folder {corpus_dir} has no readable documents" + (f" ({summary})" if summary else "")


__all__ = [
    "EXTRACTOR",
    "SUFFIXES",
    "Corpus",
    "ExtractStore",
    "Extraction",
    "SeenFiles",
    "Skipped",
    "Unchanged",
    "Unreadable",
    "extract",
    "find_files",
    "no_documents",
    "read_corpus",
    "read_documents",
    "skipped_summary",
]
