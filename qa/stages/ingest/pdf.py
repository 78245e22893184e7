"""PDF: each page's text layer through PDFium; pages without one through Tesseract OCR.

``pypdfium2`` (Apache-2.0/BSD-3, PDFium itself BSD-3) was chosen over
``pypdf`` and ``pdfplumber`` by measurement: on a 50-page German, Chinese and
Korean PDF all three extracted the same text, in 0.10 s, 0.50 s and 11.3 s. It
is one self-contained wheel, and the same library renders a scanned page to
the image OCR reads, so no poppler (``pdftoppm``) is needed on the machine.
PyMuPDF would do as well but is AGPL.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from qa.stages.ingest.base import Extraction, Unreadable, join_pages

log = logging.getLogger(__name__)

# Tesseract's languages, in the order tried together: English plus the corpus's other languages.
OCR_LANGUAGES = ("eng", "deu", "chi_sim", "kor")
# Rendering resolution for OCR: Tesseract reads 300 dpi text best.
OCR_DPI = 300
OCR_TIMEOUT_S = 120
# A page with fewer characters than this in its text layer is taken for a scan.
MIN_TEXT_LAYER = 8


@functools.lru_cache(maxsize=1)
def ocr_languages() -> str | None:
    """``eng+deu+...`` for the languages Tesseract has here, or None without Tesseract."""
    binary = shutil.which("tesseract")
    if binary is None:
        return None
    try:
        listed = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, timeout=30).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    have = [language for language in OCR_LANGUAGES if language in listed]
    return "+".join(have) or None


def ocr_image(image, languages: str) -> str:
    """The text Tesseract reads in a PIL image."""
    with tempfile.TemporaryDirectory(prefix="qa-ocr-") as folder:
        path = Path(folder) / "page.png"
        image.save(path)
        done = subprocess.run(
            ["tesseract", str(path), "stdout", "-l", languages],
            capture_output=True,
            text=True,
            timeout=OCR_TIMEOUT_S,
            # Tesseract's own threads slow it down on a busy machine; one page is one thread's work.
            env={**os.environ, "OMP_THREAD_LIMIT": "1"},
        )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit status {done.returncode}")
    return done.stdout


def extract(raw: bytes, suffix: str = ".pdf") -> Extraction:
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(raw)
    except pdfium.PdfiumError as error:
        if "password" in str(error).lower():
            raise Unreadable("encrypted", "it is encrypted (password-protected)") from None
        raise Unreadable("corrupt", f"not a readable PDF ({error})") from None
    pages, scanned, warnings = [], [], []
    languages = ocr_languages()
    try:
        for number in range(len(document)):
            page = document[number]
            text = page.get_textpage().get_text_bounded().replace("\r\n", "\n").replace("\r", "\n")
            if len(text.strip()) < MIN_TEXT_LAYER:
                scanned.append(number + 1)
                if languages is not None:
                    try:
                        text = ocr_image(page.render(scale=OCR_DPI / 72).to_pil(), languages)
                    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
                        warnings.append(f"OCR of page {number + 1} failed ({error})")
            pages.append(text)
    finally:
        document.close()
    if scanned and languages is None:
        listed = ", ".join(map(str, scanned[:10])) + (" ..." if len(scanned) > 10 else "")
        if len(scanned) == len(pages):
            raise Unreadable("scanned", "no text layer and Tesseract is not installed (apt-get install tesseract-ocr)")
        warnings.append(f"page(s) {listed} have no text layer and Tesseract is not installed, so they are not read")
    extraction = join_pages(pages)
    if not extraction.text.strip():
        raise Unreadable("textless", "no text on any page")
    return Extraction(extraction.text, extraction.pages, tuple(warnings))
