"""Training examples: which of a user's lines a twin learns from, and with what context."""

from __future__ import annotations

from persona.examples import build_examples, usable
from persona_store import StoredMessage


def msg(i: int, text: str, own: bool, chat: str = "c", ts: float | None = None) -> StoredMessage:
    return StoredMessage(i, 1, "telegram", chat, str(i), "Ana" if own else "Bo", own, ts if ts is not None else float(i),
                         text, "import", None, False)


def test_examples_pair_each_own_line_with_the_preceding_chat() -> None:
    messages = [msg(1, "hey", False), msg(2, "hi Bo", True), msg(3, "how are u", False), msg(4, "good!", True),
                msg(5, "other chat line", True, chat="d")]
    examples = build_examples(messages)
    assert [e.target for e in examples] == ["hi Bo", "good!", "other chat line"]
    assert [t.text for t in examples[1].context] == ["hey", "hi Bo", "how are u"]
    assert examples[1].context[1].is_owner and examples[2].context == ()


def test_examples_drop_empties_links_attachments_and_duplicates() -> None:
    messages = [msg(1, "  ", True), msg(2, "https://example.org/x", True), msg(3, "[photo]", True),
                msg(4, "ok", True), msg(5, "ok", True), msg(6, "see https://example.org it's great", True)]
    assert [e.target for e in build_examples(messages)] == ["ok", "see https://example.org it's great"]
    assert not usable("<https://a.b/c> https://d.e") and usable("lol")


def test_a_long_silence_starts_a_new_conversation() -> None:
    messages = [msg(1, "yesterday's topic", False, ts=0), msg(2, "answer", True, ts=100_000)]
    assert build_examples(messages)[0].context == ()


def test_each_example_knows_how_far_back_the_previous_ones_line_is() -> None:
    messages = [msg(1, "hey", False), msg(2, "hi Bo", True), msg(3, "how are u", False), msg(4, "hi Bo", True),
                msg(5, "and you?", False), msg(6, "good!", True), *(msg(7 + i, f"filler {i}", False) for i in range(4)),
                msg(11, "back", True), msg(12, "new chat", True, chat="d")]
    examples = build_examples(messages)
    assert [e.target for e in examples] == ["hi Bo", "good!", "back", "new chat"]
    # "hi Bo" again is no example of its own, but it is a turn after the first one
    assert [e.turns_since_previous for e in examples] == [None, 3, None, None]
    assert [t.text for t in examples[1].context[-3:]] == ["how are u", "hi Bo", "and you?"]
