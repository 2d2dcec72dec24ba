"""Prompt building and training examples: what a twin sees, and what it learns from."""

from __future__ import annotations

from persona.examples import build_examples, usable
from persona.prompt import Turn, build_prompt_ids, build_training_ids, system_prompt
from persona_store import StoredMessage


def msg(i: int, text: str, own: bool, chat: str = "c", ts: float | None = None) -> StoredMessage:
    return StoredMessage(i, 1, "telegram", chat, str(i), "Ana" if own else "Bo", own, ts if ts is not None else float(i),
                         text, "import", None, False)


def test_prompt_has_our_persona_and_never_smollms_default(tokenizer) -> None:  # noqa: ANN001
    ids = build_prompt_ids(tokenizer, "Ana", [Turn("Bo", "hi!", False)], ["I love tea"], 200)
    text = tokenizer.decode(ids)
    assert "You are Ana" in text and "I love tea" in text and "Bo: hi!" in text
    assert "SmolLM" not in text and "helpful AI assistant" not in text
    assert text.endswith("<|im_start|>assistant\n")


def test_loss_falls_only_on_the_owners_words(tokenizer) -> None:  # noqa: ANN001
    ids, labels = build_training_ids(tokenizer, "Ana", [Turn("Bo", "coffee?", False)], "yes pls", [], 200)
    learned = tokenizer.decode([t for t, l in zip(ids, labels) if l != -100])
    assert learned == "yes pls<|im_end|>" and len(ids) == len(labels)


def test_context_is_trimmed_oldest_first_to_fit(tokenizer) -> None:  # noqa: ANN001
    context = [Turn("Bo", f"message number {i} " * 5, False) for i in range(40)]
    ids = build_prompt_ids(tokenizer, "Ana", context, [], 120)
    text = tokenizer.decode(ids)
    assert len(ids) <= 120 and "message number 39" in text and "message number 0 " not in text
    ids, labels = build_training_ids(tokenizer, "Ana", context, "ok", [], 120)
    assert len(ids) <= 120 and labels[-1] != -100


def test_system_prompt_without_a_name_still_reads() -> None:
    assert system_prompt("", []).startswith("You are the speaker")


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
