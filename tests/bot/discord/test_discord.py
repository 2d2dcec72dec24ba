"""Real discord.py end to end against the fake gateway: sync, every slash command, chat, mentions, capture."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from bot.commands import Reply, Speaker
from bot.discord_adapter import ChannelOutbox
from tests.bot.discord.conftest import ANA, BO, DiscordRig, make_rig
from tests.fakes.discord_server import APP_ID, BOT_USER, CHANNEL_ID, GUILD_ID
from tests.chat_exports.exports import chat_exporter
from twinbot.settings import Settings


def pings_nobody(payload: dict) -> bool:
    """allowed_mentions parses nothing and lists nobody: @everyone, roles and users stay text."""
    mentions = payload.get("allowed_mentions") or {}
    return mentions.get("parse") == [] and not mentions.get("users") and not mentions.get("roles")


async def test_login_ready_and_global_command_sync(rig: DiscordRig) -> None:
    (sync,) = rig.fake.of("PUT", f"/applications/{APP_ID}/commands")
    commands = {c["name"]: c for c in sync.json}
    assert list(commands) == [s.name for s in rig.layer.specs]
    assert all(c["description"] for c in commands.values())
    avatar = {o["name"]: o for o in commands["avatar"]["options"]}
    assert [c["value"] for c in avatar["style"]["choices"]] == ["lorelei", "pixel-art"]
    assert avatar["pick"]["type"] == 4 and avatar["picture"]["type"] == 11
    twin = commands["twin"]["options"]
    assert [(o["name"], o["type"], o.get("required", False)) for o in twin] == [("text", 3, True), ("user", 6, False)]
    assert {o["name"]: o["type"] for o in commands["import"]["options"]} == {"file": 11, "as": 3}


async def test_guild_sync_when_guild_ids_are_set(settings: Settings, tiny_face_weights: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings.model_copy(update={"avatar_weights": tiny_face_weights, "discord_guild_ids": [int(GUILD_ID)]})
    async for rig in make_rig(s, monkeypatch, with_model=False, with_avatars=True):
        assert rig.fake.of("PUT", f"/applications/{APP_ID}/guilds/{GUILD_ID}/commands")
        assert not rig.fake.of("PUT", f"/applications/{APP_ID}/commands")


async def test_slash_commands_defer_then_follow_up(rig: DiscordRig) -> None:
    reply = await rig.command("consent", scope="learn", needle="learn: on")
    callbacks = rig.fake.of("POST", "/callback")
    assert callbacks[-1].json["type"] == 5 and callbacks[-1].json["data"]["flags"] & 64  # private: ephemeral
    assert reply.ephemeral and pings_nobody(reply.json)
    await rig.command("status", needle="messages: 0 of yours")
    helped = await rig.command("help", needle="/twin [@user] <text>")
    assert helped.ephemeral is False
    await rig.command("train", needle="I need at least 50")
    await rig.command("twin", text="hello", needle="not available")
    await rig.command("export", needle="Everything I keep")
    export = rig.fake.of("POST", "/webhooks/")[-1]
    assert "README.txt" in zipfile.ZipFile(io.BytesIO(next(iter(export.files.values())))).namelist()
    await rig.command("forget", needle="confirm:yes")
    await rig.command("forget", confirm=True, needle="Forgotten")
    public = rig.fake.of("POST", "/callback")[-5]  # help: everyone sees it
    assert public.json["type"] == 5 and not (public.json.get("data") or {}).get("flags", 0) & 64


@pytest.mark.parametrize(("command", "options", "needle"), [
    ("twin", {"text": "hello"}, "You don't have a twin yet"),
    ("train", {}, "I don't know you yet"),
    ("avatar", {"mode": "keep"}, "Which one?"),
])
async def test_errors_of_public_commands_are_shown_to_the_caller_alone(rig: DiscordRig, command: str,
                                                                       options: dict, needle: str) -> None:
    """The first follow-up would take the public "thinking…" message's place: it is deleted first."""
    reply = await rig.command(command, needle=needle, **options)
    deferral = rig.fake.of("POST", "/callback")[-1]
    assert not (deferral.json.get("data") or {}).get("flags", 0) & 64  # a public command
    assert reply.ephemeral
    assert rig.fake.of("DELETE", "/messages/@original")


async def test_avatar_upload_is_a_valid_png(rig: DiscordRig) -> None:
    reply = await rig.command("avatar", mode="me", needle="Your twin's face")
    (data,) = reply.files.values()
    picture = Image.open(io.BytesIO(data))
    assert picture.format == "PNG" and picture.size == (256, 256)
    reply = await rig.command("avatar", mode="morph", needle="Morphing")
    assert Image.open(io.BytesIO(next(iter(reply.files.values())))).format == "GIF"


