"""Conversations on the seed corpus: follow-ups find their topic, with and without an LLM."""

from __future__ import annotations

from qa.bot import Bot

from conftest import FakeLLM, Scripted

KOREAN = "002_7257b5aa37c3b2f3.txt"


def letter_of_intent(answer) -> bool:
    """The Korean article's signing of the letter of intent (협력의향서) is among the passages read for the answer."""
    return any(p.source == KOREAN and "협력의향서" in p.text for p in answer.passages[:3])


def test_a_follow_up_retrieves_the_letter_of_intent_again(bot: Bot) -> None:
    conversation = bot.conversation()
    first = conversation.ask("What did NIST sign with Korea?")
    follow_up = conversation.ask("Where was it signed?")
    assert letter_of_intent(first) and letter_of_intent(follow_up)
    assert follow_up.searched and "NIST" in follow_up.searched
    assert [t.question for t in conversation.turns] == ["What did NIST sign with Korea?", "Where was it signed?"]


def test_reset_forgets_the_topic(bot: Bot) -> None:
    conversation = bot.conversation()
    conversation.ask("What did NIST sign with Korea?")
    conversation.reset()
    assert conversation.turns == []
    assert conversation.ask("Where was it signed?").searched is None


def test_questions_as_history_are_replayed_like_a_conversation(bot: Bot) -> None:
    conversation = bot.conversation()
    conversation.ask("What did NIST sign with Korea?")
    live = conversation.ask("Where was it signed?")
    replayed = bot.ask("Where was it signed?", history=["What did NIST sign with Korea?"])
    assert replayed == live


def test_with_an_llm_follow_ups_are_condensed_and_answers_cite(make_bot, fake_llm: FakeLLM) -> None:
    def model(request: dict) -> Scripted:
        if "Last question:" in request["messages"][-1]["content"]:
            return Scripted("Where did KIAT and NIST sign their letter of intent?")
        return Scripted("They signed it at the Department of Commerce in Washington DC [1].")

    fake_llm.reply = model
    conversation = make_bot(llm_base_url=fake_llm.url, llm_model="m").conversation()
    conversation.ask("What did NIST sign with Korea?")
    answer = conversation.ask("Where was it signed?")
    assert answer.searched == "Where did KIAT and NIST sign their letter of intent?"
    assert answer.mode == "llm" and answer.citations and answer.citations[0].source in {p.source for p in answer.passages}
    assert len(fake_llm.requests) == 3  # answer, condense, answer


def test_a_failing_llm_still_answers_the_follow_up(make_bot, fake_llm: FakeLLM) -> None:
    fake_llm.reply = lambda request: Scripted("overloaded", status=503)
    conversation = make_bot(llm_base_url=fake_llm.url, llm_model="m").conversation()
    conversation.ask("What did NIST sign with Korea?")
    answer = conversation.ask("Where was it signed?")
    assert answer.mode == "extractive" and not answer.abstained
    assert "NIST" in answer.searched
    assert len(answer.warnings) == 2 and all("HTTP 503" in w for w in answer.warnings)
