"""The inference worker: one thread owns the model and answers generation requests from a queue.

Requests that arrive within a short window are generated together, even for different users'
adapters (each row with its own adapter's low-rank term; the base for twins without one). A batch
whose rows all use one adapter (a lone reply, most often) runs on that adapter's folded weights
instead (`persona.serving.folding`). A bounded LRU keeps the most recently used adapters loaded; the least
recently used is dropped, its folds with it. Adapters are read from peft's files without peft
(`persona.serving.adapter_files`): a cold switch is a file read and the folds.
The event loop only ever awaits futures: torch never runs on it.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from persona.prompt import between_messages
from persona.serving.decoding import RowPlan, Sampling, decode
from persona.serving.folding import ServedAdapters, make_foldable
from persona.model import LORA_TARGETS, load_base_model
from twinbot.settings import Settings

log = logging.getLogger(__name__)


class WorkerBusy(Exception):
    """Too many replies are already waiting for the model: refused at once rather than queued for a minute."""


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc
        return None


def release_freed_memory() -> None:
    """Hand the heap memory freed since the last call back to the OS (glibc's malloc_trim; no-op elsewhere).

    Making an adapter's folds frees tens of MB of fp32 temporaries that glibc would otherwise keep,
    so without a trim the bot's memory grows with every cold adapter although the LRU is bounded.
    It is called after a batch's replies are delivered, so no reply waits for it.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@dataclass(frozen=True, slots=True)
class AdapterRef:
    """Which adapter to use: its name in the model, where it lives, a version to notice retraining, and
    how strongly to serve it (persona/serving/strength.py)."""

    name: str
    path: str
    version: float
    strength: float = 1.0


@dataclass
class _Request:
    prompt_ids: list[int]
    adapter: AdapterRef | None
    max_new_tokens: int
    sampling: Sampling
    soft_length: int | None = None
    messages: int = 1
    go_on: float = 0.0
    on_message: Callable[[str], None] | None = None
    """Called on the worker thread with each message as soon as it is written."""
    future: Future = field(default_factory=Future)


@dataclass
class _Call:
    """Run a function on the worker thread (adapter eviction, measurements)."""

    fn: Callable[[], object]
    future: Future = field(default_factory=Future)


@dataclass
class WorkerStats:
    batches: int = 0
    requests: int = 0
    adapter_loads: int = 0
    adapter_evictions: int = 0
    largest_batch: int = 0
    capped: int = 0
    """Requests whose reply was cut at their max_new_tokens before it ended its turn."""


class InferenceWorker:
    """Owns the model on a dedicated thread; `generate` is awaitable from the event loop."""

    def __init__(self, load: Callable[[], tuple[PreTrainedModel, PreTrainedTokenizerBase]], *, threads: int,
                 cache_size: int, batch_window_s: float, max_batch: int, max_pending: int = 64) -> None:
        self._load = load
        self.threads = threads
        self.cache_size = cache_size
        self.batch_window_s = batch_window_s
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._pending = 0
        """Generation requests waiting or being generated; only the event loop counts them."""
        self._queue: queue.Queue[_Request | _Call | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._loaded: OrderedDict[str, AdapterRef] = OrderedDict()
        self.model: PreTrainedModel | None = None
        self._adapters: ServedAdapters | None = None
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self._between: list[int] = []
        self.stats = WorkerStats()
        self._ready = Future()

    @classmethod
    def from_settings(cls, settings: Settings) -> InferenceWorker:
        """The serving worker as the settings describe it (MODEL_DTYPE, threads, LRU size, batching)."""
        return cls(lambda: load_base_model(settings), threads=settings.inference_threads,
                   cache_size=settings.adapter_cache_size, batch_window_s=settings.batch_window_ms / 1000,
                   max_batch=settings.max_batch_size, max_pending=settings.max_pending_replies)

    async def start(self) -> None:
        """Start the thread and wait until the model is loaded (errors surface here)."""
        self._thread = threading.Thread(target=self._run, name="inference-worker", daemon=True)
        self._thread.start()
        await asyncio.wrap_future(self._ready)

    async def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    async def generate(self, prompt_ids: list[int], adapter: AdapterRef | None, max_new_tokens: int,
                       sampling: Sampling = Sampling(), soft_length: int | None = None, messages: int = 1,
                       go_on: float = 0.0, on_message: Callable[[str], None] | None = None) -> list[str]:
        """The reply's messages, each up to `max_new_tokens`: one, or a burst of up to `messages`, going on
        after each with probability `go_on`; WorkerBusy at once when `max_pending` requests are already waiting.

        Past `soft_length` tokens, ending the turn gets likelier (Sampling.length_push). `on_message`, on
        the event loop, gets each message as soon as it is written, before the burst's next one; all of
        them have come by the time this returns.
        """
        if self._pending >= self.max_pending:
            raise WorkerBusy(f"{self._pending} replies are already waiting for the model")
        loop = asyncio.get_running_loop()
        deliver = (lambda text: loop.call_soon_threadsafe(on_message, text)) if on_message is not None else None
        request = _Request(prompt_ids, adapter, max_new_tokens, sampling, soft_length, messages, go_on, deliver)
        self._pending += 1
        try:
            self._queue.put(request)
            return await asyncio.wrap_future(request.future)
        finally:
            self._pending -= 1

    async def call(self, fn: Callable[[], object]) -> object:
        """Run `fn` on the worker thread, between batches."""
        item = _Call(fn)
        self._queue.put(item)
        return await asyncio.wrap_future(item.future)

    async def delete_adapter(self, name: str) -> None:
        await self.call(lambda: self._delete_adapter(name))

    @property
    def loaded_adapters(self) -> list[str]:
        return list(self._loaded)

    # --- everything below runs on the worker thread -------------------------------------------

    def _run(self) -> None:
        torch.set_num_threads(self.threads)
        try:
            model, self.tokenizer = self._load()
            self._between = between_messages(self.tokenizer)
            make_foldable(model, LORA_TARGETS)
            self.model = model.eval()
            self._adapters = ServedAdapters(model)
        except BaseException as exc:
            self._ready.set_exception(exc)
            return
        self._ready.set_result(None)
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, _Call):
                self._settle(item.future, item.fn)
                continue
            # Requests whose caller gave up are dropped; the others can no longer be cancelled, so
            # delivering their replies cannot raise (InvalidStateError) and end this thread.
            batch = [request for request in self._gather(item) if request.future.set_running_or_notify_cancel()]
            if batch:
                self._generate_batch(batch)

    def _gather(self, first: _Request) -> list[_Request]:
        """The first request plus whatever arrives within the batch window (calls are re-queued)."""
        batch = [first]
        deadline = time.monotonic() + self.batch_window_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=max(0.0, remaining)) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Request) and item.sampling == first.sampling:
                batch.append(item)
            else:
                self._queue.put(item)  # a call, a shutdown, or other sampling: after this batch
                break
        return batch

    @staticmethod
    def _settle(future: Future, fn: Callable[[], object]) -> None:
        """Run `fn` for a caller still waiting. Once running, its future can no longer be cancelled, so
        setting the result cannot raise InvalidStateError and end this thread."""
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as exc:
            future.set_exception(exc)

    def _ensure_adapter(self, ref: AdapterRef) -> None:
        current = self._loaded.get(ref.name)
        if current == ref:
            self._loaded.move_to_end(ref.name)
            return
        if current is not None:
            self._delete_adapter(ref.name)
        while len(self._loaded) >= self.cache_size:
            self._delete_adapter(next(iter(self._loaded)))
        assert self._adapters is not None
        self._adapters.load_adapter(ref.name, Path(ref.path), ref.strength)
        self._loaded[ref.name] = ref
        self.stats.adapter_loads += 1

    def _delete_adapter(self, name: str) -> None:
        if self._loaded.pop(name, None) is not None:
            assert self._adapters is not None
            self._adapters.delete_adapter(name)
            self.stats.adapter_evictions += 1

    def _generate_batch(self, batch: list[_Request]) -> None:
        assert self._adapters is not None
        made = self.stats.adapter_loads + self._adapters.folds_made
        try:
            self._answer_batch(batch)
        finally:
            if self.stats.adapter_loads + self._adapters.folds_made != made:
                release_freed_memory()

    def _answer_batch(self, batch: list[_Request]) -> None:
        names: list[str | None] = []
        live: list[_Request] = []
        for request in batch:
            try:
                if request.adapter is not None:
                    self._ensure_adapter(request.adapter)
                names.append(request.adapter.name if request.adapter else None)
                live.append(request)
            except Exception as exc:
                request.future.set_exception(exc)
        if not live:
            return
        try:
            replies = self._decode(live, names)
        except Exception as exc:
            log.exception("generation failed for a batch of %d", len(live))
            for request in live:
                request.future.set_exception(exc)
            return
        self.stats.batches += 1
        self.stats.requests += len(live)
        self.stats.largest_batch = max(self.stats.largest_batch, len(live))
        for request, messages in zip(live, replies, strict=True):
            request.future.set_result(messages)

    def _decode(self, batch: list[_Request], names: list[str | None]) -> list[list[str]]:
        assert self.model is not None and self.tokenizer is not None
        tokenizer = self.tokenizer
        width = max(len(r.prompt_ids) for r in batch)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        # Left padding: every row's last prompt token sits at the same position.
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, request in enumerate(batch):
            ids[row, width - len(request.prompt_ids):] = torch.tensor(request.prompt_ids)
            mask[row, width - len(request.prompt_ids):] = 1
        stop_ids = [tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|im_start|>")]
        plans = [RowPlan(r.max_new_tokens, r.soft_length, r.messages, r.go_on) for r in batch]

        def written(row: int, message: list[int]) -> None:
            if batch[row].on_message is not None:
                batch[row].on_message(tokenizer.decode(message, skip_special_tokens=True))

        assert self._adapters is not None
        with torch.inference_mode():
            if len(set(names)) == 1:  # one adapter (or none) for every row: its folds
                self._adapters.set_adapter(names[0])
                new = decode(self.model, ids, mask, plans, batch[0].sampling, stop_ids, pad, self._between, written)
            else:
                with self._adapters.mixed(names):
                    new = decode(self.model, ids, mask, plans, batch[0].sampling, stop_ids, pad, self._between,
                                 written)
        self.stats.capped += sum(any(len(m) >= r.max_new_tokens for m in row) for row, r in zip(new, batch, strict=True))
        return [[tokenizer.decode(message, skip_special_tokens=True) for message in row] for row in new]
