"""Every command through real python-telegram-bot, in a private chat and in a group, against the fake Bot API."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from bot.commands import Reply, Speaker
from bot.telegram_outbox import TelegramOutbox, split_text
from tests.bot.telegram.conftest import TelegramRig, running_bot
from tests.chat_exports.exports import telegram_chat
from tests.fakes.telegram_server import Call, Chat
from twinbot.settings import Settings


async def edited_to(rig: TelegramRig, sent, needle: str) -> str:  # noqa: ANN001 - a fake Call
    """Wait until the bot has edited the message `sent` created into a text containing `needle`."""
    return await rig.fake.wait_for(lambda: needle in (text := sent.result.get("text", "")) and text)


async def kept_texts(rig: TelegramRig, user_id: int) -> list[str]:
    user = await rig.store.users.lookup("telegram", str(user_id))
    return [] if user is None else [m.text for m in await rig.store.messages.for_training(user.id)]


async def private_answer(rig: TelegramRig, chat: Chat, text: str, **kw) -> Call:  # noqa: ANN003
    """Ana says `text` in `chat`; her answer comes in her private chat, and only a pointer in a group."""
    mark = rig.fake.mark()
    rig.fake.send(rig.ana, chat, text, **kw)
    (answer,) = await rig.fake.replies(rig.ana.id, mark)
    if chat.type != "private":
        (pointer,) = await rig.fake.replies(chat, mark)
        assert pointer.text == "I sent you the answer in our private chat."
    return answer


@pytest.mark.parametrize("in_group", [False, True])
async def test_consent_status_help_in_a_private_chat_and_a_group(rig: TelegramRig, in_group: bool) -> None:
    chat = rig.group if in_group else rig.dm(rig.ana)
    await rig.say(rig.ana, rig.dm(rig.ana), "/start")  # a bot may write privately only once the user has started it
    consent = await private_answer(rig, chat, "/consent@twinbot_test_bot learn")
    assert "learn: on" in consent.text
    (helped,) = await rig.say(rig.ana, chat, "/help")
    assert "/twin [@user] <text>" in helped.text and helped.chat_id == chat.id
    # /status is about one person: in a group it goes to their private chat, with a pointer in the group
    status = await private_answer(rig, chat, "/status")
    assert "messages: 0 of yours" in status.text


async def test_private_commands_in_a_group_answer_in_private(rig: TelegramRig) -> None:
    """/consent, /import's progress, its participant list and its errors never reach the group."""
    dm = rig.dm(rig.ana)
    await rig.say(rig.ana, dm, "/start")
    mark = rig.fake.mark()
    assert "What I keep and why" in (await private_answer(rig, rig.group, "/consent")).text
    assert "learn: on" in (await private_answer(rig, rig.group, "/consent learn")).text
    missing = await private_answer(rig, rig.group, "/import")
    assert "Attach your export file" in missing.text
    export = json.dumps(telegram_chat([("user11", "ana", "my line"), ("user12", "bo", "hey")])).encode()
    refused = await private_answer(rig, rig.group, "/import as:user11", document=export)
    assert "I didn't read this one" in refused.text and "private chat" in refused.text
    assert not rig.fake.calls_of("getFile") and await kept_texts(rig, rig.ana.id) == []
    started = await private_answer(rig, dm, "", document=export)  # sent privately: read, as Ana's own
    assert "1 of yours, 1 from others" in await edited_to(rig, started, "Imported")
    assert "Attach your export file" in (await private_answer(rig, rig.group, "/import as:user12")).text
    shown_in_group = [c.text for c in rig.fake.messages_to(rig.group, mark)]
    assert set(shown_in_group) == {"I sent you the answer in our private chat."}
    edits = rig.fake.calls_of("editMessageText", mark)
    assert edits and all(int(c.params["chat_id"]) == rig.ana.id for c in edits)


async def test_commands_for_another_bot_are_left_alone_in_groups(rig: TelegramRig) -> None:
    mark = rig.fake.mark()
    rig.fake.send(rig.ana, rig.group, "/help@some_other_bot")
    (helped,) = await rig.say(rig.ana, rig.group, "/help")
    assert "/help" in helped.text
    assert len(rig.fake.messages_to(rig.group, mark)) == 1


async def test_no_capture_without_consent_then_capture_with_it(rig: TelegramRig) -> None:
    rig.fake.send(rig.ana, rig.group, "before consent, in the group")
    await rig.say(rig.ana, rig.group, "/consent learn")
    rig.fake.send(rig.ana, rig.group, "after consent, in the group")
    rig.fake.send(rig.bo, rig.group, "bo never agreed")
    await rig.say(rig.ana, rig.group, "/help")  # updates of one chat are handled in order
    assert await kept_texts(rig, rig.ana.id) == ["after consent, in the group"]
    assert await rig.store.users.lookup("telegram", str(rig.bo.id)) is None


