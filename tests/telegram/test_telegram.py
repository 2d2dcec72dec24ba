"""Every command through real python-telegram-bot, in a DM and in a group, against the fake Bot API."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from bot.commands import Reply, Speaker
from bot.telegram_adapter import TelegramOutbox, split_text
from tests.imports.exports import telegram_chat
from tests.telegram.conftest import TelegramRig, make_rig
from twinbot.settings import Settings


async def test_start_up_publishes_the_command_menu(rig: TelegramRig) -> None:
    assert rig.fake.calls_of("getMe")
    (menu,) = rig.fake.calls_of("setMyCommands")
    commands = {c["command"]: c["description"] for c in menu.params["commands"]}
    assert list(commands) == [s.name for s in rig.layer.specs] and all(commands.values())


@pytest.mark.parametrize("group", [False, True])
async def test_consent_status_help_in_dm_and_group(rig: TelegramRig, group: bool) -> None:
    mark = len(rig.fake.calls)
    rig.say("/consent@twinbot_test_bot learn", group=group)
    assert "learn: on" in await rig.reply_text(mark, "learn:")
    rig.say("/status", group=group)
    assert "messages: 0 of yours" in await rig.reply_text(mark, "About ana")
    rig.say("/help", group=group)
    assert "/twin [@user] <text>" in await rig.reply_text(mark, "/help")
    sent = rig.fake.calls_of("sendMessage")[-1]
    assert sent.params["chat_id"] == (-100 if group else 11)


async def test_no_capture_without_consent_then_capture_with_it(rig: TelegramRig) -> None:
    store = rig.layer.ctx.store
    rig.say("before consent, in the group", group=True)
    mark = len(rig.fake.calls)
    rig.say("/consent learn", group=True)
    await rig.reply_text(mark, "learn: on")
    rig.say("after consent, in the group", group=True)
    user = await store.users.lookup("telegram", "11")

    async def kept() -> list[str]:
        return [m.text for m in await store.messages.for_training(user.id)]

    for _ in range(100):
        if await kept():
            break
        await asyncio.sleep(0.1)
    assert await kept() == ["after consent, in the group"]


async def test_avatar_arrives_as_a_valid_png(rig: TelegramRig) -> None:
    rig.say("/avatar me style:pixel-art", group=True)
    photo = await rig.fake.wait_for(lambda: rig.fake.calls_of("sendPhoto"))
    picture = Image.open(io.BytesIO(photo[0].files["photo"]))
    assert picture.format == "PNG" and picture.size == (256, 256)
    rig.say("/avatar morph")
    animation = await rig.fake.wait_for(lambda: rig.fake.calls_of("sendAnimation"))
    assert Image.open(io.BytesIO(animation[0].files["animation"])).format == "GIF"


async def test_import_an_uploaded_export_via_getfile(rig: TelegramRig) -> None:
    export = json.dumps(telegram_chat([("user11", "ana", f"my line {i}") for i in range(5)] +
                                      [("user12", "bo", "hey")])).encode()
    rig.fake.add_file("doc1", export)
    mark = len(rig.fake.calls)
    rig.say("/consent learn")
    await rig.reply_text(mark, "learn: on")
    document = {"file_id": "doc1", "file_unique_id": "u1", "file_name": "result.json", "file_size": len(export),
                "mime_type": "application/json"}
    rig.say(document=document)
    assert "which participant you are" in await rig.reply_text(mark, "Participants")
    rig.say("/import as:user11")
    summary = await rig.reply_text(mark, "Imported")
    assert "5 of yours, 1 from others" in summary
    assert rig.fake.calls_of("getFile")


async def test_export_and_forget(rig: TelegramRig) -> None:
    mark = len(rig.fake.calls)
    rig.say("/consent learn")
    rig.say("something of mine")
    await rig.reply_text(mark, "learn: on")
    rig.say("/export")
    document = await rig.fake.wait_for(lambda: rig.fake.calls_of("sendDocument"))
    archive = zipfile.ZipFile(io.BytesIO(document[0].files["document"]))
    assert "README.txt" in archive.namelist()
    rig.say("/forget")
    await rig.reply_text(mark, "confirm:yes")
    rig.say("/forget confirm:yes")
    assert "Forgotten" in await rig.reply_text(mark, "Forgotten")
    assert await rig.layer.ctx.store.users.lookup("telegram", "11") is None


async def test_train_and_twin_answer_with_clear_messages(rig: TelegramRig) -> None:
    mark = len(rig.fake.calls)
    rig.say("/train", group=True)
    assert "/consent learn" in await rig.reply_text(mark, "consent")
    rig.say("/twin @ana hi", user_id=12, username="bo", group=True)
    assert "don't know a twin" in await rig.reply_text(mark, "twin called")


async def test_twin_replies_never_ping_and_long_text_is_split(rig: TelegramRig) -> None:
    outbox = TelegramOutbox(rig.adapter.app.bot, -100, None)
    mark = len(rig.fake.calls)
    await outbox.send(Reply("@everyone look, @ana said hi", speaker=Speaker(1, "Bo"), kind="twin"))
    await outbox.send(Reply("word " * 2000))
    sent = [c.params["text"] for c in rig.fake.calls[mark:] if c.method == "sendMessage"]
    assert "@everyone" not in sent[0] and "@\u200beveryone" in sent[0] and "Bo's twin" in sent[0]
    assert len(sent) == 4 and all(len(t) <= 4096 for t in sent[1:])
    assert split_text("a" * 5000) == ["a" * 4096, "a" * 904]


async def test_a_failing_handler_gets_an_error_reply_and_the_bot_stays_up(rig: TelegramRig) -> None:
    rig.fake.fail_methods.add("sendPhoto")
    mark = len(rig.fake.calls)
    rig.say("/avatar")
    assert "Something went wrong" in await rig.reply_text(mark, "went wrong")
    rig.fake.fail_methods.clear()
    rig.say("/help")
    await rig.reply_text(mark, "/help")


async def test_typing_is_shown_while_a_twin_generates(settings: Settings, tiny_model_dir: Path,
                                                      tiny_face_weights: Path) -> None:
    s = settings.model_copy(update={"base_model": str(tiny_model_dir), "model_dtype": "float32",
                                    "avatar_weights": tiny_face_weights, "max_new_tokens": 4,
                                    "inference_threads": 1})
    async for rig in make_rig(s):
        mark = len(rig.fake.calls)
        rig.say("/consent learn")
        await rig.reply_text(mark, "learn: on")
        rig.say("hello twin")  # a DM talks to your own twin
        await rig.fake.wait_for(lambda: rig.fake.calls_of("sendChatAction"))
        assert rig.fake.calls_of("sendChatAction")[0].params["action"] == "typing"
        text = await rig.reply_text(mark, "ana's twin")
        assert text.startswith("🪞 ana's twin:") or "ana's twin had nothing to say" in text
