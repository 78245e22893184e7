"""Fuzzing every input a user controls: never a traceback, always a one-line error or a clean answer.

Four kinds of input, each drawn by hypothesis: questions (surrogates, control
characters, huge, empty once normalised), corpus files and their names, golden
and config files, and damage to each file of a built index (truncated,
flipped, deleted). CI runs a few dozen cases of each, well under a minute; a
benchmark run draws more and writes the counts:

    QA_FUZZ_EXAMPLES=500 QA_FUZZ_REPORT=fuzz.json pytest tests/test_fuzz.py -p no:cacheprovider

The counts (cases and failures per kind) are written to ``QA_FUZZ_REPORT``
when set, and printed with ``-s``.
"""

from __future__ import annotations

import json
import os
import shutil
import string
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.bot import Bot
from qa.errors import QAError
from qa.evaluate import load_golden
from qa.models import Answer
from qa.settings import Settings
from qa.stages import index as index_store
from qa.text import neutralise

EXAMPLES = int(os.environ.get("QA_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Builds cost a second or more each: a fifth as many, at least a few.
FUZZ_BUILDS = settings(FUZZ, max_examples=max(5, EXAMPLES // 5))

CASES: Counter[str] = Counter()
FAILURES: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    counts = {kind: {"cases": CASES[kind], "failures": FAILURES[kind]} for kind in sorted(CASES)}
    print("\nfuzz counts:", json.dumps(counts))
    if os.environ.get("QA_FUZZ_REPORT_PATH"):
        Path(os.environ["QA_FUZZ_REPORT_PATH"]).write_text(json.dumps(counts, indent=2) + "\n", encoding="utf-8")


# Read before the autouse fixture of conftest clears QA_* variables.
if os.environ.get("QA_FUZZ_REPORT"):
    os.environ["QA_FUZZ_REPORT_PATH"] = os.environ["QA_FUZZ_REPORT"]


def checked(kind: str, run: Callable[[], object]) -> object:
    """Run one case: a ``QAError`` must be one line; anything else but a clean return is a failure."""
    CASES[kind] += 1
    try:
        result = run()
    except QAError as error:
        message = str(error)
        if not message or "\n" in message or "Traceback" in message:
            FAILURES[kind] += 1
            raise AssertionError(f"{kind}: not a one-line error: {message!r}") from error
        return error
    except BaseException:
        FAILURES[kind] += 1
        raise
    return result


# --- questions ----------------------------------------------------------------------------------

SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
CONTROLS = st.sampled_from([chr(c) for c in [*range(0, 32), *range(127, 160)]])
ODD = st.sampled_from(["\u200b", "\u200d", "\ufeff", "\u202e", "\u00ad", "🙂", "👍", "\U0001f3fd", "…", "？", "¿", "\u3000", "\xa0", "́"])
QUESTIONS = st.one_of(
    st.text(max_size=200),
    st.text(st.one_of(SURROGATES, CONTROLS, ODD, st.characters()), max_size=80),
    st.text(st.one_of(ODD, st.sampled_from(string.punctuation + string.whitespace)), max_size=40),  # empty once normalised
    st.tuples(st.sampled_from(["What did NIST sign", "Wer", "协议", "서명"]), st.text(st.one_of(SURROGATES, CONTROLS, ODD), max_size=5)).map(
        lambda pair: pair[0] + pair[1]
    ),
    st.integers(1990, 20_000).map(lambda n: ("word " * n)[:n]),  # at and past the length limit
)


@FUZZ
@given(question=QUESTIONS)
def test_fuzz_questions_through_the_bot(bot: Bot, question: str) -> None:
    result = checked("question (Bot.ask)", lambda: bot.ask(question))
    if isinstance(result, Answer):
        result.model_dump_json()  # serialisable: no lone surrogate reaches an answer


@pytest.fixture(scope="module")
def http_client(bot: Bot):
    from fastapi.testclient import TestClient

    from qa.faces.http import create_app

    return TestClient(create_app(bot))


@FUZZ
@given(question=QUESTIONS, path=st.sampled_from(["/ask", "/chat"]))
def test_fuzz_questions_through_http(http_client, question: str, path: str) -> None:
    body = {"question": question} | ({"conversation_id": "fuzz"} if path == "/chat" else {})
    # Surrogates cannot be encoded as UTF-8: sent as JSON \u escapes, as a client in another language would.
    raw = json.dumps(body, ensure_ascii=True).encode()

    def run() -> None:
        response = http_client.post(path, content=raw, headers={"Content-Type": "application/json"})
        assert response.status_code in (200, 413, 422), (response.status_code, response.text[:300])
        if response.status_code != 200:
            detail = response.json()["detail"]
            assert isinstance(detail, str) and "\n" not in detail

    checked("question (HTTP)", run)


# --- corpus files and names -----------------------------------------------------------------------

NAME_CHARS = st.one_of(st.characters(exclude_characters="/\x00", exclude_categories=("Cs",)), CONTROLS.filter(lambda c: c not in "\x00/"))
FILE_NAMES = st.one_of(
    st.text(NAME_CHARS, min_size=1, max_size=40).map(lambda n: n.encode("utf-8")),
    st.binary(min_size=1, max_size=20).map(lambda b: b.replace(b"/", b"_").replace(b"\x00", b"_")),  # not UTF-8
).map(lambda name: name[:200] + b".txt" if not name.startswith(b".") else b"x" + name[:200] + b".md")
CONTENTS = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.text(st.one_of(CONTROLS, ODD, st.characters(codec="utf-8")), max_size=300).map(str.encode),
    st.sampled_from([b"\xef\xbb\xbfBOM text.", b"\xff\xfeU\x00T\x00F\x00", b"\xfe\xff\x00x", "Latin-1 caf\xe9".encode("latin-1")]),
    st.integers(1000, 5000).map(lambda n: b"x" * n),  # one long "word"
)


@FUZZ_BUILDS
@given(files=st.lists(st.tuples(FILE_NAMES, CONTENTS), min_size=1, max_size=4))
def test_fuzz_corpus_files_and_names(tmp_path_factory: pytest.TempPathFactory, files: list[tuple[bytes, bytes]]) -> None:
    root = tmp_path_factory.mktemp("fuzz-corpus")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "anchor.txt").write_text("The Artemis program returns astronauts to the Moon.\n", encoding="utf-8")
    for name, content in files:
        try:
            with open(os.path.join(os.fsencode(corpus), name), "wb") as handle:
                handle.write(content)
        except OSError:
            continue  # a name this file system refuses
    settings_ = Settings.load(corpus_dir=corpus, index_dir=root / "index", max_line_chars=2000)

    def run() -> None:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("qa.bot._export_query_encoder", lambda settings, embedder: None)  # copying the export is not under test
            try:
                Bot.index(settings_)
            except QAError:
                raise
            answer = Bot.load(settings_, build_if_missing=False).ask("Who returns astronauts to the Moon?")
        answer.model_dump_json()
        for citation in answer.citations:
            assert neutralise(citation.label).isprintable()

    try:
        checked("corpus files and names", run)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- golden and config files ----------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
GOLDEN_LINE = st.one_of(
    st.fixed_dictionaries(
        {"id": st.text(max_size=5), "question": st.text(max_size=30)},
        optional={"source": JSON_VALUES, "lines": JSON_VALUES, "unanswerable": JSON_VALUES, "history": JSON_VALUES, "x": JSON_VALUES},
    ).map(json.dumps),
    JSON_VALUES.map(json.dumps),
    st.text(max_size=60),
    st.integers(1, 5000).map(lambda n: "[" * n + "]" * n),
)
GOLDEN_FILES = st.one_of(
    st.lists(GOLDEN_LINE, max_size=5).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass")),
    st.binary(max_size=200),
    st.text(max_size=100).map(lambda t: t.encode("latin-1", "replace")),
)


@FUZZ
@given(content=GOLDEN_FILES)
def test_fuzz_golden_files(tmp_path_factory: pytest.TempPathFactory, content: bytes) -> None:
    path = tmp_path_factory.mktemp("golden") / "golden.jsonl"
    path.write_bytes(content)
    checked("golden file", lambda: load_golden(path))


SETTING_NAMES = st.sampled_from([*Settings.model_fields, "qa", "unknown"])
TOML_SCALARS = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(str),
    st.floats(allow_nan=True).map(lambda f: {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(str(f), repr(f))),
    st.booleans().map(lambda b: str(b).lower()),
    st.text(max_size=30).map(json.dumps),
    st.sampled_from(['"http://[::1/v1"', '"http://u:p@h:99999/v1"', '"https://"', "[]", '["a", 1]', "{}", "{ a = 1 }", '"none"', '"a,b"']),
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
)
CONFIG_FILES = st.one_of(
    st.lists(st.tuples(SETTING_NAMES, TOML_SCALARS), max_size=5).map(lambda pairs: "".join(f"{k} = {v}\n" for k, v in pairs).encode()),
    st.lists(st.tuples(SETTING_NAMES, TOML_SCALARS), max_size=4).map(lambda pairs: ("[qa]\n" + "".join(f"{k} = {v}\n" for k, v in pairs)).encode()),
    st.binary(max_size=100),
    st.text(max_size=80).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


@FUZZ
@given(content=CONFIG_FILES)
def test_fuzz_config_files(tmp_path_factory: pytest.TempPathFactory, content: bytes) -> None:
    path = tmp_path_factory.mktemp("config") / "qa.toml"
    path.write_bytes(content)
    checked("config file", lambda: Settings.load(path))


# --- damage to a built index --------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("fuzz-index")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "moon.txt").write_text("The Artemis program returns astronauts to the Moon.\nNASA leads it.\n", encoding="utf-8")
    (corpus / "tea.md").write_text("Green tea is grown in Shizuoka. The harvest starts in April.\n", encoding="utf-8")
    settings_ = Settings.load(corpus_dir=corpus, index_dir=root / "index")
    Bot.index(settings_)
    return settings_


def index_files(index_dir: Path) -> list[str]:
    generation = (index_dir / "CURRENT").read_text().strip()
    files = (path.relative_to(index_dir).as_posix() for path in (index_dir / generation).rglob("*") if path.is_file())
    return ["CURRENT", *sorted(files)]


DAMAGE = st.sampled_from(["truncate", "flip", "delete", "empty", "append"])


@FUZZ_BUILDS
@given(data=st.data(), damage=DAMAGE)
def test_fuzz_index_damage(built: Settings, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, damage: str) -> None:
    index_dir = tmp_path_factory.mktemp("damaged") / "index"
    shutil.copytree(built.index_dir, index_dir)
    settings_ = built.model_copy(update={"index_dir": index_dir})
    name = data.draw(st.sampled_from(index_files(index_dir)), label="file")
    path = index_dir / name
    content = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(content[: data.draw(st.integers(0, max(0, len(content) - 1)), label="length")])
    elif damage == "flip":
        flipped = bytearray(content)
        for _ in range(data.draw(st.integers(1, 16), label="flips")):
            flipped[data.draw(st.integers(0, len(content) - 1))] ^= 1 << data.draw(st.integers(0, 7))
        path.write_bytes(bytes(flipped))
    elif damage == "delete":
        path.unlink()
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(content + data.draw(st.binary(min_size=1, max_size=64), label="garbage"))

    def run() -> None:
        try:
            Bot.load(settings_, build_if_missing=False).ask("Who leads the Artemis program?").model_dump_json()
        except QAError as error:  # the damage was found: it must name the file, and qa index must repair it
            message = str(error)
            assert "\n" not in message
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr("qa.bot._export_query_encoder", lambda settings, embedder: None)
                try:
                    Bot.index(settings_)
                except QAError as failure:
                    raise AssertionError(f"qa index did not repair {name} ({damage}): {failure}") from None
            index_store.verify(index_dir)
            answer = Bot.load(settings_, build_if_missing=False).ask("Who leads the Artemis program?")
            assert answer.citations and answer.citations[0].source == "moon.txt"

    try:
        checked(f"index damage ({damage})", run)
    finally:
        shutil.rmtree(index_dir.parent, ignore_errors=True)


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_index_damage_to_every_file_is_named(built: Settings, tmp_path: Path, damage: str) -> None:
    """Each file of the index in turn, damaged: refused with a line naming it (or still answering), never a traceback."""
    for name in index_files(built.index_dir):
        index_dir = tmp_path / f"{damage}-{name.replace('/', '-')}"
        shutil.copytree(built.index_dir, index_dir)
        path = index_dir / name
        content = path.read_bytes()
        if damage == "truncate":
            path.write_bytes(content[: len(content) // 2])
        elif damage == "flip":
            path.write_bytes(content[: len(content) // 2] + bytes([content[len(content) // 2] ^ 0x10]) + content[len(content) // 2 + 1 :])
        else:
            path.unlink()
        settings_ = built.model_copy(update={"index_dir": index_dir})
        outcome = checked(
            "index damage sweep", lambda: Bot.load(settings_, build_if_missing=False).ask("Who leads the Artemis program?")
        )
        if isinstance(outcome, QAError):
            named = name.rsplit("/", 1)[-1]
            assert named in str(outcome) or name == "CURRENT" or named == index_store.MANIFEST, (name, damage, str(outcome))
        shutil.rmtree(index_dir)
