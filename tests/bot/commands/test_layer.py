"""The command layer end to end on a real store, with the platform side recorded."""

from __future__ import annotations

import io
import json
import zipfile
import pytest

from bot.commands import CommandLayer, Invocation, open_services
from bot.commands.parse import parse_options
from bot.commands.context import UserError
from tests.bot.commands.recording import RecordingOutbox, event, say
from twinbot.settings import Settings


def test_every_command_is_declared_once_with_descriptions(layer: CommandLayer) -> None:
    names = [spec.name for spec in layer.specs]
    assert names == ["help", "consent", "status", "import", "train", "twin", "avatar", "export", "forget"]
    assert all(spec.description and spec.usage for spec in layer.specs)


async def test_help_lists_every_command(layer: CommandLayer) -> None:
    out = await say(layer, "/help")
    for spec in layer.specs:
        assert spec.usage in out.last.text


async def test_nothing_is_stored_before_opt_in(layer: CommandLayer) -> None:
    store = layer.ctx.store
    await say(layer, "a message before consent")
    await say(layer, "/status")
    assert await store.users.lookup("console", "u1") is None
    await say(layer, "/consent learn")
    user = await store.users.lookup("console", "u1")
    await say(layer, "a message after consent")
    await say(layer, "/twin this is a command, not a message to keep")
    kept = await store.messages.for_training(user.id)
    assert [m.text for m in kept] == ["a message after consent"]
    await say(layer, "/consent off")
    await say(layer, "after withdrawing")
    assert len(await store.messages.for_training(user.id)) == 1


async def test_capture_ignores_empty_and_truncates_huge_messages(layer: CommandLayer) -> None:
    await say(layer, "/consent learn")
    await say(layer, "   ")
    await say(layer, "x" * 100_000)
    user = await layer.ctx.store.users.lookup("console", "u1")
    kept = await layer.ctx.store.messages.for_training(user.id)
    assert [len(m.text) for m in kept] == [layer.settings.max_message_chars]


async def test_discord_capture_needs_the_operator_setting(settings: Settings) -> None:
    for enabled, expected in ((False, 0), (True, 1)):
        s = settings.model_copy(update={"discord_capture_messages": enabled, "data_dir": settings.data_dir / str(enabled)})
        async with open_services(s, with_model=False, with_avatars=False) as services:
            layer = CommandLayer(s, services)
            await say(layer, "/consent learn", platform="discord")
            await say(layer, "hello from a guild channel", platform="discord")
            user = await services.store.users.lookup("discord", "u1")
            assert len(await services.store.messages.for_training(user.id)) == expected


async def test_consent_explains_scopes_and_shows_state(layer: CommandLayer) -> None:
    out = await say(layer, "/consent")
    assert "learn" in out.last.text and "share" in out.last.text and "off" in out.last.text
    out = await say(layer, "/consent share")
    assert "share: on" in out.last.text and "learn: off" in out.last.text
    out = await say(layer, "/consent bogus")
    assert out.last.kind == "error" and "learn, share" in out.last.text


async def test_status_reports_counts(layer: CommandLayer) -> None:
    await say(layer, "/consent learn")
    for i in range(3):
        await say(layer, f"message {i}")
    out = await say(layer, "/status")
    assert "messages: 3 of yours" in out.last.text and out.last.ephemeral


async def test_features_without_their_engine_say_so(layer: CommandLayer) -> None:
    await say(layer, "/consent learn")
    for command in ("/twin hello", "/avatar", "hello twin, are you there?"):
        out = await say(layer, command, dm=True)
        assert out.last.kind == "error" and "not available" in out.last.text, command


async def test_twin_of_someone_who_has_not_shared(layer: CommandLayer) -> None:
    await say(layer, "/consent learn", user="owner", name="Bo")
    out = await say(layer, "/twin @Bo hi there", user="visitor", name="Cy")
    assert out.last.kind == "error" and "hasn't shared" in out.last.text
    out = await say(layer, "/twin @nobody hi", user="visitor")
    assert "don't know a twin called 'nobody'" in out.last.text


async def test_train_refuses_without_consent_or_enough_data(layer: CommandLayer) -> None:
    out = await say(layer, "/train")
    assert out.last.kind == "error" and "/consent learn" in out.last.text


