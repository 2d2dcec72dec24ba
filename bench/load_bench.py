"""Many users at once through the command layer: reply latency, throughput, event-loop lag, memory.

`python bench/load_bench.py [--users 10] [--messages 2] [--adapters 1000] [--no-sequential] [--no-load]
[--flood-requests 1000] [--flood-users 50]` prints one JSON object.

N simulated users, each with a trained-shape LoRA adapter of their own, act concurrently on the
real bundled model: they chat with their twins (one message after another, as people do), ask
`/status` and `/avatar`, and one of them starts `/train` (the real trainer process then competes
for the CPU). A ticker measures how late the event loop wakes up meanwhile. The same load runs
twice, with the batching inference worker (the settings' MAX_BATCH_SIZE) and one request at a
time (MAX_BATCH_SIZE=1), each on a fresh data dir. Then the inference worker alone serves 1, 4, 8
and 16 concurrent users (each with an adapter of their own), batched and one at a time, for the
throughput and p95 latency at each level. Last, --adapters users each ask their twin one thing, so
that many adapters pass through the LRU, and the bot's resident memory is read. The flood row: 50
users send 1,000 `/twin` at once while another user talks to their twin; it counts the twin answers
and the "busy" ones, and times the other user's replies against the same user's on an idle bot.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.shared import in_child, percentile, random_adapters, rss_mb  # noqa: E402
from bot.commands import CommandLayer, Event, Reply, open_services  # noqa: E402
from bot.commands.context import Busy  # noqa: E402
from bot.commands.twin import BUSY  # noqa: E402
from persona.serving.worker import AdapterRef, InferenceWorker  # noqa: E402
from persona.model import model_source  # noqa: E402
from persona.prompt import Turn, build_prompt_ids  # noqa: E402
from persona_store import NewMessage, Scope  # noqa: E402
from twinbot.settings import Settings, load_settings  # noqa: E402

LINES = ["hey, are you coming tonight?", "what did you think of the film", "ok but who's bringing snacks",
         "lol that's exactly what you said last time", "can you send me the notes from monday?"]
DISTINCT_ADAPTERS = 8
SWEEP_LEVELS = (1, 4, 8, 16)


class TimedOutbox:
    """An adapter stand-in that notes when the answer arrives and whether it was an error."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.arrived = asyncio.Event()

    async def send(self, reply: Reply) -> TimedOutbox:
        self.replies.append(reply)
        self.arrived.set()
        return self

    async def edit(self, reply: Reply) -> None:
        self.replies.append(reply)

    @property
    def message_id(self) -> str:
        return "bench"

    @contextlib.asynccontextmanager
    async def typing(self) -> AsyncIterator[None]:
        yield


def adapter_dir(sources: list[Path], root: Path, k: int) -> str:
    """User k's adapter dir: hard links to one of the distinct ones, so 1,000 cost no disk."""
    target = root / f"user{k}"
    if not target.exists():
        target.mkdir(parents=True)
        for file in sources[k % len(sources)].iterdir():
            os.link(file, target / file.name)
    return str(target)


def event(k: int, text: str, n: int) -> Event:
    return Event(platform="bench", user_id=f"u{k}", user_name=f"user{k}", chat_id=f"dm{k}", is_dm=True,
                 text=text, message_id=f"m{k}-{n}", ts=time.time())


async def command(layer: CommandLayer, ev: Event) -> TimedOutbox:
    out = TimedOutbox()
    invocation = layer.parse_text_command(ev)
    await (layer.on_message(ev, out) if invocation is None else layer.dispatch(invocation, out))
    return out


async def seed_users(layer: CommandLayer, sources: list[Path], root: Path, users: int) -> None:
    store = layer.ctx.store
    for k in range(users):
        user = await store.users.get_or_create("bench", f"u{k}", f"user{k}")
        await store.consent.set(user.id, Scope.LEARN, True)
        await store.adapters.record(user.id, adapter_dir(sources, root, k), None, "bench", 0, {})
    trainer = await store.users.get_or_create("bench", "u0", "user0")
    await store.messages.add_many([
        NewMessage(trainer.id, "bench", "old-chat", f"old{i}", "user0", True, float(i), f"{LINES[i % 5]} ({i})",
                   "import") for i in range(120)])