async def test_avatar_arrives_as_a_valid_png_and_a_morph_as_a_gif(rig: TelegramRig) -> None:
    (photo,) = await rig.say(rig.ana, rig.group, "/avatar me style:pixel-art")
    assert photo.method == "sendPhoto"
    picture = Image.open(io.BytesIO(photo.files["photo"]))
    assert picture.format == "PNG" and picture.size == (256, 256)
    (morph,) = await rig.say(rig.ana, rig.dm(rig.ana), "/avatar morph")
    assert morph.method == "sendAnimation"
    assert Image.open(io.BytesIO(morph.files["animation"])).format == "GIF"


def a_picture(fmt: str) -> bytes:
    picture = Image.new("RGB", (400, 300), (30, 40, 60))
    picture.paste((230, 190, 160), (140, 60, 260, 240))
    buffer = io.BytesIO()
    picture.save(buffer, fmt)
    return buffer.getvalue()


async def test_a_photo_captioned_avatar_like_gets_the_face_found_in_it(settings: Settings, tiny_face_weights: Path,
                                                                       tiny_encoder_weights: Path) -> None:
    s = settings.model_copy(update={"avatar_weights": tiny_face_weights,
                                    "avatar_encoder_weights": tiny_encoder_weights})
    async with running_bot(s) as rig:
        dm = rig.dm(rig.ana)
        mark = rig.fake.mark()
        sent = rig.fake.send(rig.ana, dm, "/avatar like", photo=a_picture("JPEG"))
        (found,) = await rig.fake.replies(dm, mark)
        assert found.method == "sendPhoto" and "Keep it as your twin's face with /avatar keep pick:1" in found.text
        face = Image.open(io.BytesIO(found.files["photo"]))
        assert face.format == "PNG" and face.size == (256, 256)
        largest = sent["photo"][-1]["file_id"]
        assert [c.params["file_id"] for c in rig.fake.calls_of("getFile")] == [largest]
        (kept,) = await rig.say(rig.ana, dm, "/avatar keep pick:1")
        assert "Kept face 1" in kept.text and kept.files["photo"] == found.files["photo"]
        # Sent as a file in a group, with the command addressed to the bot by name: the same.
        (found,) = await rig.say(rig.ana, rig.group, "/avatar@twinbot_test_bot like", document=a_picture("PNG"),
                                 filename="me.png")
        assert found.method == "sendPhoto" and "keep pick:1" in found.text
        (refused,) = await rig.say(rig.ana, dm, "/avatar like", document=b"%PDF-1.4", filename="me.pdf")
        assert refused.text == "that file is not a picture I can read (PNG, JPEG, WebP or GIF)"


async def test_import_of_an_uploaded_export_via_getfile(rig: TelegramRig) -> None:
    dm = rig.dm(rig.ana)
    export = json.dumps(telegram_chat([("user11", "ana", f"my line {i}") for i in range(5)] +
                                      [("user12", "bo", "hey")])).encode()
    await rig.say(rig.ana, dm, "/consent learn")
    (started,) = await rig.say(rig.ana, dm, document=export)  # Ana's account says which participant she is
    assert "5 of yours, 1 from others" in await edited_to(rig, started, "Imported")
    assert rig.fake.calls_of("getFile")
    assert await kept_texts(rig, rig.ana.id) == [f"my line {i}" for i in range(5)] + ["hey"]  # bo's as context
    (again,) = await rig.say(rig.ana, dm, document=export, text="/import as:user11")
    assert "0 of yours" in await edited_to(rig, again, "Imported")
    assert len(await kept_texts(rig, rig.ana.id)) == 6


async def test_import_as_another_participant_is_refused(rig: TelegramRig) -> None:
    dm = rig.dm(rig.bo)
    group_export = json.dumps(telegram_chat([("user11", "ana", f"ana's line {i}") for i in range(5)] +
                                            [("user12", "bo", "bo's line")], chat_type="private_group")).encode()
    await rig.say(rig.bo, dm, "/consent learn")
    (refused,) = await rig.say(rig.bo, dm, document=group_export, text="/import as:user11")
    text = await edited_to(rig, refused, "only your own")
    assert "You are bo (user12) in that export, not 'user11'" in text
    ana_only = json.dumps(telegram_chat([("user11", "ana", f"ana's line {i}") for i in range(5)])).encode()
    (refused,) = await rig.say(rig.bo, dm, document=ana_only)
    assert "Your account (user12) wrote nothing in that export" in await edited_to(rig, refused, "only your own")
    assert await kept_texts(rig, rig.bo.id) == []


async def test_a_document_over_the_download_limit_gets_a_friendly_refusal(rig: TelegramRig) -> None:
    (refused,) = await rig.say(rig.ana, rig.dm(rig.ana), document=b"{}", file_size=25_000_000)
    assert "20 MB" in refused.text and "twinbot import" in refused.text
    assert not rig.fake.calls_of("getFile")


