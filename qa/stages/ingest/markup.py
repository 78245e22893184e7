"""HTML, EPUB and email: the main content of web-like documents.

HTML goes through ``trafilatura`` (Apache-2.0): it finds a page's main
content and drops navigation, scripts, styles, cookie banners and footers,
which a whole-page converter such as ``inscriptis`` keeps, and it writes
headings and tables as Markdown, whose table rows then get their header like
any Markdown table's. A page too short for its main-content heuristics falls
back to its plain text (``trafilatura.html2txt``), still without scripts.
EPUB is a zip of XHTML chapters read in the spine's order with the same code
(not ``ebooklib``, which is AGPL); email is the standard library's ``email``.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from email import policy
from email.parser import BytesParser
from io import BytesIO
from xml.etree import ElementTree

from qa.stages.ingest.base import Extraction, Unreadable, join_pages
from qa.stages.ingest.text import decode, markdown

_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_\-]+)""", re.IGNORECASE)


def _html_text(html: str) -> str:
    import trafilatura

    text = trafilatura.extract(
        html,
        output_format="markdown",
        include_tables=True,
        include_comments=False,
        include_images=False,
        include_links=False,
        favor_recall=True,
        with_metadata=False,
        deduplicate=False,
    )
    if not text or not text.strip():
        text = trafilatura.html2txt(html) or ""
    return markdown(text.strip())


def _decode_html(raw: bytes) -> str:
    """The page's declared charset when it names one Python knows, else detection."""
    declared = _CHARSET.search(raw[:4096])
    if declared:
        try:
            return raw.decode(declared.group(1).decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            pass
    return decode(raw)


def html(raw: bytes, suffix: str = ".html") -> Extraction:
    text = _html_text(_decode_html(raw))
    if not text:
        raise Unreadable("textless", "no main text found")
    return Extraction(text + "\n")


_OPF = "{http://www.idpf.org/2007/opf}"
_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"


def epub(raw: bytes, suffix: str = ".epub") -> Extraction:
    """Each chapter of the spine, in reading order, is a page of its own."""
    try:
        with zipfile.ZipFile(BytesIO(raw)) as book:
            container = ElementTree.fromstring(book.read("META-INF/container.xml"))
            rootfile = container.find(f".//{_CONTAINER}rootfile")
            if rootfile is None:
                raise Unreadable("corrupt", "its META-INF/container.xml names no package file")
            opf_path = rootfile.get("full-path", "")
            package = ElementTree.fromstring(book.read(opf_path))
            base = posixpath.dirname(opf_path)
            items = {item.get("id"): item.get("href") for item in package.iter(f"{_OPF}item")}
            chapters = []
            for itemref in package.iter(f"{_OPF}itemref"):
                href = items.get(itemref.get("idref"))
                if href:
                    chapter = _html_text(_decode_html(book.read(posixpath.normpath(posixpath.join(base, href)))))
                    if chapter:
                        chapters.append(chapter)
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError) as error:
        raise Unreadable("corrupt", f"not a readable EPUB ({error})") from None
    except RuntimeError as error:  # zipfile: an encrypted entry
        raise Unreadable("encrypted", f"it is encrypted ({error})") from None
    if not chapters:
        raise Unreadable("textless", "no chapter has text")
    return join_pages(chapters)


def email(raw: bytes, suffix: str = ".eml") -> Extraction:
    """Subject, sender, recipients and date, then the body (its plain text, else its HTML's main text)."""
    message = BytesParser(policy=policy.default).parse(BytesIO(raw))
    lines = [f"{name}: {message[name]}" for name in ("Subject", "From", "To", "Date") if message[name]]
    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None:
        try:
            content = body.get_content()
        except (LookupError, UnicodeDecodeError, AssertionError) as error:
            raise Unreadable("undecodable", f"its body does not decode ({error})") from None
        text = _html_text(content) if body.get_content_type() == "text/html" else content.strip()
        lines += ["", text]
    if not any(line.strip() for line in lines):
        raise Unreadable("textless", "no headers or text")
    return Extraction("\n".join(lines).replace("\r\n", "\n") + "\n")
