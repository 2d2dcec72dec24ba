"""The real python-telegram-bot, our adapter, a real store and command layer, against the fake Bot API."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from pydantic import SecretStr

from bot.commands import CommandLayer, open_services
from bot.telegram_adapter import TelegramAdapter
from bot.telegram_pacing import ChatRateLimiter
from tests.fakes.telegram_server import TOKEN, Chat, FakeTelegram, User
from twinbot.settings import Settings

# Telegram's real limits (1 message/s per chat, 20/min per group) would make each test take a minute;
# the same limiter runs, with room enough that it never waits.
ROOMY_LIMITS = {"per_chat_rate": 1000, "overall_max_rate": 1000, "group_max_rate": 1000, "group_time_period": 1}


@dataclass
class TelegramRig:
    fake: FakeTelegram
    adapter: TelegramAdapter
    layer: CommandLayer
    ana: User
    bo: User
    group: Chat

    @property
    def store(self):  # noqa: ANN201 - persona_store.Store
        return self.layer.ctx.store

    def dm(self, user: User) -> Chat:
        return self.fake.private_chat(user)

    async def say(self, user: User, chat: Chat, text: str = "", count: int = 1, **kw) -> list:  # noqa: ANN003
        """`user` writes `text` in `chat`; returns the bot's next `count` messages to that chat."""
        mark = self.fake.mark()
        self.fake.send(user, chat, text, **kw)
        return await self.fake.replies(chat, mark, count)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@asynccontextmanager
async def running_bot(settings: Settings, *, webhook: bool = False, webhook_secret: str | None = "s3cret_token-1",
                      with_model: bool = False, with_avatars: bool = True) -> AsyncIterator[TelegramRig]:
    """Start the whole Telegram side like `twinbot run` does, and stop it cleanly afterwards."""
    torch.set_num_threads(1)
    fake = FakeTelegram()
    await fake.start()
    update: dict = {"telegram_token": SecretStr(TOKEN)}
    if webhook:
        port = free_port()
        update |= {"telegram_webhook_url": f"http://127.0.0.1:{port}/telegram/hook",
                   "telegram_webhook_secret": SecretStr(webhook_secret) if webhook_secret else None,
                   "telegram_webhook_port": port}
    s = settings.model_copy(update=update)
    try:
        async with open_services(s, with_model=with_model, with_avatars=with_avatars, with_trainer=False) as services:
            layer = CommandLayer(s, services)
            adapter = TelegramAdapter(s, layer, base_url=fake.base_url, base_file_url=fake.base_file_url,
                                      rate_limiter=ChatRateLimiter(**ROOMY_LIMITS), webhook_listen="127.0.0.1")
            task = asyncio.create_task(adapter.run(), name="telegram")
            ready = "setWebhook" if webhook else "deleteWebhook"  # the last call before updates flow
            await fake.wait_for(lambda: fake.calls_of(ready) or task.done())
            if task.done():
                task.result()
            try:
                yield TelegramRig(fake, adapter, layer, User(11, "Ana", "ana"), User(12, "Bo", "bo"), fake.group())
            finally:
                await adapter.stop()
                await asyncio.wait_for(task, 30)
                await layer.close()
    finally:
        await fake.stop()


@pytest.fixture
def face_settings(settings: Settings, tiny_face_weights: Path) -> Settings:
    return settings.model_copy(update={"avatar_weights": tiny_face_weights})


@pytest.fixture
async def rig(face_settings: Settings) -> AsyncIterator[TelegramRig]:
    async with running_bot(face_settings) as running:
        yield running
