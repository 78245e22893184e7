"""Extraction speed per format: MB and pages (slides, sheets, chapters) per second. Not part of the test suite.

    .venv/bin/python benchmarks/formats.py            # about a minute on 2 cores (OCR included where Tesseract is)

Each document is generated here with the same writers the tests use, filled
with sentences of the seed corpus (English, German, Chinese, Korean), and read
with ``qa.stages.ingest.extract`` as ``qa index`` reads it. Every figure is the
median of three runs; prints a markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import make_documents as make  # noqa: E402
from qa.stages.ingest import extract, pdf  # noqa: E402


def sentences(width: int = 90) -> itertools.cycle:
    """The seed corpus's lines, cut to ``width`` characters: real text in four languages."""
    lines = []
    for path in sorted((ROOT / "corpus").glob("*.txt")):
        lines.extend(line.strip()[:width] for line in path.read_text(encoding="utf-8").splitlines() if len(line.strip()) > 20)
    return itertools.cycle(lines)


def build(folder: Path, ocr: bool) -> list[tuple[str, Path, int]]:
    """(format, file, pages) for one document of each format, sized to take a measurable time."""
    text = sentences()
    take = lambda n: [next(text) for _ in range(n)]  # noqa: E731
    made = [
        ("PDF (text layer)", make.pdf(folder / "a.pdf", [take(38) for _ in range(50)]), 50),
        ("DOCX", make.docx(folder / "a.docx", "Report", take(2000), [["name", "value", "note"]] + [[f"item {i}", str(i), next(text)[:30]] for i in range(200)]), 0),
        ("PPTX", make.pptx(folder / "a.pptx", [(f"Slide {i}", take(6), next(text)) for i in range(50)]), 50),
        ("XLSX", make.xlsx(folder / "a.xlsx", {f"S{s}": [["id", "town", "population", "note"]] + [[i, f"Town {i}", i * 7, next(text)[:40]] for i in range(2500)] for s in range(4)}), 4),
        ("EPUB", make.epub(folder / "a.epub", [" ".join(take(40)) for _ in range(20)]), 20),
        ("HTML", make.html(folder / "a.html", "Report", take(2000), "noise"), 0),
        ("EML", make.eml(folder / "a.eml", "Report", "\n".join(take(2000))), 0),
    ]
    csv = folder / "a.csv"
    csv.write_text("id,town,population,note\n" + "".join(f"{i},Town {i},{i * 7},\"{next(text)[:40]}\"\n" for i in range(20000)), encoding="utf-8")
    markdown = folder / "a.md"
    markdown.write_text("\n\n".join(take(12000)) + "\n\n| id | town |\n|---|---|\n" + "".join(f"| {i} | Town {i} |\n" for i in range(2000)), encoding="utf-8")
    latin = folder / "a.txt"
    latin.write_bytes(("Die Brücke über die Förde wurde 1923 gebaut, größer als gedacht. " * 16000).encode("latin-1"))
    utf8 = folder / "b.txt"
    utf8.write_text("\n".join(take(12000)) + "\n", encoding="utf-8")
    made += [("CSV", csv, 0), ("Markdown with a table", markdown, 0), ("TXT, Latin-1 (detected)", latin, 0), ("TXT, UTF-8", utf8, 0)]
    if ocr:
        latin = [line[:60] for line in take(400) if line.isascii()][:14]  # the writer's font has no CJK glyphs
        made.append(("PDF, scanned (Tesseract OCR, 300 dpi)", make.scanned_pdf(folder / "scan.pdf", latin), 1))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ocr = pdf.ocr_languages() is not None
    print("| format | file | MB | pages | seconds | MB/s | pages/s |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="qa-formats-") as folder:
        for name, path, pages in build(Path(folder), ocr):
            raw = path.read_bytes()
            runs = []
            for _ in range(1 if "OCR" in name else args.runs):
                started = time.perf_counter()
                extraction = extract(raw, path.suffix)
                runs.append(time.perf_counter() - started)
            seconds = statistics.median(runs)
            megabytes = len(raw) / 2**20
            paged = len(extraction.pages) or pages
            per_page = f"{paged / seconds:.1f}" if paged else "–"
            print(f"| {name} | {path.suffix} | {megabytes:.2f} | {paged or '–'} | {seconds:.3f} | {megabytes / seconds:.1f} | {per_page} |", flush=True)
    if not ocr:
        print("\n(Tesseract is not installed: no OCR row.)")


if __name__ == "__main__":
    main()
