"""The real python-telegram-bot against the fake Bot API, with a real store and command layer."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.commands import CommandLayer, open_services
from bot.telegram_adapter import TelegramAdapter
from tests.fakes.telegram_server import FakeTelegram
from twinbot.settings import Settings

_ids = itertools.count(1)


@dataclass
class TelegramRig:
    fake: FakeTelegram
    adapter: TelegramAdapter
    layer: CommandLayer

    def say(self, text: str = "", *, user_id: int = 11, username: str = "ana", chat_id: int | None = None,
            group: bool = False, reply_to: int | None = None, document: dict | None = None) -> int:
        """Push a message from a user; returns its message id."""
        chat = chat_id if chat_id is not None else (-100 if group else user_id)
        message_id = next(_ids)
        message: dict = {
            "message_id": message_id, "date": int(time.time()),
            "chat": {"id": chat, "type": "group" if group else "private", **({"title": "G"} if group else {})},
            "from": {"id": user_id, "is_bot": False, "first_name": username.title(), "username": username},
        }
        key = "caption" if document else "text"
        if text or not document:
            message[key] = text
            mentions = [w for w in text.split() if w.startswith("@")]
            entities = []
            for word in mentions:
                entities.append({"type": "mention", "offset": text.index(word), "length": len(word)})
            if entities:
                message[f"{key}_entities" if document else "entities"] = entities
        if document:
            message["document"] = document
        if reply_to is not None:
            message["reply_to_message"] = {"message_id": reply_to, "date": int(time.time()),
                                           "chat": message["chat"],
                                           "from": {"id": 4242, "is_bot": True, "first_name": "Twinbot"}}
        self.fake.push({"message": message})
        return message_id

    async def reply_text(self, after: int, needle: str, timeout: float = 30) -> str:
        """Wait for a sendMessage/editMessageText after call number `after` containing `needle`."""
        def found() -> str | None:
            for call in self.fake.calls[after:]:
                if call.method in ("sendMessage", "editMessageText") and needle in call.params.get("text", ""):
                    return call.params["text"]
            return None

        return await self.fake.wait_for(found, timeout)


async def make_rig(settings: Settings, **services) -> AsyncIterator[TelegramRig]:  # noqa: ANN003
    fake = FakeTelegram()
    await fake.start()
    s = settings.model_copy(update={"telegram_token": SecretStr("123:ABC")})
    async with open_services(s, with_trainer=False, **services) as opened:
        layer = CommandLayer(s, opened)
        adapter = TelegramAdapter(s, layer, base_url=fake.base_url, base_file_url=fake.base_file_url, rate_limit=False)
        task = asyncio.create_task(adapter.run())
        await fake.wait_for(lambda: fake.calls_of("setMyCommands"))
        try:
            yield TelegramRig(fake, adapter, layer)
        finally:
            await adapter.stop()
            await asyncio.wait_for(task, 30)
            await layer.close()
            await fake.stop()


@pytest.fixture
async def rig(settings: Settings, tiny_face_weights: Path) -> AsyncIterator[TelegramRig]:
    s = settings.model_copy(update={"avatar_weights": tiny_face_weights})
    async for r in make_rig(s, with_model=False):
        yield r
