"""The inference worker on a tiny real model: mixed-adapter batches, the adapter LRU, folds, load errors,
a bounded queue, and callers who give up never end its thread."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from persona.serving.adapter_files import AdapterFileError
from persona.serving.worker import AdapterRef, InferenceWorker, Sampling, WorkerBusy
from persona.model import load_base_model
from persona.training.lora import TrainConfig, encode, train_adapter, write_adapter
from persona.examples import Example
from persona.prompt import Turn
from twinbot.settings import Settings

GREEDY = Sampling(do_sample=False, repetition_penalty=1.0)


def loader(path: Path):  # noqa: ANN201
    return lambda: (AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval(),
                    AutoTokenizer.from_pretrained(path))


@pytest.fixture(scope="module")
def adapters(tiny_model_dir: Path, tokenizer, tmp_path_factory: pytest.TempPathFactory) -> list[AdapterRef]:  # noqa: ANN001
    """Three different trained adapters for the tiny model."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("adapters")
    refs = []
    for i, word in enumerate(("apple", "banana", "cherry")):
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
        examples = [Example((Turn("Bo", "say it", False),), f"{word} {word} {word}")] * 16
        cfg = TrainConfig(max_steps=15, learning_rate=5e-2, batch_lines=8, bf16=False, epochs=100, seed=i)
        model, _ = train_adapter(base, tokenizer, encode(tokenizer, "Ana", examples, 64), cfg)
        refs.append(AdapterRef(str(i + 1), str(write_adapter(model, root / str(i + 1))), 1.0))
    return refs


@pytest.mark.parametrize("dtype", ["float32", "int8"])
async def test_mixed_batches_match_one_at_a_time(tiny_model_dir: Path, adapters: list[AdapterRef], tokenizer,  # noqa: ANN001
                                                 settings: Settings, dtype: str) -> None:
    s = settings.model_copy(update={"base_model": str(tiny_model_dir), "model_dtype": dtype})
    prompts = [tokenizer(f"hello number {i}, how are you")["input_ids"] for i in range(6)]
    choice = [None, adapters[0], adapters[1], None, adapters[2], adapters[0]]
    alone = InferenceWorker(lambda: load_base_model(s), threads=1, cache_size=8, batch_window_s=0.0, max_batch=1)
    await alone.start()
    expected = [await alone.generate(p, a, 8, GREEDY) for p, a in zip(prompts, choice)]
    await alone.close()
    batched = InferenceWorker(lambda: load_base_model(s), threads=1, cache_size=8, batch_window_s=0.5, max_batch=8)
    await batched.start()
    got = await asyncio.gather(*(batched.generate(p, a, 8, GREEDY) for p, a in zip(prompts, choice)))
    await batched.close()
    assert batched.stats.largest_batch > 1
    assert len({tuple(messages) for messages in expected}) > 1  # adapters change what the model says
    if dtype == "float32":
        assert got == expected
    else:
        # int8: alone, a reply runs on int8(W + BA), in a mixed batch on int8(W) + BA (test_folding
        # bounds the gap); on this random tiny model that can flip a greedy token, so only rows
        # without an adapter must match exactly.
        assert [g for g, a in zip(got, choice) if a is None] == [e for e, a in zip(expected, choice) if a is None]


async def test_adapter_lru_is_bounded_and_reloads_new_versions(tiny_model_dir: Path, adapters: list[AdapterRef]) -> None:
    worker = InferenceWorker(loader(tiny_model_dir), threads=1, cache_size=2, batch_window_s=0.0, max_batch=1)
    await worker.start()
    for ref in (*adapters, adapters[1]):
        await worker.generate([1, 2, 3], ref, 2, GREEDY)
    assert worker.loaded_adapters == ["3", "2"] and worker.stats.adapter_evictions == 1
    newer = AdapterRef(adapters[1].name, adapters[1].path, version=2.0)
    await worker.generate([1, 2, 3], newer, 2, GREEDY)
    assert worker.stats.adapter_loads == 4 and worker.loaded_adapters == ["3", "2"]
    await worker.delete_adapter("2")
    assert worker.loaded_adapters == ["3"]
    await worker.close()


async def test_a_lone_adapter_is_served_folded_and_the_base_weights_are_never_touched(
        tiny_model_dir: Path, adapters: list[AdapterRef]) -> None:
    worker = InferenceWorker(loader(tiny_model_dir), threads=1, cache_size=1, batch_window_s=0.0, max_batch=1)
    await worker.start()
    q = worker.model.model.layers[0].self_attn.q_proj
    pristine = q.weight.detach().clone()
    prompt = [1, 2, 3, 4]
    base_reply = await worker.generate(prompt, None, 8, GREEDY)
    await worker.generate(prompt, adapters[0], 4, GREEDY)
    assert q.fold is not None and not torch.equal(q.fold.weight, pristine)  # the adapter's folded weight serves
    assert await worker.generate(prompt, None, 8, GREEDY) == base_reply
    assert q.fold is None and torch.equal(q.weight, pristine)
    await worker.generate(prompt, adapters[1], 4, GREEDY)
    await worker.delete_adapter(adapters[1].name)  # evicting the adapter in use drops its folds
    assert q.fold is None and torch.equal(q.weight, pristine)

    # Retrained (same name, new files): the new weights are folded, not the ones of the old version.
    alone = InferenceWorker(loader(tiny_model_dir), threads=1, cache_size=1, batch_window_s=0.0, max_batch=1)
    await alone.start()
    expected = await alone.generate(prompt, AdapterRef("fresh", adapters[2].path, 1.0), 8, GREEDY)
    await alone.close()
    await worker.generate(prompt, adapters[0], 4, GREEDY)
    retrained = AdapterRef(adapters[0].name, adapters[2].path, version=2.0)
    assert await worker.generate(prompt, retrained, 8, GREEDY) == expected
    await worker.close()


