"""The inference worker on the tiny model: a bounded queue, and callers who give up never end its thread."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from persona.model import load_base_model
from persona.serving.worker import InferenceWorker, WorkerBusy
from twinbot.settings import Settings


@pytest.fixture
async def worker(settings: Settings, tiny_model_dir: Path):  # noqa: ANN201 - an InferenceWorker
    s = settings.model_copy(update={"base_model": str(tiny_model_dir), "model_dtype": "float32"})
    worker = InferenceWorker(lambda: load_base_model(s), threads=1, cache_size=1, batch_window_s=0.0, max_batch=8,
                             max_pending=2)
    await worker.start()
    yield worker
    await worker.close()


async def hold(worker: InferenceWorker) -> tuple[threading.Event, asyncio.Task]:
    """Keep the worker thread busy until the returned event is set, so requests wait in its queue."""
    gate, entered = threading.Event(), threading.Event()

    def wait() -> None:
        entered.set()
        gate.wait(30)

    held = asyncio.create_task(worker.call(wait))
    await asyncio.to_thread(entered.wait, 30)
    return gate, held


async def test_a_reply_whose_caller_gave_up_does_not_end_the_worker(worker: InferenceWorker) -> None:
    ids = worker.tokenizer("hello there").input_ids
    gate, held = await hold(worker)
    waiting = asyncio.create_task(worker.generate(ids, None, 4))
    await asyncio.sleep(0.05)  # the request is in the worker's queue
    waiting.cancel()  # a timed-out or disconnected caller
    with pytest.raises(asyncio.CancelledError):
        await waiting
    gate.set()
    await held
    answer = await asyncio.wait_for(worker.generate(ids, None, 4), 30)
    assert isinstance(answer, str)
    assert worker.stats.requests == 1  # the abandoned request was never generated


async def test_a_full_queue_refuses_at_once_and_takes_requests_again_once_drained(worker: InferenceWorker) -> None:
    ids = worker.tokenizer("hello there").input_ids
    gate, held = await hold(worker)
    queued = [asyncio.create_task(worker.generate(ids, None, 2)) for _ in range(2)]
    await asyncio.sleep(0.05)
    with pytest.raises(WorkerBusy):
        await asyncio.wait_for(worker.generate(ids, None, 2), 1)
    gate.set()
    await held
    assert all(isinstance(text, str) for text in await asyncio.gather(*queued))
    assert isinstance(await worker.generate(ids, None, 2), str)