async def test_avatar_like_takes_a_picture_attachment(settings: Settings, tiny_face_weights: Path,
                                                      tiny_encoder_weights: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings.model_copy(update={"avatar_weights": tiny_face_weights,
                                    "avatar_encoder_weights": tiny_encoder_weights})
    buffer = io.BytesIO()
    Image.new("RGB", (96, 96), (220, 180, 150)).save(buffer, "WEBP")
    async for rig in make_rig(s, monkeypatch, with_model=False, with_avatars=True):
        rig.fake.attachments["57"] = buffer.getvalue()
        attachment = {"id": "57", "filename": "me.webp", "size": len(buffer.getvalue()), "content_type": "image/webp",
                      "url": f"http://127.0.0.1:{rig.fake.port}/attachments/57",
                      "proxy_url": f"http://127.0.0.1:{rig.fake.port}/attachments/57"}
        token = await rig.fake.interact("avatar", ANA, [{"name": "mode", "type": 3, "value": "like"},
                                                        {"name": "picture", "type": 11, "value": "57"}],
                                        resolved={"attachments": {"57": attachment}})
        reply = await rig.followup(token, "The face I found in your picture")
        (data,) = reply.files.values()
        assert Image.open(io.BytesIO(data)).size == (256, 256)


async def test_import_takes_an_attachment(rig: DiscordRig) -> None:
    await rig.command("consent", scope="learn", needle="learn: on")
    export = json.dumps(chat_exporter([("111", "ana", "mine"), ("222", "bo", "theirs")])).encode()
    rig.fake.attachments["55"] = export
    attachment = {"id": "55", "filename": "dce.json", "size": len(export), "content_type": "application/json",
                  "url": f"http://127.0.0.1:{rig.fake.port}/attachments/55",
                  "proxy_url": f"http://127.0.0.1:{rig.fake.port}/attachments/55"}
    token = await rig.fake.interact("import", ANA, [{"name": "file", "type": 11, "value": "55"},
                                                    {"name": "as", "type": 3, "value": "111"}],
                                    resolved={"attachments": {"55": attachment}})
    reply = await rig.followup(token, "Importing")
    edits = await rig.fake.wait_for(lambda: [r for r in rig.fake.of("PATCH", "/webhooks/")
                                             if "Imported" in (r.json or {}).get("content", "")])
    assert "1 of yours, 1 from others" in edits[0].json["content"] and reply.ephemeral


async def test_import_as_another_participant_is_refused(rig: DiscordRig) -> None:
    await rig.command("consent", who=BO, scope="learn", needle="learn: on")
    export = json.dumps(chat_exporter([("111", "ana", "mine"), ("222", "bo", "theirs")])).encode()
    rig.fake.attachments["56"] = export
    attachment = {"id": "56", "filename": "dce.json", "size": len(export), "content_type": "application/json",
                  "url": f"http://127.0.0.1:{rig.fake.port}/attachments/56",
                  "proxy_url": f"http://127.0.0.1:{rig.fake.port}/attachments/56"}
    await rig.fake.interact("import", BO, [{"name": "file", "type": 11, "value": "56"},
                                           {"name": "as", "type": 3, "value": "ana"}],
                            resolved={"attachments": {"56": attachment}})
    (edit,) = await rig.fake.wait_for(lambda: [r for r in rig.fake.of("PATCH", "/webhooks/")
                                               if "only your own" in (r.json or {}).get("content", "")])
    assert "You are bo (222) in that export, not 'ana'" in edit.json["content"]
    bo = await rig.layer.ctx.store.users.lookup("discord", "222")
    assert await rig.layer.ctx.store.messages.counts(bo.id) == (0, 0)


async def test_twin_messages_never_ping_anyone(rig: DiscordRig) -> None:
    channel = rig.adapter.client.get_channel(int(CHANNEL_ID))
    outbox = ChannelOutbox(channel, None)
    await outbox.send(Reply("@everyone look <@123> <@&456>", speaker=Speaker(1, "Ana", b"\x89PNG fake"), kind="twin"))
    (sent,) = rig.fake.of("POST", f"/channels/{CHANNEL_ID}/messages")
    embed = sent.json["embeds"][0]
    assert pings_nobody(sent.json)
    assert embed["author"]["name"] == "Ana's twin" and embed["author"]["icon_url"] == "attachment://face.png"
    assert "@everyone" in embed["description"] and "face.png" in sent.files
    messages = [r for r in rig.fake.requests if r.method in ("POST", "PATCH") and r.json and "content" in r.json]
    assert messages and all(pings_nobody(r.json) for r in messages)


async def test_long_text_is_split_at_2000(rig: DiscordRig) -> None:
    channel = rig.adapter.client.get_channel(int(CHANNEL_ID))
    await ChannelOutbox(channel, None).send(Reply("word " * 1000))
    sent = rig.fake.of("POST", f"/channels/{CHANNEL_ID}/messages")
    assert len(sent) == 3 and all(len(r.json["content"]) <= 2000 for r in sent)


async def test_only_the_first_message_of_a_burst_quotes_the_message_that_asked(rig: DiscordRig) -> None:
    channel = rig.adapter.client.get_channel(int(CHANNEL_ID))
    outbox = ChannelOutbox(channel, channel.get_partial_message(987))
    for text in ("wait", "what?"):
        await outbox.send(Reply(text, speaker=Speaker(1, "Ana"), kind="twin"))
    first, second = rig.fake.of("POST", f"/channels/{CHANNEL_ID}/messages")
    assert str(first.json["message_reference"]["message_id"]) == "987"
    assert "message_reference" not in second.json and pings_nobody(second.json)


@pytest.mark.parametrize("operator_allows", [False, True])
async def test_capture_needs_consent_and_the_operator_setting(settings: Settings, tiny_face_weights: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              operator_allows: bool) -> None:
    s = settings.model_copy(update={"avatar_weights": tiny_face_weights,
                                    "discord_capture_messages": operator_allows})
    async for rig in make_rig(s, monkeypatch, with_model=False):
        assert rig.adapter.client.intents.message_content is operator_allows
        await rig.fake.post_message(ANA, "said before consent")
        await rig.command("consent", scope="learn", needle="learn: on")
        await rig.fake.post_message(ANA, "said after consent")
        await rig.fake.post_message(BO, "bo never consented")
        ana = await rig.layer.ctx.store.users.lookup("discord", ANA["id"])
        for _ in range(20):  # handlers run as tasks: give capture a moment to commit
            if (await rig.layer.ctx.store.messages.counts(ana.id))[0]:
                break
            await asyncio.sleep(0.1)
        reply = await rig.command("status", needle="messages:")
        expected = 1 if operator_allows else 0
        assert f"messages: {expected} of yours" in reply.json["content"]
        bo = await rig.layer.ctx.store.users.lookup("discord", BO["id"])
        assert bo is None


async def test_a_failing_interaction_gets_an_error_reply(rig: DiscordRig) -> None:
    rig.fake.fail_files = True
    token = await rig.fake.interact("avatar", ANA, [])
    reply = await rig.followup(token, "Something went wrong")
    assert reply.ephemeral
    rig.fake.fail_files = False
    await rig.command("help", needle="/help")


async def test_mention_and_reply_talk_to_twins(settings: Settings, tiny_face_weights: Path, tiny_model_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings.model_copy(update={"avatar_weights": tiny_face_weights, "base_model": str(tiny_model_dir),
                                    "model_dtype": "float32", "max_new_tokens": 4, "inference_threads": 1})
    async for rig in make_rig(s, monkeypatch):
        await rig.command("consent", scope="learn", needle="learn: on")
        await rig.command("consent", scope="share", needle="share: on")
        await rig.fake.post_message(BO, f"<@{BOT_USER['id']}> <@{ANA['id']}> hi ana's twin",
                                    mentions=[BOT_USER, ANA])

        def answers() -> list:
            return [r for r in rig.fake.of("POST", f"/channels/{CHANNEL_ID}/messages")]

        first = (await rig.fake.wait_for(answers))[0]
        assert pings_nobody(first.json)
        assert str(first.json["message_reference"]["channel_id"]) == CHANNEL_ID
        text = json.dumps(first.json)
        assert "Ana's twin" in text or "had nothing to say" in text
        assert rig.fake.of("POST", f"/channels/{CHANNEL_ID}/typing")

        # Bo replies to the twin's message without mentioning anyone: Ana's twin answers again.
        await rig.fake.post_message(BO, "and what else?", reply_to=first.created_id)
        second = (await rig.fake.wait_for(lambda: answers()[1:]))[0]
        assert pings_nobody(second.json) and "Ana" in json.dumps(second.json)
        # A reply to an ordinary message is not addressed to any twin.
        plain = await rig.fake.post_message(BO, "just chatting")
        await rig.fake.post_message(ANA, "sure", reply_to=plain)
        await asyncio.sleep(1.0)
        assert len(answers()) == 2