async def test_an_adapter_is_served_at_the_strength_its_ref_asks_for(tiny_model_dir: Path,
                                                                     adapters: list[AdapterRef]) -> None:
    worker = InferenceWorker(loader(tiny_model_dir), threads=1, cache_size=2, batch_window_s=0.0, max_batch=1)
    await worker.start()
    prompt = [1, 2, 3, 4]
    base_reply = await worker.generate(prompt, None, 8, GREEDY)
    trained = await worker.generate(prompt, adapters[0], 8, GREEDY)
    assert trained != base_reply
    assert await worker.generate(prompt, replace(adapters[0], strength=0.0), 8, GREEDY) == base_reply
    assert await worker.generate(prompt, adapters[0], 8, GREEDY) == trained  # reloaded at its own strength
    assert worker.stats.adapter_loads == 3
    await worker.close()


async def test_an_unreadable_adapter_fails_its_request_and_the_worker_goes_on(
        tiny_model_dir: Path, adapters: list[AdapterRef], tmp_path: Path) -> None:
    (tmp_path / "torn").mkdir()
    (tmp_path / "torn" / "adapter_config.json").write_text("{not json")
    worker = InferenceWorker(loader(tiny_model_dir), threads=1, cache_size=2, batch_window_s=0.0, max_batch=1)
    await worker.start()
    with pytest.raises(AdapterFileError, match="cannot read the adapter"):
        await worker.generate([1, 2, 3], AdapterRef("9", str(tmp_path / "torn"), 1.0), 4, GREEDY)
    assert worker.loaded_adapters == []
    assert await worker.generate([1, 2, 3], adapters[0], 4, GREEDY) is not None
    assert worker.loaded_adapters == [adapters[0].name]
    await worker.close()


async def test_a_worker_that_cannot_load_fails_at_start() -> None:
    def broken():  # noqa: ANN202
        raise OSError("no model here")

    worker = InferenceWorker(broken, threads=1, cache_size=1, batch_window_s=0, max_batch=1)
    with pytest.raises(OSError, match="no model here"):
        await worker.start()


async def test_stats_count_the_replies_cut_at_their_token_cap(tiny_model_dir: Path, tokenizer) -> None:  # noqa: ANN001
    def always_ends_its_turn():  # noqa: ANN202 - the tiny model with the end-of-turn token made certain
        model, tok = loader(tiny_model_dir)()
        head = torch.nn.Linear(model.lm_head.in_features, model.lm_head.out_features, bias=True)
        head.weight = model.lm_head.weight
        torch.nn.init.zeros_(head.bias)
        head.bias.data[tok.convert_tokens_to_ids("<|im_end|>")] = 1e4
        model.lm_head = head
        return model, tok

    ends = InferenceWorker(always_ends_its_turn, threads=1, cache_size=1, batch_window_s=0.0, max_batch=1)
    runs_on = InferenceWorker(loader(tiny_model_dir), threads=1, cache_size=1, batch_window_s=0.0, max_batch=1)
    for worker in (ends, runs_on):
        await worker.start()
        await worker.generate([1, 2, 3], None, 3, GREEDY)
        await worker.generate([4, 5, 6], None, 3, GREEDY)
        await worker.close()
    assert ends.stats.capped == 0 and runs_on.stats.capped == 2


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
    assert isinstance(answer, list) and all(isinstance(text, str) for text in answer)
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
    assert all(isinstance(messages, list) for messages in await asyncio.gather(*queued))
    assert isinstance(await worker.generate(ids, None, 2), list)


async def test_each_message_reaches_the_loop_as_it_is_written(tiny_model_dir: Path, tokenizer,  # noqa: ANN001
                                                              settings: Settings) -> None:
    s = settings.model_copy(update={"base_model": str(tiny_model_dir), "model_dtype": "float32"})
    worker = InferenceWorker.from_settings(s)
    await worker.start()
    try:
        loop_thread = threading.get_ident()
        heard: list[tuple[str, int]] = []
        prompts = [tokenizer(f"tell me about number {i}")["input_ids"] for i in range(4)]
        replies = await asyncio.gather(*(
            worker.generate(p, None, 6, GREEDY, on_message=lambda text: heard.append((text, threading.get_ident())))
            for p in prompts))
        # every non-empty message was heard once, on the event loop's thread, before generate returned
        assert sorted(text for text, _ in heard) == sorted(text for reply in replies for text in reply if text)
        assert {thread for _, thread in heard} <= {loop_thread}
    finally:
        await worker.close()
