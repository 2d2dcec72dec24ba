"""The twin service on a tiny real model: the prompt it builds from the owner's lines, reply cleaning."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from persona.serving.service import (
    BURST_GAP_S, ReplyLength, ReplyRequest, TwinError, TwinService, acceptable, burst, burst_rate, clean_reply, echoes,
    reply_length, streamed, stutters,
)
from persona.serving.decoding import Sampling
from persona_store import NewMessage, Store
from twinbot.settings import Settings


def test_clean_reply_drops_an_echoed_name_and_extra_paragraphs() -> None:
    assert clean_reply("  Ana: hi there\n\nAs an AI...", "Ana") == "hi there"
    assert clean_reply("", "Ana") == ""


def test_a_reply_is_one_message_of_the_owner_never_a_script_of_others() -> None:
    assert clean_reply("lol what?\nPam: She's right", "Jim") == "lol what?"
    assert clean_reply("\n  nah\nmaybe later", "Jim") == "nah"
    assert clean_reply("Pam: lol what?\nMike: POMMY.", "Jim") == ""  # another speaker's line
    assert clean_reply("Note to self: buy milk", "Jim") == "Note to self: buy milk"


def test_acceptable_replies_are_not_assistant_talk_nor_a_recalled_line() -> None:
    recalled = ["Bears. Beets. Battlestar Galactica."]
    assert acceptable("haha no way", recalled)
    assert not acceptable("", recalled)
    assert not acceptable("bears.  beets. battlestar galactica.", recalled)
    assert not acceptable("I'm sorry, but I am unable to assist with that.", recalled)
    assert not acceptable("As an AI, I don't have weekends", recalled)
    assert not acceptable("sabotage.", recalled, ["Sabotage.", "who did this?"])  # a line of the chat echoed
    assert acceptable("sabotage? by who", recalled, ["Sabotage."])


def test_a_reply_saying_three_words_of_the_chat_back_is_an_echo() -> None:
    chat = ["Where would you go, if you could go anywhere?", "it\u2019s getting late and my brain is mush"]
    assert echoes("Hmm where would you go?", chat)  # the question asked back
    assert echoes("It's getting late for me too", chat)  # curly and straight apostrophes alike
    assert not echoes("Paris, for the food", chat)
    assert not echoes("would you", chat)  # two words are not a run
    assert not echoes("late brain mush", chat)  # the words, not in a row
    assert not acceptable("Where would you go though", [], chat)
    assert acceptable("Paris, for the food", [], chat)


def test_one_word_said_four_times_running_is_a_stutter_not_a_reply() -> None:
    assert stutters("OK. OK... ok. OK!")  # case and punctuation aside
    assert stutters("well no no no no")
    assert not stutters("No, no, no. Not today")  # three times is a person's own
    assert not stutters("ok okay ok okay")  # different words
    assert not stutters("no one said no, no, and no")
    assert not stutters("")
    assert not acceptable("Hey, hey! Hey! Hey!", [])
    assert acceptable("Hey, hey! Hey!", [])


async def test_service_prompt_uses_the_owners_own_similar_lines_but_not_dm_ones_in_groups(
    settings: Settings, tiny_model_dir: Path
) -> None:
    s = settings.model_copy(update={"base_model": str(tiny_model_dir), "model_dtype": "float32"})
    async with Store.open_context(s) as store:
        ana = await store.users.get_or_create("telegram", "1", "Ana")
        await store.messages.add_many([
            NewMessage(ana.id, "telegram", "g", "1", "Ana", True, 1.0, "pineapple pizza is the best", "live"),
            NewMessage(ana.id, "telegram", "dm", "2", "Ana", True, 2.0, "secret pineapple plans", "live", is_dm=True),
            NewMessage(ana.id, "telegram", "g", "3", "Bo", False, 3.0, "pineapple is gross", "import"),
        ])
        service = TwinService(s, store)
        await service.start()
        try:
            tok = service.worker.tokenizer
            group = ReplyRequest(ana, "Bo", "what about pineapple?", [], "telegram", "g", is_dm=False)
            text = tok.decode(await service.prompt_ids(group))
            assert "pineapple pizza is the best" in text and "secret pineapple" not in text
            assert "pineapple is gross" not in text  # other people's lines are never the owner's voice
            dm = ReplyRequest(ana, "Ana", "pineapple?", [], "telegram", "dm", is_dm=True, asker_is_owner=True)
            assert "secret pineapple plans" in tok.decode(await service.prompt_ids(dm))
            # Someone else, in their own private chat with the bot, never gets the owner's private lines.
            snoop = ReplyRequest(ana, "Eve", "pineapple?", [], "telegram", "eve-dm", is_dm=True, asker_is_owner=False)
            snooped = tok.decode(await service.prompt_ids(snoop))
            assert "secret pineapple" not in snooped and "pineapple pizza is the best" in snooped
            try:
                (reply,) = await service.reply(group)  # no adapter, so no burst: one message
                assert reply.strip() == reply and reply
            except TwinError as exc:  # a random toy model may only emit end-of-turn: said plainly
                assert "Ana's twin" in str(exc)
        finally:
            await service.close()


def test_a_reply_is_as_long_as_its_owner_writes() -> None:
    terse = reply_length([3, 4, 4, 5, 5, 5, 6, 6, 7, 30], 60)
    assert terse == ReplyLength(soft=7, cap=49)  # 1.2 x median 5 + 1; 1.5 x p90 30 + 4
    chatty = reply_length([20] * 50, 60)
    assert chatty.soft == 25 and chatty.cap == 34
    assert reply_length([80] * 50, 60) == ReplyLength(60, 60)  # never past MAX_NEW_TOKENS
    assert reply_length([4, 5], 60) == ReplyLength(12, 60)  # too few lines to tell: a short chat line


def test_a_burst_keeps_its_messages_up_to_the_first_not_worth_sending() -> None:
    chat = ["Bo: where would you go?"]
    assert burst(["Ana: Paris", "for the food", "and the wine"], "Ana", [], chat) == ["Paris", "for the food",
                                                                                      "and the wine"]
    assert burst(["Paris", "Paris", "for the food"], "Ana", [], chat) == ["Paris"]  # a repeat ends it
    assert burst(["Paris", "where would you go", "ok"], "Ana", [], chat) == ["Paris"]  # so does an echo
    assert burst(["Paris", "As an AI, I cannot travel"], "Ana", [], chat) == ["Paris"]
    assert burst(["Paris", "Bo: nice"], "Ana", [], chat) == ["Paris"]  # another speaker's line
    assert burst(["Paris", "pizza is life"], "Ana", ["pizza is life"], chat) == ["Paris"]  # a recalled line
    assert burst(["", "hi"], "Ana", [], chat)[0] == ""  # an empty first message is the caller's to redraw


def test_an_owner_bursts_as_often_as_their_lines_are_followed_by_their_own_soon_after() -> None:
    followed = [(True, 4.0)] * 3 + [(True, BURST_GAP_S + 1)] + [(False, 2.0)] * 6
    assert burst_rate(followed) == 0.3  # a line of theirs an hour later starts something new
    assert burst_rate([(True, 1.0)] * 9) == 0.0  # too few lines to tell: one message at a time


async def test_a_streamed_draw_yields_each_message_before_the_draw_ends() -> None:
    release = asyncio.Event()

    async def draw(sampling: Sampling, on_message) -> list[str]:  # noqa: ANN001 - the worker's generate
        on_message("first")
        await release.wait()  # the model is still writing the burst's next message
        on_message("second")
        return ["first", "second"]

    stream = streamed(draw)
    assert await asyncio.wait_for(anext(stream), 5) == "first"
    release.set()
    assert [message async for message in stream] == ["second"]


async def test_a_streamed_draw_ends_with_the_workers_error() -> None:
    async def draw(sampling: Sampling, on_message) -> list[str]:  # noqa: ANN001
        on_message("said")
        raise RuntimeError("the model broke")

    got = []
    with pytest.raises(RuntimeError, match="the model broke"):
        async for message in streamed(draw):
            got.append(message)
    assert got == ["said"]


async def test_a_twin_of_few_lines_is_served_stronger_than_one_of_many(settings: Settings, tmp_path: Path) -> None:
    s = settings.model_copy(update={"adapter_strength": 1.5, "adapter_strength_few_lines": 2.0})
    async with Store.open_context(s) as store:
        service = TwinService(s, store)  # not started: which adapter to serve needs no model
        strengths = []
        for lines in (120, 1000, 4000):
            owner = await store.users.get_or_create("telegram", str(lines), f"Owner {lines}")
            (tmp_path / str(lines)).mkdir()
            (tmp_path / str(lines) / "adapter_config.json").write_text("{}")
            await store.adapters.record(owner.id, str(tmp_path / str(lines)), None, "base", lines, {})
            ref = await service.adapter_for(owner)
            assert ref is not None and ref.path == str(tmp_path / str(lines))
            strengths.append(ref.strength)
    assert strengths[0] == 2.0 and 1.5 < strengths[1] < 2.0 and strengths[2] == 1.5
