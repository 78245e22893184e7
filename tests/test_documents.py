"""Real documents end to end: planted facts in every format, asked through the Bot and the CLI, cited to file and page."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import make_documents as make
from qa.bot import Bot
from qa.errors import BadIndexError, CorpusError, SourceError
from qa.settings import Settings
from qa.stages import ingest
from qa.stages.ingest import pdf

HAS_TESSERACT = pdf.ocr_languages() is not None


def write_mixed_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    make.pdf(
        folder / "handbook.pdf",
        [
            ["Orvik Harbour Handbook", "This handbook describes the port and its services."],
            ["Safety", "The Orvik lighthouse was built in 1887 by the engineer Halvard Brekke."],
            ["Fähren und Feste", "Die Fähre nach Skarnes legt jeden Dienstag um 7:40 Uhr im Hafen ab.", "青岛啤酒节每年八月在青岛举行。"],
        ],
    )
    make.docx(
        folder / "plan.docx",
        "Migration plan",
        ["The migration of the archive to PostgreSQL 17 is planned for March 2027."],
        [["service", "owner", "language"], ["search", "Team Heron", "Rust"]],
    )
    make.pptx(
        folder / "deck.pptx",
        [
            ("Kickoff", ["Welcome everyone"], ""),
            ("Project Kestrel", ["Budget and timeline"], "The budget for Project Kestrel is 1.2 million euros."),
            ("산행", ["한라산 등반은 오전 6시에 성판악에서 시작한다."], ""),
        ],
    )
    make.xlsx(folder / "towns.xlsx", {"Notes": [["note"], ["Figures from the 2025 census."]], "Towns": [["town", "population"], ["Orvik", 48210], ["Brask", 1200]]})
    (folder / "mayors.csv").write_text("city,mayor\nVelden,Rosa Quist\nHolm,Per Dahl\n", encoding="utf-8")
    (folder / "teams.md").write_text(
        "# Teams\n\n| service | owner | deploys |\n|---|---|---|\n| ledger | Team Osprey | weekly |\n| gateway | Team Wren | hourly |\n", encoding="utf-8"
    )
    make.html(folder / "tarnby.html", "The harbour of Tarnby", ["The harbour of Tarnby was dredged in 1904 with steam pumps, the first such work in the north."], "zebra")
    make.epub(folder / "diary.epub", ["It was a dark night on the coast.", "The keeper Ansel Moor kept a diary of every storm since 1890."])
    make.eml(folder / "falcon.eml", "Falcon kickoff moved", "The Falcon kickoff meeting moves to Thursday in room B4 of the Nordhaus.")
    (folder / "bruecke.txt").write_bytes("Die Brücke über die Förde in Mörsch wurde im Jahr 1923 gebaut.\n".encode("latin-1"))
    (folder / "tower.txt").write_bytes("東京タワーは一九五八年に完成しました。高さは三百三十三メートルです。\n".encode("shift_jis"))
    make.pdf(folder / "secret.pdf", [["The vault code is 4711."]], password="hunter2")
    (folder / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "setup.exe").write_bytes(b"MZ")
    if HAS_TESSERACT:
        make.scanned_pdf(folder / "scan.pdf", ["Der Hafenmeister von Lindholm", "heisst Oskar Berg."])
    return folder


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> tuple[Settings, Bot]:
    root = tmp_path_factory.mktemp("mixed")
    settings = Settings(corpus_dir=write_mixed_folder(root / "corpus"), index_dir=root / "index")
    report = Bot.index(settings)
    assert report.summary().endswith("; skipped 4: 1 .exe, 1 corrupt .docx, 1 empty .txt, 1 encrypted .pdf")
    return settings, Bot.load(settings, build_if_missing=False)


FACTS = [
    ("Who built the Orvik lighthouse?", "handbook.pdf", 2, "Halvard Brekke"),
    ("When does the ferry to Skarnes leave?", "handbook.pdf", 3, "7:40"),
    ("青岛啤酒节什么时候举行？", "handbook.pdf", 3, "八月"),
    ("Which team owns the search service?", "plan.docx", None, "Team Heron"),
    ("What is the budget for Project Kestrel?", "deck.pptx", 2, "1.2 million"),
    ("한라산 등반은 몇 시에 시작해?", "deck.pptx", 3, "오전 6시"),
    ("What is the population of Orvik?", "towns.xlsx", 2, "48210"),
    ("Who is the mayor of Velden?", "mayors.csv", None, "Rosa Quist"),
    ("How often does the ledger service deploy?", "teams.md", None, "weekly"),
    ("When was the harbour of Tarnby dredged?", "tarnby.html", None, "1904"),
    ("Who kept a diary of every storm?", "diary.epub", 2, "Ansel Moor"),
    ("Where is the Falcon kickoff meeting?", "falcon.eml", None, "room B4"),
    ("Wann wurde die Brücke in Mörsch gebaut?", "bruecke.txt", None, "1923"),
    ("東京タワーはいつ完成しましたか？", "tower.txt", None, "一九五八年"),
]
if HAS_TESSERACT:
    FACTS.append(("Wie heisst der Hafenmeister von Lindholm?", "scan.pdf", 1, "Oskar Berg"))


@pytest.mark.parametrize("question, source, page, phrase", FACTS, ids=[f[1] + ":" + f[3] for f in FACTS])
def test_each_fact_is_cited_to_its_file_and_page(mixed, question, source, page, phrase):
    settings, bot = mixed
    citation = bot.ask(question).citations[0]
    assert (citation.source, citation.page) == (source, page)
    assert phrase in citation.quote
    # The quote stands in the stored extraction at the cited lines, which `qa show` reads.
    shown = bot.source(citation.source, citation.line_start, citation.line_end, context=0)
    assert citation.quote in "\n".join(shown.lines) and shown.page == page


def test_scripts_navigation_banners_and_footers_are_not_indexed(mixed):
    settings, bot = mixed
    for passage in bot.search("zebra navigation menu cookie footer script style", k=20):
        assert "zebra" not in passage.text
    excerpt = bot.source("tarnby.html", 1, 1, context=100)
    assert not any("zebra" in line for line in excerpt.lines)


def test_unknown_sources_and_lines_are_one_line_errors(mixed):
    settings, bot = mixed
    with pytest.raises(SourceError, match="no indexed file is named 'secret.pdf'"):
        bot.source("secret.pdf", 1)
    with pytest.raises(SourceError, match="there is no line 99"):
        bot.source("mayors.csv", 99)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qa.faces.cli", *args], capture_output=True, text=True, timeout=300)


def test_qa_show_prints_a_pdf_citation_in_context_without_the_pdf(mixed, tmp_path):
    settings, bot = mixed
    citation = bot.ask("When does the ferry to Skarnes leave?").citations[0]
    assert citation.label == f"handbook.pdf:{citation.line_start} (page 3)"
    moved = tmp_path / "elsewhere"
    settings.corpus_dir.rename(moved)  # the original is gone: the index's stored text is what is shown
    try:
        done = run_cli("show", citation.label, "--index-dir", str(settings.index_dir), "-C", "1")
        as_json = json.loads(run_cli("show", f"handbook.pdf:{citation.line_start}", "--json", "--index-dir", str(settings.index_dir)).stdout)
    finally:
        moved.rename(settings.corpus_dir)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "handbook.pdf (page 3)"
    assert f"{citation.line_start} > Die Fähre nach Skarnes legt jeden Dienstag um 7:40 Uhr im Hafen ab." in lines
    assert len(lines) == 4  # the heading, the cited line and one line either side
    assert as_json["page"] == 3 and "Die Fähre nach Skarnes legt jeden Dienstag um 7:40 Uhr im Hafen ab." in as_json["lines"]


def test_qa_show_refuses_a_malformed_citation_in_one_line(mixed):
    settings, _ = mixed
    done = run_cli("show", "handbook.pdf", "--index-dir", str(settings.index_dir))
    assert done.returncode == 1 and done.stderr.strip().startswith("error: cannot read 'handbook.pdf' as FILE:LINE")
    assert "Traceback" not in done.stderr


def test_strict_turns_a_skip_into_an_error(mixed, tmp_path):
    settings, _ = mixed
    done = run_cli("index", str(settings.corpus_dir), "--index-dir", str(tmp_path / "strict"), "--strict")
    assert done.returncode == 1
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: skipped 4: 1 .exe, 1 corrupt .docx, 1 empty .txt, 1 encrypted .pdf (--strict)")
    with pytest.raises(CorpusError, match=r"skipped 4: .* \(--strict\)"):
        Bot.index(settings.model_copy(update={"strict": True, "index_dir": tmp_path / "strict"}))


def test_a_changed_pdf_alone_is_extracted_and_embedded_again(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    make.pdf(corpus / "a.pdf", [["The first page says the north pier opens at dawn."], ["The second page says the south pier closes at dusk."]])
    make.pdf(corpus / "b.pdf", [["Another handbook about the western breakwater and its lights."]])
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    Bot.index(settings)
    read = []
    original = pdf.extract
    monkeypatch.setitem(ingest.READERS, ".pdf", lambda raw, suffix: read.append(raw) or original(raw, suffix))
    assert Bot.index(settings).embedded == 0 and read == []
    make.pdf(corpus / "a.pdf", [["The first page says the north pier opens at dawn."], ["The second page now says the south pier closes at noon."]])
    report = Bot.index(settings)
    # The first page's chunk reads as it did: its vector is kept, the second page's is embedded anew.
    assert (report.changed, report.added, report.embedded, report.reused, len(read)) == (1, 0, 1, 1, 1)
    answer = Bot.load(settings, build_if_missing=False).ask("When does the south pier close?")
    assert (answer.citations[0].source, answer.citations[0].page) == ("a.pdf", 2) and "noon" in answer.citations[0].quote


def test_a_german_pdf_answers_an_english_question_as_a_german_text_file_does(tmp_path):
    pages = [
        ["Jahresbericht des Hafens", "Der Hafen wurde im letzten Jahr von vielen Schiffen besucht."],
        ["Die neue Werft in Brunsholm baut seit Januar elektrische Fähren für den Nahverkehr."],
    ]
    question = "What does the new shipyard in Brunsholm build?"
    cited = {}
    for name in ("report.pdf", "report.txt"):
        corpus = tmp_path / name / "corpus"
        corpus.mkdir(parents=True)
        (corpus / "other.txt").write_text("The museum in Holm shows old maps of the coast and its lighthouses.\n", encoding="utf-8")
        if name.endswith(".pdf"):
            make.pdf(corpus / name, pages)
        else:
            (corpus / name).write_text("\n\n".join("\n".join(page) for page in pages) + "\n", encoding="utf-8")
        settings = Settings(corpus_dir=corpus, index_dir=tmp_path / name / "index")
        citation = Bot.load(settings).ask(question).citations[0]
        cited[name] = (citation.source, citation.quote, citation.line_start, citation.page)
    assert cited["report.pdf"] == ("report.pdf", cited["report.txt"][1], cited["report.txt"][2], 2)
    assert "elektrische Fähren" in cited["report.txt"][1]


def test_an_index_from_another_extractor_version_asks_for_a_rebuild(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The north pier opens at dawn.\n", encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    Bot.index(settings)
    monkeypatch.setattr(ingest, "EXTRACTOR", "formats-v0")
    with pytest.raises(BadIndexError, match="extractor='formats-v2', not 'formats-v0'; rebuild it with: qa index --rebuild"):
        Bot.index(settings)
