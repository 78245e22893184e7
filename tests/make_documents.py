"""Documents in every format qa reads, written by the libraries that make them, with known text on known pages."""

from __future__ import annotations

import zipfile
from email.message import EmailMessage
from pathlib import Path

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def pdf(path: Path, pages: list[list[str]], password: str | None = None) -> Path:
    """One PDF page per list of lines; Chinese and Korean lines are set in reportlab's CID fonts."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    for name in ("STSong-Light", "HYSMyeongJo-Medium"):
        pdfmetrics.registerFont(UnicodeCIDFont(name))
    page = canvas.Canvas(str(path), pagesize=A4, encrypt=password)
    for lines in pages:
        y = 800
        for line in lines:
            if any("\uac00" <= c <= "\ud7a3" for c in line):
                page.setFont("HYSMyeongJo-Medium", 11)
            elif any("\u4e00" <= c <= "\u9fff" for c in line):
                page.setFont("STSong-Light", 11)
            else:
                page.setFont("Helvetica", 11)
            page.drawString(40, y, line)
            y -= 20
        page.showPage()
    page.save()
    return path


def scanned_pdf(path: Path, lines: list[str]) -> Path:
    """A PDF whose one page is a picture of the lines: no text layer, as a scanner makes it."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (2480, 3508), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(_font(), 64)
    for number, line in enumerate(lines):
        draw.text((150, 200 + number * 110), line, fill="black", font=font)
    image.save(path, "PDF", resolution=300.0)
    return path


def _font() -> str:
    for candidate in (FONT, "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"):
        if Path(candidate).is_file():
            return candidate
    import reportlab

    return str(Path(reportlab.__file__).parent / "fonts" / "Vera.ttf")


def docx(path: Path, title: str, paragraphs: list[str], table: list[list[str]] | None = None) -> Path:
    import docx as python_docx

    document = python_docx.Document()
    document.add_heading(title, level=1)
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    document.save(path)
    return path


def pptx(path: Path, slides: list[tuple[str, list[str], str]]) -> Path:
    """Slides of (title, bullet lines, speaker notes)."""
    import pptx as python_pptx

    deck = python_pptx.Presentation()
    for title, lines, notes in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = "\n".join(lines)
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    deck.save(path)
    return path


def xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


def epub(path: Path, chapters: list[str]) -> Path:
    """A minimal EPUB 3: container, package with a spine, one XHTML file per chapter (its paragraphs)."""
    items = "".join(f'<item id="c{i}" href="c{i}.xhtml" media-type="application/xhtml+xml"/>' for i in range(len(chapters)))
    spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("mimetype", "application/epub+zip")
        book.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            '<rootfiles><rootfile full-path="OEBPS/book.opf" media-type="application/oebps-package+xml"/></rootfiles></container>',
        )
        book.writestr(
            "OEBPS/book.opf",
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
            f"<manifest>{items}</manifest><spine>{spine}</spine></package>",
        )
        for i, chapter in enumerate(chapters):
            book.writestr(
                f"OEBPS/c{i}.xhtml",
                f'<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>Chapter {i + 1}</title></head>'
                f"<body><h1>Chapter {i + 1}</h1><p>{chapter}</p></body></html>",
            )
    return path


def eml(path: Path, subject: str, body: str) -> Path:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = "Ingrid Vale <ingrid@example.org>"
    message["To"] = "team@example.org"
    message["Date"] = "Tue, 03 Mar 2026 09:15:00 +0000"
    message.set_content(body)
    path.write_bytes(bytes(message))
    return path


def html(path: Path, title: str, paragraphs: list[str], noise: str) -> Path:
    """A page whose article is ``paragraphs``; ``noise`` stands in its script, style, navigation, cookie banner and footer."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    path.write_text(
        f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>.banner {{ content: "{noise} style"; }}</style><script>var tracking = "{noise} script";</script></head>
<body><header><nav><a href="/">Home</a> <a href="/news">{noise} navigation menu</a> <a href="/about">About us</a></nav></header>
<div id="cookie-banner" class="cookie-consent">We use cookies to improve {noise} cookie experience. <button>Accept all</button></div>
<main><article><h1>{title}</h1>{body}</article></main>
<footer><p>Copyright 2026 {noise} footer. Imprint. Privacy policy.</p></footer></body></html>""",
        encoding="utf-8",
    )
    return path
