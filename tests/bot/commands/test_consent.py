"""/consent through the real command layer: withdrawing `learn` stops the user's training job."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.commands import CommandLayer
from persona_store import JobState, NewMessage
from tests.bot.commands.recording import RecordingOutbox, command_layer, event
from twinbot.settings import Settings


@pytest.fixture
async def layer(settings: Settings) -> AsyncIterator[CommandLayer]:
    async with command_layer(settings, min_train_messages=5) as layer:
        yield layer


async def run(layer: CommandLayer, text: str) -> RecordingOutbox:
    out = RecordingOutbox()
    await layer.dispatch(layer.parse_text_command(event(text, user="ana", name="Ana")), out)
    return out


async def queued_job(layer: CommandLayer) -> int:
    """Ana opts in, has enough lines, and asks /train: the id of her queued job."""
    await run(layer, "/consent learn")
    store = layer.ctx.store
    user = await store.users.lookup("console", "ana")
    await store.messages.add_many([NewMessage(user.id, "console", "c", str(i), "Ana", True, float(i),
                                              f"line {i} of ana's", "import") for i in range(10)])
    await run(layer, "/train")
    job = await store.jobs.latest_for(user.id)
    assert job.state is JobState.QUEUED
    return job.id


@pytest.mark.parametrize("withdrawal", ["/consent unlearn", "/consent off"])
async def test_withdrawing_learn_cancels_a_queued_training_job(layer: CommandLayer, withdrawal: str) -> None:
    job_id = await queued_job(layer)
    out = await run(layer, withdrawal)
    assert "learn: off" in out.last.text and "training is stopped" in out.last.text
    assert (await layer.ctx.store.jobs.get(job_id)).state is JobState.CANCELLED
    assert await layer.ctx.store.jobs.claim_next("trainer", 60) is None  # no trainer will pick it up


async def test_withdrawing_learn_stops_a_running_job_at_its_next_heartbeat(layer: CommandLayer) -> None:
    job_id = await queued_job(layer)
    jobs = layer.ctx.store.jobs
    assert (await jobs.claim_next("trainer", 60)).id == job_id
    await run(layer, "/consent off")
    beat = await jobs.heartbeat(job_id, progress=0.5, step=5, total_steps=10, loss=1.0, eta_s=3.0)
    assert beat is JobState.CANCELLED  # what the trainer hears: it stops and deletes its checkpoint


async def test_withdrawing_share_leaves_training_alone(layer: CommandLayer) -> None:
    job_id = await queued_job(layer)
    out = await run(layer, "/consent unshare")
    assert "training" not in out.last.text
    assert (await layer.ctx.store.jobs.get(job_id)).state is JobState.QUEUED
