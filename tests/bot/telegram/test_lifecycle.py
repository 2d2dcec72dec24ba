"""Start-up (login, command menu), polling and webhook delivery, and a clean stop."""

from __future__ import annotations

import aiohttp
import pytest

from bot.telegram_adapter import TelegramAdapter
from tests.bot.telegram.conftest import TelegramRig, running_bot
from twinbot.settings import Settings


async def test_start_up_logs_in_and_publishes_every_command_in_the_menu(rig: TelegramRig) -> None:
    assert rig.fake.calls_of("getMe")
    (menu,) = rig.fake.calls_of("setMyCommands")
    published = [(c["command"], c["description"]) for c in menu.params["commands"]]
    assert published == [(spec.name, spec.description) for spec in rig.layer.specs]
    (polling_setup,) = rig.fake.calls_of("deleteWebhook")
    assert not rig.fake.calls_of("setWebhook")
    replies = await rig.say(rig.ana, rig.dm(rig.ana), "/help")
    assert "/twin [@user] <text>" in replies[0].text


async def test_webhook_mode_takes_updates_with_the_secret_and_refuses_others(settings: Settings) -> None:
    async with running_bot(settings, webhook=True, with_avatars=False) as rig:
        (hook,) = rig.fake.calls_of("setWebhook")
        assert hook.params["url"].endswith("/telegram/hook")
        assert hook.params["secret_token"] == "s3cret_token-1"
        replies = await rig.say(rig.ana, rig.dm(rig.ana), "/consent")  # delivered by POST to the webhook
        assert "What I keep and why" in replies[0].text
        forged = {"update_id": 999, "message": {"message_id": 5, "date": 0, "chat": {"id": 11, "type": "private"},
                                                "from": {"id": 11, "is_bot": False, "first_name": "Eve"},
                                                "text": "/forget confirm:yes"}}
        async with aiohttp.ClientSession(trust_env=False) as session:
            async with session.post(hook.params["url"], json=forged,
                                    headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}) as response:
                assert response.status == 403


async def test_a_webhook_without_a_secret_never_starts(settings: Settings) -> None:
    """Forged updates with someone's `from.id` could /forget them: no secret, no webhook at all."""
    with pytest.raises(ValueError, match="TELEGRAM_WEBHOOK_SECRET required when TELEGRAM_WEBHOOK_URL is set"):
        async with running_bot(settings, webhook=True, webhook_secret=None, with_avatars=False):
            pass


async def test_stop_is_clean_and_the_bot_can_be_stopped_twice(settings: Settings) -> None:
    async with running_bot(settings, with_avatars=False) as rig:
        await rig.say(rig.ana, rig.dm(rig.ana), "/help")
        adapter: TelegramAdapter = rig.adapter
    assert not adapter.app.running and not adapter.app.updater.running
    await adapter.stop()  # a second stop (as bot/app.py may do) is harmless
    # the last updates were confirmed to Telegram, so a restart would not see them again
    assert rig.fake._pending == []
