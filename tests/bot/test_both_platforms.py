"""Discord and Telegram served by one process: one command layer, one store, both adapters running."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.app import platform_adapters
from bot.commands import CommandLayer, open_services
from bot.discord_adapter import DiscordAdapter
from bot.telegram_adapter import TelegramAdapter
from bot.telegram_pacing import ChatRateLimiter
from tests.bot.discord.conftest import ANA, make_rig
from tests.fakes.telegram_server import TOKEN, FakeTelegram, User
from tests.bot.telegram.conftest import ROOMY_LIMITS
from twinbot.settings import Settings


async def test_both_tokens_give_both_adapters_on_one_layer(settings: Settings) -> None:
    s = settings.model_copy(update={"discord_token": SecretStr("d"), "telegram_token": SecretStr(TOKEN)})
    async with open_services(s, with_model=False, with_avatars=False) as services:
        layer = CommandLayer(s, services)
        adapters = platform_adapters(s, layer)
        assert [type(a) for a in adapters] == [DiscordAdapter, TelegramAdapter]
        assert all(a.layer is layer for a in adapters)
        await layer.close()


async def test_discord_and_telegram_share_the_store(settings: Settings, tiny_face_weights: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings.model_copy(update={"avatar_weights": tiny_face_weights, "telegram_token": SecretStr(TOKEN)})
    async for rig in make_rig(s, monkeypatch, with_model=False):
        fake = FakeTelegram()
        await fake.start()
        telegram = TelegramAdapter(rig.layer.settings.model_copy(update={"telegram_token": SecretStr(TOKEN)}),
                                   rig.layer, base_url=fake.base_url, base_file_url=fake.base_file_url,
                                   rate_limiter=ChatRateLimiter(**ROOMY_LIMITS))
        task = asyncio.create_task(telegram.run())
        try:
            await fake.wait_for(lambda: fake.calls_of("deleteWebhook"))
            cy = User(33, "Cy", "cy")
            mark = fake.mark()
            fake.send(cy, fake.private_chat(cy), "/consent learn")
            await fake.replies(cy.id, mark)
            await rig.command("consent", scope="learn", needle="learn: on")
            store = rig.layer.ctx.store
            assert await store.users.lookup("telegram", "33") is not None
            assert await store.users.lookup("discord", ANA["id"]) is not None
            reply = await rig.command("status", needle="messages:")
            assert "learn: on" in reply.json["content"]
        finally:
            await telegram.stop()
            await asyncio.wait_for(task, 30)
            await fake.stop()
