"""The index build's dictionary worker: requests and replies that never block, never mix, and survive its leaving."""

from __future__ import annotations

import threading
import time

import pytest

from qa.crosslingual import dictionary_worker
from qa.crosslingual.dictionary_worker import DictionaryError, prepare_in_background

KOREAN = "한국산업기술진흥원은 협력의향서를 체결했다."


def test_glosses_and_lexicon_come_back():
    prepared = prepare_in_background({"ko.txt": KOREAN, "en.txt": "Nothing to gloss."}, ["ko.txt", "en.txt"])()
    assert list(prepared.glosses) == ["ko.txt"]
    assert any(english.startswith("letter of intent") for _, _, english in prepared.glosses["ko.txt"])
    assert "의향서" in str(prepared.lexicons["ko.txt"])


def test_an_abandoned_request_blocks_nothing_and_leaks_into_nothing():
    big = "协力的意向书。" * 20_000  # a reply far beyond what a pipe holds
    abandoned = prepare_in_background({"big.txt": big}, ["big.txt"])
    del abandoned  # as a build does when it fails after the request went out
    done = {}
    thread = threading.Thread(target=lambda: done.update(prepared=prepare_in_background({"ko.txt": KOREAN}, ["ko.txt"])()))
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the second build hung behind the first"
    assert list(done["prepared"].glosses) == ["ko.txt"]


def test_builds_in_two_threads_each_get_their_own_reply():
    results: dict[str, list] = {}

    def build(name: str) -> None:
        results[name] = list(prepare_in_background({name: KOREAN}, [name])().glosses)

    threads = [threading.Thread(target=build, args=(f"{n}.txt",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert results == {f"{n}.txt": [f"{n}.txt"] for n in range(3)}


def test_a_worker_that_left_idle_is_replaced(monkeypatch):
    monkeypatch.setattr(dictionary_worker, "IDLE_SECONDS", 0.5)
    monkeypatch.setattr(dictionary_worker, "_WORKER", None)
    prepare_in_background({"ko.txt": KOREAN}, ["ko.txt"])()
    first = dictionary_worker._WORKER
    deadline = time.monotonic() + 30
    while first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert first.poll() is not None, "the idle worker did not leave"
    assert list(prepare_in_background({"ko.txt": KOREAN}, ["ko.txt"])().glosses) == ["ko.txt"]
    assert dictionary_worker._WORKER is not first


def test_a_failure_is_one_line_for_the_user_and_the_worker_goes_on():
    request = "broken-request"
    dictionary_worker._write_atomically(dictionary_worker._folder() / f"{request}.request", "not JSON")
    dictionary_worker._send(request)
    with pytest.raises(DictionaryError, match="JSONDecodeError"):
        dictionary_worker._prepared(dictionary_worker._await(request))
    assert list(prepare_in_background({"ko.txt": KOREAN}, ["ko.txt"])().glosses) == ["ko.txt"]


def test_the_worker_runs_this_qa_not_the_current_folders(tmp_path, monkeypatch):
    (tmp_path / "qa").mkdir()
    (tmp_path / "qa" / "__init__.py").write_text("raise SystemExit('the wrong qa')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(dictionary_worker, "_WORKER", None)
    assert list(prepare_in_background({"ko.txt": KOREAN}, ["ko.txt"])().glosses) == ["ko.txt"]