async def test_export_and_forget_from_a_group_go_to_the_private_chat(rig: TelegramRig) -> None:
    dm = rig.dm(rig.ana)
    await rig.say(rig.ana, dm, "/start")
    await rig.say(rig.ana, rig.group, "/consent learn")
    rig.fake.send(rig.ana, rig.group, "something of mine")
    mark = rig.fake.mark()
    rig.fake.send(rig.ana, rig.group, "/export")
    (document,) = await rig.fake.replies(dm, mark)
    assert document.method == "sendDocument"
    archive = zipfile.ZipFile(io.BytesIO(document.files["document"]))
    assert "README.txt" in archive.namelist()
    assert all(c.method == "sendMessage" for c in rig.fake.messages_to(rig.group, mark))
    (asked,) = await rig.say(rig.ana, dm, "/forget")
    assert "confirm:yes" in asked.text
    (done,) = await rig.say(rig.ana, dm, "/forget confirm:yes")
    assert "Forgotten" in done.text
    assert await rig.store.users.lookup("telegram", str(rig.ana.id)) is None


async def test_private_answers_ask_for_a_private_chat_first(rig: TelegramRig) -> None:
    stranger = type(rig.bo)(77, "Cy", "cy")  # never opened a private chat with the bot
    await rig.say(stranger, rig.group, "/consent learn")
    (answer,) = await rig.say(stranger, rig.group, "/status")
    assert "press Start" in answer.text and answer.chat_id == rig.group.id


async def test_train_and_twin_answer_with_clear_messages(rig: TelegramRig) -> None:
    (train,) = await rig.say(rig.ana, rig.group, "/train")
    assert "/consent learn" in train.text
    (unknown,) = await rig.say(rig.bo, rig.group, "/twin @nobody_here hi")
    assert "don't know a twin" in unknown.text


async def test_a_twin_is_named_by_id_and_a_taken_name_is_refused(rig: TelegramRig) -> None:
    """Mallory, with no username, names herself "ana" before Ana arrives: `/twin @ana` must not reach her."""
    mallory = type(rig.ana)(13, "ana")
    for user, scopes in ((mallory, ("learn", "share")), (rig.ana, ("learn",))):
        for scope in scopes:
            await rig.say(user, rig.dm(user), f"/consent {scope}")
    (refused,) = await rig.say(rig.bo, rig.group, "/twin @ana hi")
    assert refused.text == "2 people are called ana here; mention the one you mean so I know whose twin."
    (by_id,) = await rig.say(rig.bo, rig.group, "/twin ana hi", text_mentions=((mallory, "ana"),))
    assert "Talking to twins (the language model) is not available" in by_id.text  # Mallory's, shared
    (unshared,) = await rig.say(rig.bo, rig.group, "/twin @11 hi")
    assert "ana hasn't shared their twin" in unshared.text  # Ana's, by her id


async def test_twin_replies_never_ping_and_long_text_is_split(rig: TelegramRig) -> None:
    outbox = TelegramOutbox(rig.adapter.app.bot, rig.group.id)
    mark = rig.fake.mark()
    await outbox.send(Reply("@everyone look, @ana said hi", speaker=Speaker(1, "Bo"), kind="twin"))
    await outbox.send(Reply("word " * 2000))
    sent = rig.fake.messages_to(rig.group, mark)
    assert "@everyone" not in sent[0].text and "@\u2060everyone" in sent[0].text and "Bo's twin" in sent[0].text
    assert sent[0].params.get("disable_notification") in (True, "true", "True")
    assert len(sent) == 4 and all(len(c.text) <= 4096 for c in sent[1:])
    assert split_text("a" * 5000) == ["a" * 4096, "a" * 904]


async def test_a_failing_handler_gets_an_error_reply_and_the_bot_stays_up(rig: TelegramRig) -> None:
    rig.fake.fail("sendPhoto")
    (failed,) = await rig.say(rig.ana, rig.dm(rig.ana), "/avatar")
    assert "Something went wrong" in failed.text
    rig.fake.heal()
    (helped,) = await rig.say(rig.ana, rig.dm(rig.ana), "/help")
    assert "/help" in helped.text


async def test_talking_to_twins_shows_typing_and_replies_continue_a_twin(settings: Settings, tiny_model_dir: Path,
                                                                         tiny_face_weights: Path) -> None:
    s = settings.model_copy(update={"base_model": str(tiny_model_dir), "model_dtype": "float32",
                                    "avatar_weights": tiny_face_weights, "max_new_tokens": 4,
                                    "inference_threads": 1})
    async with running_bot(s, with_model=True) as rig:
        dm = rig.dm(rig.ana)
        await rig.say(rig.ana, dm, "/consent learn")
        await rig.say(rig.ana, dm, "/consent share")
        mark = rig.fake.mark()
        (own,) = await rig.say(rig.ana, dm, "hello twin")  # in a private chat, plain text talks to your own twin
        assert "Ana's twin" in own.text or "ana's twin" in own.text.lower()
        typing = rig.fake.calls_of("sendChatAction", mark)
        assert typing and typing[0].params["action"] == "typing"

        (first,) = await rig.say(rig.bo, rig.group, "/twin @ana how are you?")
        assert "ana's twin" in first.text.lower()
        (again,) = await rig.say(rig.bo, rig.group, "and then?", reply_to=first.result)
        assert "ana's twin" in again.text.lower()
        mark = rig.fake.mark()
        rig.fake.send(rig.bo, rig.group, "nothing for twins here")
        await rig.say(rig.bo, rig.group, "/help")
        assert len(rig.fake.messages_to(rig.group, mark)) == 1