async def run_load(settings: Settings, sources: list[Path], users: int, messages: int, train: bool) -> dict:
    latencies: list[float] = []
    lags: list[float] = []
    errors: list[str] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append((time.perf_counter() - started - 0.01) * 1000)

    async def user(layer: CommandLayer, k: int) -> None:
        if train and k == 0:
            out = await command(layer, event(k, "/train", -1))
            errors.extend(r.text for r in out.replies if r.kind == "error")
        for m in range(messages):
            started = time.perf_counter()
            out = await command(layer, event(k, LINES[(k + m) % len(LINES)], m))
            if any(r.speaker is not None for r in out.replies):
                latencies.append(time.perf_counter() - started)
            else:
                errors.extend([r.text for r in out.replies] or ["no reply"])
        for text in ("/status", "/avatar"):
            out = await command(layer, event(k, text, 99))
            errors.extend(r.text for r in out.replies if r.kind == "error")

    with tempfile.TemporaryDirectory(prefix="load-bench-") as tmp:
        s = settings.model_copy(update={"data_dir": Path(tmp)})
        async with open_services(s, with_model=True, with_avatars=True, with_trainer=train) as services:
            layer = CommandLayer(s, services)
            await seed_users(layer, sources, Path(tmp) / "user-adapters", users)
            await command(layer, event(0, "warming up", -2))  # one-off costs (allocations, kernels)
            tick = asyncio.create_task(ticker())
            started = time.perf_counter()
            await asyncio.gather(*(user(layer, k) for k in range(users)))
            wall = time.perf_counter() - started
            done.set()
            await tick
            stats = services.twins.worker.stats
            await layer.close()
    return {"users": users, "reply_p50_s": round(percentile(latencies, 0.5), 3),
            "reply_p95_s": round(percentile(latencies, 0.95), 3), "replies_per_s": round(len(latencies) / wall, 3),
            "loop_lag_p50_ms": round(percentile(lags, 0.5), 2), "loop_lag_p99_ms": round(percentile(lags, 0.99), 2),
            "errors": len(errors), "error_samples": sorted(set(errors))[:3], "largest_batch": stats.largest_batch,
            "wall_s": round(wall, 1)}


async def sweep_worker(settings: Settings, sources: list[Path], levels: tuple[int, ...], rounds: int) -> dict:
    """The inference worker alone at 1, 4, 8, 16 concurrent users, each with an adapter of their own.

    Each user sends `rounds` requests one after another (a reply, then the next message). One
    worker (one model load) serves every level, so the batched and one-at-a-time sweeps differ only
    in MAX_BATCH_SIZE.
    """
    worker = InferenceWorker.from_settings(settings)
    await worker.start()
    assert worker.tokenizer is not None
    prompts = [build_prompt_ids(worker.tokenizer, f"user{k}", [Turn("friend", LINES[k % len(LINES)], False)], [], 256)
               for k in range(len(LINES))]
    refs = [AdapterRef(f"a{k}", str(path), 1.0) for k, path in enumerate(sources)]
    for ref in refs:  # load every adapter once: the sweep measures generation, not disk
        await worker.generate(prompts[0], ref, 1)
    results = {}
    for level in levels:
        latencies: list[float] = []

        async def client(k: int) -> None:
            for r in range(rounds):
                started = time.perf_counter()
                await worker.generate(prompts[(k + r) % len(prompts)], refs[k % len(refs)], settings.max_new_tokens)
                latencies.append(time.perf_counter() - started)

        torch.manual_seed(level)
        started = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(level)))
        wall = time.perf_counter() - started
        results[str(level)] = {"replies_per_s": round(len(latencies) / wall, 3),
                               "reply_p50_s": round(percentile(latencies, 0.5), 3),
                               "reply_p95_s": round(percentile(latencies, 0.95), 3)}
    await worker.close()
    return results


async def concurrency_sweep(settings: Settings, sources: list[Path], rounds: int) -> dict:
    """Batched vs one-at-a-time generation at each concurrency level, in one run."""
    batched = await sweep_worker(settings, sources, SWEEP_LEVELS, rounds)
    one_by_one = await sweep_worker(settings.model_copy(update={"max_batch_size": 1}), sources, SWEEP_LEVELS, rounds)
    return {level: {"batched": batched[level], "sequential": one_by_one[level],
                    "throughput_ratio": round(batched[level]["replies_per_s"] / one_by_one[level]["replies_per_s"], 2)}
            for level in batched}


async def memory_with_adapters(settings: Settings, sources: list[Path], count: int) -> dict:
    """`count` users ask their twin one short thing each: every adapter passes through the LRU."""
    with tempfile.TemporaryDirectory(prefix="load-bench-mem-") as tmp:
        s = settings.model_copy(update={"data_dir": Path(tmp), "max_new_tokens": 1,
                                        "twin_replies_per_minute": 10_000})
        async with open_services(s, with_model=True, with_avatars=False, with_trainer=False) as services:
            layer = CommandLayer(s, services)
            await seed_users(layer, sources, Path(tmp) / "user-adapters", count)
            before = rss_mb()
            samples = []
            for k in range(count):
                await command(layer, event(k, "hi", 0))
                if k % 100 == 99 or k == count - 1:
                    samples.append(rss_mb())
            stats = services.twins.worker.stats
            await layer.close()
    return {"rss_mb_before": before, "rss_mb_every_100": samples, "adapter_loads": stats.adapter_loads,
            "adapter_evictions": stats.adapter_evictions, "lru": settings.adapter_cache_size}


