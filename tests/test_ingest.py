from __future__ import annotations

import logging


import pytest
from hypothesis import given
from hypothesis import strategies as st

import make_documents as make
from qa.errors import CorpusError
from qa.models import Document
from qa.stages.ingest import extract, find_files, pdf, read_corpus, read_documents, skipped_summary
from qa.stages.ingest.base import Unreadable, join_pages
from qa.stages.ingest.text import markdown

needs_tesseract = pytest.mark.skipif(pdf.ocr_languages() is None, reason="Tesseract is not installed")


def sources(folder, **choose):
    return [d.source for d in read_corpus(folder, **choose).documents]


def test_reads_recursively_with_relative_ids(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.md").write_text("# Titel\n", encoding="utf-8")
    (tmp_path / "y.txt").write_text("text\n", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("no")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "notes.txt").write_text("no")
    assert sources(tmp_path) == ["a/x.md", "y.txt"]


def test_unknown_extensions_are_counted_as_skipped(tmp_path):
    (tmp_path / "y.txt").write_text("text\n")
    (tmp_path / "tool.exe").write_bytes(b"MZ")
    (tmp_path / "other.exe").write_bytes(b"MZ")
    (tmp_path / "README").write_text("no extension")
    corpus = read_corpus(tmp_path)
    assert [d.source for d in corpus.documents] == ["y.txt"]
    assert corpus.skipped_summary() == "skipped 3: 2 .exe, 1 (no extension)"


def test_only_unreadable_files_is_an_error_naming_them(tmp_path):
    (tmp_path / "tool.exe").write_bytes(b"MZ")
    with pytest.raises(CorpusError, match=r"no readable documents \(skipped 1: 1 \.exe\)"):
        list(read_documents(tmp_path))


def test_byte_order_marks_are_honoured(tmp_path):
    (tmp_path / "u16.txt").write_bytes("협력의향서\n".encode("utf-16"))
    (tmp_path / "sig.txt").write_bytes(b"\xef\xbb\xbfNIST\n")
    texts = {d.source: d.text for d in read_documents(tmp_path)}
    # UTF-8's mark stays character 0, as open(path, encoding="utf-8") reads it, so offsets match that text.
    assert texts == {"sig.txt": "\ufeffNIST\n", "u16.txt": "협력의향서\n"}


def test_legacy_encodings_are_detected(tmp_path):
    german = "Die Brücke über die Förde in Mörsch wurde im Jahr 1923 gebaut und ist größer als gedacht.\n"
    japanese = "東京タワーは一九五八年に完成しました。高さは三百三十三メートルで、当時は世界一高い鉄塔でした。\n"
    (tmp_path / "latin.txt").write_bytes(german.encode("latin-1"))
    (tmp_path / "sjis.txt").write_bytes(japanese.encode("shift_jis"))
    texts = {d.source: d.text for d in read_documents(tmp_path)}
    assert texts == {"latin.txt": german, "sjis.txt": japanese}


def test_utf8_text_is_kept_exactly(tmp_path):
    text = "line one\r\nzwei\n\n셋 ...\n"
    (tmp_path / "a.txt").write_bytes(text.encode("utf-8"))
    (document,) = read_documents(tmp_path)
    assert document.text == text and document.pages == ()


def test_binary_files_are_skipped_with_a_warning(tmp_path, caplog):
    (tmp_path / "blob.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "ok.txt").write_text("fine\n")
    with caplog.at_level(logging.WARNING):
        assert [d.source for d in read_documents(tmp_path)] == ["ok.txt"]
    assert "blob.txt" in caplog.text and "binary" in caplog.text


def test_hash_changes_with_content(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("one")
    first = next(read_documents(tmp_path)).sha256
    path.write_text("two")
    assert next(read_documents(tmp_path)).sha256 != first


def test_broken_files_are_skipped_by_name_and_reason_and_nothing_else_is_lost(tmp_path, caplog):
    make.pdf(tmp_path / "secret.pdf", [["The vault code is 4711."]], password="hunter2")
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "tool.exe").write_bytes(b"MZ")
    (tmp_path / "fine.txt").write_text("Fine text.\n")
    make.pdf(tmp_path / "open.pdf", [["An open PDF."]])
    with caplog.at_level(logging.WARNING):
        corpus = read_corpus(tmp_path)
    assert [d.source for d in corpus.documents] == ["fine.txt", "open.pdf"]
    assert corpus.skipped_summary() == "skipped 4: 1 .exe, 1 corrupt .docx, 1 empty .txt, 1 encrypted .pdf"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "skipping secret.pdf: it is encrypted (password-protected)" in warnings
    assert any(w.startswith("skipping broken.docx: not a readable Word file") for w in warnings)
    assert "skipping empty.txt: the file is empty" in warnings
    assert not any("tool.exe" in w for w in warnings)  # unknown formats are counted, not warned about one by one


def test_pdf_pages_are_kept_apart(tmp_path):
    path = make.pdf(
        tmp_path / "h.pdf",
        [["Harbour handbook", "Welcome."], ["The lighthouse was built in 1887."], ["Die Fähre fährt um 7:40 Uhr.", "青岛啤酒节每年八月举行。", "한라산 등반은 오전 6시에 시작한다."]],
    )
    extraction = extract(path.read_bytes(), ".pdf")
    document = Document(source="h.pdf", text=extraction.text, sha256="", pages=extraction.pages)
    assert len(extraction.pages) == 3
    for page, phrase in ((1, "Harbour handbook"), (2, "lighthouse was built in 1887"), (3, "青岛啤酒节每年八月举行"), (3, "한라산 등반은")):
        assert document.page_at(extraction.text.index(phrase)) == page
    assert "Die Fähre fährt um 7:40 Uhr." in extraction.text


@needs_tesseract
def test_scanned_pdf_is_read_by_ocr(tmp_path):
    path = make.scanned_pdf(tmp_path / "scan.pdf", ["Der Hafenmeister von Lindholm", "heisst Oskar Berg."])
    extraction = extract(path.read_bytes(), ".pdf")
    assert "Lindholm" in extraction.text and "Oskar Berg" in extraction.text
    assert extraction.pages == (0,)


def test_scanned_pdf_without_tesseract_is_skipped_by_name(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(pdf, "ocr_languages", lambda: None)
    make.scanned_pdf(tmp_path / "scan.pdf", ["Der Hafenmeister"])
    (tmp_path / "ok.txt").write_text("fine\n")
    with caplog.at_level(logging.WARNING):
        corpus = read_corpus(tmp_path)
    assert [d.source for d in corpus.documents] == ["ok.txt"]
    assert "skipping scan.pdf: no text layer and Tesseract is not installed" in caplog.text
    assert corpus.skipped_summary() == "skipped 1: 1 scanned .pdf"


def test_docx_keeps_headings_paragraphs_and_table_rows_with_their_header(tmp_path):
    path = make.docx(
        tmp_path / "plan.docx",
        "Migration plan",
        ["The migration to PostgreSQL 17 is planned for March 2027."],
        [["service", "owner", "language"], ["search", "Team Heron", "Rust"]],
    )
    assert extract(path.read_bytes(), ".docx").text == (
        "# Migration plan\n"
        "The migration to PostgreSQL 17 is planned for March 2027.\n"
        "service | owner | language\n"
        "Row 2: service: search, owner: Team Heron, language: Rust\n"
    )


def test_pptx_slides_are_pages_with_their_notes(tmp_path):
    path = make.pptx(
        tmp_path / "deck.pptx",
        [("Kickoff", ["Welcome everyone"], ""), ("Project Kestrel", ["Budget and timeline"], "The budget is 1.2 million euros.")],
    )
    extraction = extract(path.read_bytes(), ".pptx")
    assert extraction.text == "# Kickoff\nWelcome everyone\n\n# Project Kestrel\nBudget and timeline\n\nNotes: The budget is 1.2 million euros.\n"
    assert extraction.pages == (0, extraction.text.index("# Project Kestrel"))


def test_spreadsheet_rows_keep_their_header_and_sheets_are_pages(tmp_path):
    path = make.xlsx(tmp_path / "t.xlsx", {"Notes": [["note"], ["From the census."]], "Towns": [["town", "population"], ["Orvik", 48210], [None, None], ["Brask", 1200.0]]})
    extraction = extract(path.read_bytes(), ".xlsx")
    second = extraction.text[extraction.pages[1] :]
    assert second == "# Sheet: Towns\ntown | population\nRow 2: town: Orvik, population: 48210\nRow 4: town: Brask, population: 1200\n"


@pytest.mark.parametrize("suffix, content", [(".csv", "town,population\nOrvik,48210\n"), (".csv", "town;population\nOrvik;48210\n"), (".tsv", "town\tpopulation\nOrvik\t48210\n")])
def test_csv_and_tsv_rows_keep_their_header(suffix, content):
    assert extract(content.encode(), suffix).text == "town | population\nRow 2: town: Orvik, population: 48210\n"


def test_markdown_table_rows_keep_their_header_and_their_lines():
    text = "# Teams\n\n| service | owner |\n|---|---|\n| search | Team Heron |\n| billing | Team Osprey |\n\nEnd | of story.\n"
    converted = extract(text.encode(), ".md").text
    assert converted.split("\n") == [
        "# Teams", "", "| service | owner |", "|---|---|", "Row 2: service: search, owner: Team Heron", "Row 3: service: billing, owner: Team Osprey", "", "End | of story.", "",
    ]


@given(st.text(alphabet=st.sampled_from("ab |-:\n#"), max_size=200))
def test_markdown_keeps_every_line_where_it_was(text):
    converted = markdown(text)
    assert converted.count("\n") == text.count("\n")
    if "|" not in text:
        assert converted == text


@given(st.lists(st.text(alphabet=st.sampled_from("ab \n"), max_size=12), min_size=1, max_size=6))
def test_every_character_lies_on_the_page_it_came_from(pages):
    extraction = join_pages(pages)
    document = Document(source="x.pdf", text=extraction.text, sha256="", pages=extraction.pages)
    for number, page in enumerate(pages, start=1):
        content = page.strip("\n")
        if content:
            start = extraction.text.index(content, extraction.pages[number - 1])
            assert start == extraction.pages[number - 1]
            assert {document.page_at(start + i) for i in range(len(content))} == {number}


def test_html_keeps_the_article_and_its_headings_and_drops_the_rest(tmp_path):
    path = make.html(tmp_path / "p.html", "The harbour of Tarnby", ["The harbour of Tarnby was dredged in 1904 with steam pumps, the first such work in the north."], "zebra")
    text = extract(path.read_bytes(), ".html").text
    assert text.startswith("# The harbour of Tarnby\n")
    assert "dredged in 1904 with steam pumps" in text
    assert "zebra" not in text and "Accept all" not in text and "tracking" not in text


def test_epub_chapters_are_pages(tmp_path):
    path = make.epub(tmp_path / "b.epub", ["It was a dark night.", "The keeper Ansel Moor kept a diary of every storm."])
    extraction = extract(path.read_bytes(), ".epub")
    assert len(extraction.pages) == 2
    assert extraction.text.index("Ansel Moor") > extraction.pages[1]


def test_email_keeps_headers_and_body(tmp_path):
    path = make.eml(tmp_path / "m.eml", "Falcon kickoff moved", "The Falcon kickoff meeting moves to room B4.")
    text = extract(path.read_bytes(), ".eml").text
    assert text.startswith("Subject: Falcon kickoff moved\nFrom: Ingrid Vale <ingrid@example.org>\n")
    assert text.endswith("\nThe Falcon kickoff meeting moves to room B4.\n")


def test_unreadable_says_why():
    with pytest.raises(Unreadable, match="empty"):
        extract(b"", ".pdf")
    with pytest.raises(Unreadable) as error:
        extract(b"%PDF-1.4 garbage", ".pdf")
    assert error.value.reason == "corrupt"


def test_skipped_summary_groups_by_reason_and_extension():
    from qa.stages.ingest import Skipped

    skipped = [Skipped("a.exe", "unsupported", ""), Skipped("b.EXE", "unsupported", ""), Skipped("c.pdf", "encrypted", "")]
    assert skipped_summary(skipped) == "skipped 3: 2 .exe, 1 encrypted .pdf"
    assert skipped_summary([]) == ""


class TestChoosingFiles:
    @pytest.fixture
    def folder(self, tmp_path):
        for name in ("a.txt", "b.md", "drafts/c.txt", "drafts/keep.txt", "docs/d.txt", "docs/deep/e.txt", "build/f.txt"):
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text("x\n")
        return tmp_path

    def test_gitignore_and_qaignore_are_respected_as_git_would(self, folder):
        (folder / ".gitignore").write_text("build/\ndrafts/*\n!drafts/keep.txt\n")
        (folder / "docs" / ".qaignore").write_text("deep/\n")
        assert sources(folder) == ["a.txt", "b.md", "docs/d.txt", "drafts/keep.txt"]

    def test_include_and_exclude_globs(self, folder):
        assert sources(folder, include=["*.md", "docs/"]) == ["b.md", "docs/d.txt", "docs/deep/e.txt"]
        assert sources(folder, exclude=["drafts/", "**/e.txt"]) == ["a.txt", "b.md", "build/f.txt", "docs/d.txt"]

    def test_missing_folder_is_an_error(self, tmp_path):
        with pytest.raises(CorpusError, match="does not exist"):
            find_files(tmp_path / "nowhere")


def test_the_seed_corpus_reads_exactly_as_its_files(tmp_path):
    from conftest import CORPUS

    for document in read_documents(CORPUS):
        assert document.text == (CORPUS / document.source).read_bytes().decode("utf-8") and document.pages == ()



def test_a_stored_plain_text_is_decoded_again_not_read_back(tmp_path, monkeypatch):
    """A .txt file the store holds is decoded from its bytes (cheaper); the text is the same, the store untouched."""
    from qa.stages.ingest import ExtractStore

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Ünïcode text, 한국어와 中文.\n", encoding="utf-8")
    (corpus / "b.txt").write_bytes("Latin-1 bytes: café à la carte, déjà vu, naïve façade.\n".encode("latin-1"))
    store = ExtractStore(tmp_path / "index")
    first = read_corpus(corpus, store=store)
    assert first.extracted == 2 and len(list(store.folder.iterdir())) == 2
    read_back = []
    original = ExtractStore.load
    monkeypatch.setattr(ExtractStore, "load", lambda self, sha256: read_back.append(sha256) or original(self, sha256))
    again = read_corpus(corpus, store=store)
    assert again.extracted == 0 and [d.text for d in again.documents] == [d.text for d in first.documents]
    by_source = {d.source: d.sha256 for d in again.documents}
    assert read_back == [by_source["b.txt"]]  # only the file that is not UTF-8 comes from the store


@given(st.binary(max_size=200))
def test_utf8_text_agrees_with_decode(raw):
    from qa.stages.ingest import text

    fast = text.utf8_text(raw)
    if fast is not None:
        assert fast == text.decode(raw)