async def test_export_is_a_zip_with_a_readme_and_json(layer: CommandLayer) -> None:
    await say(layer, "/consent learn")
    await say(layer, "my exported words")
    out = await say(layer, "/export")
    (file,) = out.last.files
    archive = zipfile.ZipFile(io.BytesIO(file.data))
    assert "README.txt" in archive.namelist()
    messages = json.loads(archive.read("data/messages.json"))
    assert [m["text"] for m in messages] == ["my exported words"]
    consent = json.loads(archive.read("data/consent_history.json"))
    assert consent[0]["scope"] == "learn" and consent[0]["granted"] is True


async def test_forget_asks_first_then_removes_everything(layer: CommandLayer) -> None:
    store = layer.ctx.store
    await say(layer, "/consent learn")
    await say(layer, "/consent learn", user="other", name="Other")
    await say(layer, "my secret words")
    await say(layer, "the other user's words", user="other", name="Other")
    out = await say(layer, "/forget")
    assert "confirm:yes" in out.last.text and await store.users.lookup("console", "u1") is not None
    out = await say(layer, "/forget confirm:yes")
    assert "Forgotten" in out.last.text and "1 messages" in out.last.text
    assert await store.users.lookup("console", "u1") is None
    other = await store.users.lookup("console", "other")
    assert len(await store.messages.for_training(other.id)) == 1
    out = await say(layer, "/forget confirm:yes")
    assert "nothing to forget" in out.last.text


async def test_unknown_command_and_bad_options_get_usage(layer: CommandLayer) -> None:
    out = RecordingOutbox()
    await layer.dispatch(Invocation("nope", {}, event("/nope")), out)
    assert "/help" in out.last.text
    out = await say(layer, "/avatar keep pick:two")
    assert out.last.kind == "error" and "whole number" in out.last.text
    out = await say(layer, "/twin")
    assert out.last.kind == "error" and "Missing text" in out.last.text


async def test_rate_limit_says_when_to_try_again(settings: Settings) -> None:
    s = settings.model_copy(update={"avatars_per_minute": 1})
    async with open_services(s, with_model=False, with_avatars=False) as services:
        layer = CommandLayer(s, services)
        layer.ctx.limit("avatars", event(), 1)
        with pytest.raises(UserError, match=r"Try again in \d+ s"):
            layer.ctx.limit("avatars", event(), 1)


def test_parse_options_by_position_name_and_rest(layer: CommandLayer) -> None:
    twin = layer.spec("twin")
    assert parse_options(twin, "@ana how are you") == {"user": "ana", "text": "how are you"}
    assert parse_options(twin, "how are you") == {"text": "how are you"}
    assert parse_options(twin, "text: spaced out: colons") == {"text": "spaced out: colons"}
    avatar = layer.spec("avatar")
    assert parse_options(avatar, "keep pick:3") == {"mode": "keep", "pick": 3}
    with pytest.raises(UserError):
        parse_options(avatar, "me extra words")


def test_text_command_addressed_to_a_bot_by_name(layer: CommandLayer) -> None:
    inv = layer.parse_text_command(event("/consent@twinbot learn"))
    assert inv is not None and inv.args == {"scope": "learn"}
    assert layer.parse_text_command(event("/unknowncmd")) is None
    assert layer.parse_text_command(event("not a command")) is None


async def test_message_text_never_reaches_the_logs_at_info(layer: CommandLayer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    await say(layer, "/consent learn")
    await say(layer, "my very private sentence about zucchini")
    await say(layer, "/twin @nobody zucchini again")
    await say(layer, "/import as:zucchini")
    assert "zucchini" not in caplog.text


async def test_capture_stops_quietly_at_the_message_quota(settings: Settings) -> None:
    s = settings.model_copy(update={"max_messages_per_user": 3})
    async with open_services(s, with_model=False, with_avatars=False) as services:
        layer = CommandLayer(s, services)
        await say(layer, "/consent learn")
        replies = [await say(layer, f"message number {i}") for i in range(5)]
        assert all(out.sent == [] for out in replies)
        user = await layer.ctx.store.users.lookup("console", "u1")
        assert [m.text for m in await layer.ctx.store.messages.for_training(user.id)] == [
            "message number 0", "message number 1", "message number 2"
        ]
        await layer.close()
