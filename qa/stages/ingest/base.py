"""What every format's reader returns, and how it says a file cannot be read."""

from __future__ import annotations

from dataclasses import dataclass, field

# Recorded in each index: when what a reader extracts changes, this changes and the index is rebuilt.
EXTRACTOR = "formats-v2"  # v2: a UTF-8 byte-order mark is kept as character 0


@dataclass(frozen=True)
class Extraction:
    """A file's text and where its pages (slides, sheets, chapters) begin in it; ``pages`` empty for none.

    ``warnings`` are things the user should know that do not stop the file
    being read (a scanned page no OCR could read).
    """

    text: str
    pages: tuple[int, ...] = ()
    warnings: tuple[str, ...] = field(default=())


class Unreadable(Exception):
    """A file that is skipped: ``reason`` is a short word for the summary, ``detail`` the why for its warning."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def join_pages(pages: list[str]) -> Extraction:
    """Pages one after the other, a blank line between them, each starting on a line of its own."""
    text, starts = "", []
    for page in pages:
        page = page.strip("\n")
        if text:
            text += "\n\n"
        starts.append(len(text))
        text += page
    return Extraction(text + "\n" if text else "", tuple(starts))
