"""Plain text, Markdown and CSV/TSV: decoding, and table rows that keep their header.

UTF-8 (or a byte-order mark) is read as it is, so a plain-text file's
citations count in the file's own characters. Anything else is decoded in the
encoding ``charset-normalizer`` finds (Latin-1, Windows-1252, Shift-JIS, GB18030,
EUC-KR ...): a maintained detector, MIT-licensed and already installed with
``requests``/``httpx``, that weighs how plausible each decoding's text is
rather than guessing from byte patterns alone.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence

from qa.stages.ingest.base import Extraction, Unreadable

# Byte-order marks say the encoding outright. UTF-8's mark is kept as character 0 (U+FEFF), as
# ``open(path, encoding="utf-8")`` reads it: dropping it shifted every offset of the file by one
# from the text a reader slices (36 of 230 chunks of XQuAD's German articles).
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def decode(raw: bytes) -> str:
    """The bytes as text: a byte-order mark's encoding, else UTF-8, else the encoding detected.

    Raises ``Unreadable`` for a binary file or one no encoding reads.
    """
    plain = utf8_text(raw)
    if plain is not None:
        return plain
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError:
                raise Unreadable("undecodable", f"starts with a {encoding} byte-order mark but does not decode") from None
    if b"\x00" in raw[:8192]:
        raise Unreadable("binary", "it looks binary (NUL bytes)")
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    if best is None:
        raise Unreadable("undecodable", "no text encoding reads it")
    return str(best)


def utf8_text(raw: bytes) -> str | None:
    """The bytes as UTF-8 text (a UTF-8 byte-order mark kept as character 0); None for another byte-order mark,
    NUL bytes or invalid UTF-8, which ``decode`` reads otherwise or refuses."""
    if b"\x00" in raw[:8192] or any(raw.startswith(bom) for bom, encoding in _BOMS if encoding != "utf-8"):
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def row_text(number: int, header: Sequence[str], cells: Sequence[str]) -> str:
    """``Row 3: town: Orvik, population: 48210``: a row that still says what each value is.

    Cells under no header keep their value alone; empty cells are left out.
    The row number (the header is row 1) finds the row again in the table,
    and starting with it makes each row a sentence of its own.
    """
    parts = []
    for position, cell in enumerate(cells):
        cell = " ".join(str(cell).split())
        if not cell:
            continue
        name = " ".join(header[position].split()) if position < len(header) else ""
        parts.append(f"{name}: {cell}" if name else cell)
    return f"Row {number}: " + ", ".join(parts) if parts else ""


def table_text(rows: Sequence[Sequence[str]]) -> list[str]:
    """A table as lines: its header row as it is, then each row with the header's names.

    The first row that has a value is the header; rows are numbered as the table numbers them.
    """
    numbered = [(number, list(row)) for number, row in enumerate(rows, start=1) if any(str(cell).strip() for cell in row)]
    if not numbered:
        return []
    header = [" ".join(str(cell).split()) for cell in numbered[0][1]]
    lines = [" | ".join(cell for cell in header if cell)]
    lines.extend(row_text(number, header, row) for number, row in numbered[1:])
    return [line for line in lines if line]


_MD_ROW = re.compile(r"^\s*\|(.*)\|\s*$")
_MD_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


def _md_cells(line: str) -> list[str]:
    match = _MD_ROW.match(line)
    body = match.group(1) if match else line
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", body)]


def markdown(text: str) -> str:
    """Markdown with each table row given its header's names; every other line as it is.

    Lines keep their numbers (a row stays one line, the ``|---|`` rule stays),
    so a citation's line is the file's line; only a table row's characters
    change. A file without tables is returned unchanged.
    """
    lines = text.split("\n")
    header: list[str] | None = None
    number = 0
    for index, line in enumerate(lines):
        if _MD_ROW.match(line) and index + 1 < len(lines) and _MD_RULE.match(lines[index + 1]) and header is None:
            header = _md_cells(line)
            number = 1
        elif header is not None and _MD_RULE.match(line) and number == 1:
            continue
        elif header is not None and _MD_ROW.match(line):
            number += 1
            ending = "\r" if line.endswith("\r") else ""
            lines[index] = row_text(number, header, _md_cells(line.rstrip("\r"))) + ending
        else:
            header = None
    return "\n".join(lines)


def plain(raw: bytes, suffix: str) -> Extraction:
    text = decode(raw)
    return Extraction(markdown(text) if suffix in (".md", ".markdown") else text)


def delimited(raw: bytes, suffix: str) -> Extraction:
    """CSV or TSV: the first row is the header; the delimiter is sniffed for CSV (``,`` ``;`` tab)."""
    text = decode(raw)
    delimiter = "\t"
    if suffix == ".csv":
        try:
            delimiter = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    try:
        rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
    except csv.Error as error:
        raise Unreadable("corrupt", f"not valid {suffix[1:].upper()} ({error})") from None
    return Extraction("\n".join(table_text(rows)) + "\n")
