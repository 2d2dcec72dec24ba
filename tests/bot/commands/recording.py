"""A platform stand-in for command-layer tests: it records what the layer sends, like an adapter would."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bot.commands import CommandLayer, Event, Reply, open_services
from twinbot.settings import Settings

_ids = itertools.count(1)


@dataclass
class RecordedMessage:
    outbox: RecordingOutbox
    reply: Reply
    message_id: str = field(default_factory=lambda: f"out-{next(_ids)}")
    edits: list[Reply] = field(default_factory=list)

    async def edit(self, reply: Reply) -> None:
        self.edits.append(reply)

    @property
    def latest(self) -> Reply:
        return self.edits[-1] if self.edits else self.reply


@dataclass
class RecordingOutbox:
    sent: list[RecordedMessage] = field(default_factory=list)
    typing_count: int = 0

    async def send(self, reply: Reply) -> RecordedMessage:
        message = RecordedMessage(self, reply)
        self.sent.append(message)
        return message

    @asynccontextmanager
    async def typing(self) -> AsyncIterator[None]:
        self.typing_count += 1
        yield

    @property
    def texts(self) -> list[str]:
        return [m.latest.text for m in self.sent]

    @property
    def last(self) -> Reply:
        return self.sent[-1].latest


def event(text: str = "", *, user: str = "u1", name: str = "Ana", chat: str = "chat1", dm: bool = False,
          platform: str = "console", message_id: str | None = None, **extra) -> Event:
    return Event(platform=platform, user_id=user, user_name=name, chat_id=chat, is_dm=dm, text=text,
                 message_id=message_id or f"in-{next(_ids)}", **extra)


@asynccontextmanager
async def command_layer(settings: Settings, **update: object) -> AsyncIterator[CommandLayer]:
    """The real command layer over a real store, without the model or faces; `update` changes settings."""
    s = settings.model_copy(update=update)
    async with open_services(s, with_model=False, with_avatars=False) as services:
        layer = CommandLayer(s, services)
        yield layer
        await layer.close()


async def say(layer: CommandLayer, text: str, **kw) -> RecordingOutbox:  # noqa: ANN003 - event() fields
    """`text` handed to the layer as an adapter hands it: a command is dispatched, anything else is a message."""
    out = RecordingOutbox()
    ev = event(text, **kw)
    inv = layer.parse_text_command(ev)
    await (layer.on_message(ev, out) if inv is None else layer.dispatch(inv, out))
    return out
