"""/twin under load, through the real command layer and the tiny model: a flood gets "busy" at once,
everyone else keeps their normal reply time, nothing crashes and no stored message is lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.commands import CommandLayer, open_services
from bot.commands.context import Busy
from bot.commands.layer import UNEXPECTED
from bot.commands.twin import BUSY
from tests.bot.commands.recording import RecordingOutbox, event
from twinbot.settings import Settings

PER_USER_BUSY = str(Busy("message to a twin"))


@pytest.fixture
async def layer(settings: Settings, tiny_model_dir: Path) -> AsyncIterator[CommandLayer]:
    s = settings.model_copy(update={"base_model": str(tiny_model_dir), "model_dtype": "float32",
                                    "max_new_tokens": 8, "inference_threads": 1})
    async with open_services(s, with_model=True, with_avatars=False, with_trainer=False) as services:
        layer = CommandLayer(s, services)
        yield layer
        await layer.close()


async def say(layer: CommandLayer, text: str, user: str, **kw) -> tuple[RecordingOutbox, float]:  # noqa: ANN003
    """Send one message as `user`; returns what came back and how long it took."""
    out = RecordingOutbox()
    ev = event(text, user=user, name=user, **kw)
    started = time.perf_counter()
    invocation = layer.parse_text_command(ev)
    await (layer.on_message(ev, out) if invocation is None else layer.dispatch(invocation, out))
    return out, time.perf_counter() - started


def answered(out: RecordingOutbox) -> bool:
    return len(out.sent) == 1 and out.sent[0].reply.speaker is not None


async def opt_in(layer: CommandLayer, users: list[str]) -> None:
    for user in users:
        await say(layer, "/consent learn", user)


async def others_latency(layer: CommandLayer, user: str, rounds: int) -> list[float]:
    """`user` talks to their twin `rounds` times, one message after the other; each must be answered."""
    latencies = []
    for k in range(rounds):
        out, took = await say(layer, f"/twin how are you, round {k}?", user)
        assert answered(out), out.texts
        latencies.append(took)
    return latencies


async def test_a_flood_of_1000_twin_requests_from_50_users(layer: CommandLayer) -> None:
    flooders = [f"f{k}" for k in range(50)]
    crowd = [f"n{k}" for k in range(50)]
    await opt_in(layer, [*flooders, *crowd, "ana"])

    # Normal: 50 people each say one thing to their twin at the same moment, and ana too.
    crowd_talks = asyncio.gather(*(say(layer, "/twin hi", user) for user in crowd))
    normal = max(await others_latency(layer, "ana", 3))
    assert all(answered(out) for out, _ in await crowd_talks)

    # The flood: 20 requests from each of 50 users at once, while they chat in a group and ana talks.
    flood = asyncio.gather(*(say(layer, f"/twin flood {i}", user) for user in flooders for i in range(20)))
    chat = asyncio.gather(*(say(layer, f"{user} says {i} in the group", user, chat="group")
                            for user in flooders for i in range(2)))
    during = await others_latency(layer, "ana", 3)
    replies, _ = await flood, await chat

    assert len(replies) == 1000 and all(len(out.sent) == 1 for out, _ in replies)
    texts = [out.sent[0].reply.text for out, _ in replies]
    busy = [took for (out, took), text in zip(replies, texts) if text in (BUSY, PER_USER_BUSY)]
    twin_answers = sum(answered(out) for out, _ in replies)
    assert UNEXPECTED not in texts and twin_answers + len(busy) == 1000
    assert twin_answers >= 50 and len(busy) >= 900
    # "Busy" is said at once, and ana waits no longer than when 50 people talk at the same moment.
    assert max(busy) < 2 * normal + 1.0 and max(during) < 2 * normal + 1.0, (busy, during, normal)
    assert answered((await say(layer, "/twin still there?", "ana"))[0])

    store = layer.ctx.store
    for user in flooders:  # every message of the chat was kept, flood or not
        owner = await store.users.lookup("console", user)
        kept = [m.text for m in await store.messages.for_training(owner.id)]
        assert sorted(kept) == [f"{user} says {i} in the group" for i in range(2)]


async def test_a_full_reply_queue_says_busy_to_the_excess(layer: CommandLayer) -> None:
    layer.ctx.services.twins.worker.max_pending = 3
    users = [f"u{k}" for k in range(12)]
    await opt_in(layer, users)
    replies = await asyncio.gather(*(say(layer, "/twin hello", user) for user in users))
    texts = [out.last.text for out, _ in replies]
    assert sum(answered(out) for out, _ in replies) >= 3
    assert BUSY in texts and set(texts) <= {BUSY} | {out.last.text for out, _ in replies if answered(out)}
