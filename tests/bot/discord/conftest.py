"""The real discord.py against the fake gateway and REST server, with a real store and command layer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import discord
import pytest
import yarl
from pydantic import SecretStr

from bot.commands import CommandLayer, open_services
from bot.discord_adapter import DiscordAdapter
from tests.fakes.discord_server import FakeDiscord, user
from twinbot.settings import Settings

ANA = user("111", "ana")
BO = user("222", "bo")


@dataclass
class DiscordRig:
    fake: FakeDiscord
    adapter: DiscordAdapter
    layer: CommandLayer

    def followups(self, token: str) -> list:
        return [r for r in self.fake.requests if r.method == "POST" and "/webhooks/" in r.path and token in r.path]

    async def followup(self, token: str, needle: str = "") -> object:
        """The first follow-up of an interaction whose content (or embed) contains `needle`."""
        def found():  # noqa: ANN202
            for r in self.followups(token):
                body = r.json or {}
                texts = [body.get("content") or ""] + [e.get("description", "") for e in body.get("embeds", [])]
                if any(needle in t for t in texts):
                    return r
            return None

        return await self.fake.wait_for(found)

    async def command(self, name: str, who: dict = ANA, needle: str = "", **options: object) -> object:
        kinds = {str: 3, int: 4, bool: 5}
        opts = [{"name": k, "type": kinds[type(v)], "value": v} for k, v in options.items()]
        token = await self.fake.interact(name, who, opts)
        return await self.followup(token, needle)


async def make_rig(settings: Settings, monkeypatch: pytest.MonkeyPatch, **services) -> AsyncIterator[DiscordRig]:  # noqa: ANN003
    fake = FakeDiscord([ANA, BO])
    await fake.start()
    monkeypatch.setattr(discord.http.Route, "BASE", fake.api)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.ws_url))
    s = settings.model_copy(update={"discord_token": SecretStr("bot-token")})
    async with open_services(s, with_trainer=False, **services) as opened:
        layer = CommandLayer(s, opened)
        adapter = DiscordAdapter(s, layer, guild_ready_timeout=0.05)
        task = asyncio.create_task(adapter.run())
        await asyncio.wait_for(fake.identified.wait(), 30)
        await fake.wait_for(lambda: fake.of("PUT", "/commands"))
        await asyncio.wait_for(adapter.client.wait_until_ready(), 30)
        try:
            yield DiscordRig(fake, adapter, layer)
        finally:
            await adapter.stop()
            await asyncio.wait_for(task, 30)
            await layer.close()
            await fake.stop()


@pytest.fixture
async def rig(settings: Settings, tiny_face_weights: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[DiscordRig]:
    s = settings.model_copy(update={"avatar_weights": tiny_face_weights})
    async for r in make_rig(s, monkeypatch, with_model=False):
        yield r