async def flood(settings: Settings, sources: list[Path], users: int, requests: int) -> dict:
    """`users` users send `requests` /twin at once; user `users` (not flooding) talks to their twin meanwhile."""
    busy_texts = {BUSY, str(Busy("message to a twin"))}
    with tempfile.TemporaryDirectory(prefix="load-bench-flood-") as tmp:
        s = settings.model_copy(update={"data_dir": Path(tmp)})
        async with open_services(s, with_model=True, with_avatars=False, with_trainer=False) as services:
            layer = CommandLayer(s, services)
            await seed_users(layer, sources, Path(tmp) / "user-adapters", users + 1)

            async def timed(k: int, text: str, n: int) -> tuple[TimedOutbox, float]:
                started = time.perf_counter()
                out = await command(layer, event(k, text, n))
                return out, time.perf_counter() - started

            async def other(rounds: int) -> list[float]:
                return [(await timed(users, f"/twin {LINES[r % len(LINES)]}", r))[1] for r in range(rounds)]

            idle = await other(3)
            started = time.perf_counter()
            sent = asyncio.gather(*(timed(k, f"/twin {LINES[n % len(LINES)]}", n)
                                    for k in range(users) for n in range(requests // users)))
            during = await other(3)
            replies = await sent
            wall = time.perf_counter() - started
            await layer.close()
    texts = [(out.replies[0].text if out.replies else "no reply", out, took) for out, took in replies]
    busy = [took for text, _, took in texts if text in busy_texts]
    answers = [took for _, out, took in texts if any(r.speaker is not None for r in out.replies)]
    return {"requests": len(replies), "users": users, "answered": len(answers), "busy": len(busy),
            "errors": len(replies) - len(answers) - len(busy), "busy_max_s": round(max(busy, default=0.0), 3),
            "answer_p95_s": round(percentile(answers, 0.95), 3), "other_idle_max_s": round(max(idle), 3),
            "other_during_max_s": round(max(during), 3), "wall_s": round(wall, 1)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--messages", type=int, default=2, help="messages each user sends, one after another")
    parser.add_argument("--adapters", type=int, default=1000, help="adapters on disk for the memory check")
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--sequential", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the load one request at a time, for the throughput ratio (slow at 200 users)")
    parser.add_argument("--sweep-rounds", type=int, default=3,
                        help="requests per user in the 1/4/8/16-user worker sweep (0 skips the sweep)")
    parser.add_argument("--load", action=argparse.BooleanOptionalAction, default=True,
                        help="run the mixed load of --users users (--no-load: only the other rows)")
    parser.add_argument("--flood-requests", type=int, default=1000, help="/twin sent at once (0 skips the flood)")
    parser.add_argument("--flood-users", type=int, default=50, help="how many users send the flood")
    args = parser.parse_args()
    base = load_settings()
    settings = base.model_copy(update={"base_model": str(model_source(base)), "max_new_tokens": args.max_new_tokens,
                                       "adapter_cache_size": max(base.adapter_cache_size, 1)})
    with tempfile.TemporaryDirectory(prefix="load-bench-adapters-") as tmp:
        sources = random_adapters(settings, Path(tmp), DISTINCT_ADAPTERS)
        batched = await run_load(settings, sources, args.users, args.messages, train=True) if args.load else {}
        print(json.dumps({"batched": batched}), file=sys.stderr)
        one_by_one = None
        if args.load and args.sequential:
            one_by_one = await run_load(settings.model_copy(update={"max_batch_size": 1}), sources, args.users,
                                        args.messages, train=True)
            print(json.dumps({"sequential": one_by_one}), file=sys.stderr)
        sweep = await concurrency_sweep(settings, sources, args.sweep_rounds) if args.sweep_rounds else None
        if sweep:
            print(json.dumps({"sweep": sweep}), file=sys.stderr)
        flooded = await flood(settings, sources, args.flood_users, args.flood_requests) if args.flood_requests else None
        print(json.dumps({"flood": flooded}), file=sys.stderr)
        # In a fresh process: this one still holds what the load runs and the sweep allocated.
        memory = in_child(memory_with_adapters, (settings, sources, args.adapters), settings.inference_threads
                          ) if args.adapters else {}
    report = {
        **{k: batched.get(k) for k in ("users", "loop_lag_p50_ms", "loop_lag_p99_ms", "reply_p50_s", "reply_p95_s",
                                       "replies_per_s", "errors")},
        "rss_mb_1000_adapters": memory.get("rss_mb_every_100", [None])[-1],
        "batched_vs_sequential_throughput":
            round(batched["replies_per_s"] / one_by_one["replies_per_s"], 2) if one_by_one else None,
        "batched": batched, "sequential": one_by_one, "worker_sweep": sweep, "memory": memory, "flood": flooded,
        "max_new_tokens": args.max_new_tokens, "inference_threads": settings.inference_threads,
        "max_batch_size": settings.max_batch_size,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main())
