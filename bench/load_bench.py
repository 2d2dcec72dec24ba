"""Many users at once on the real base model: reply latency, throughput, event-loop lag, adapter memory.

`python bench/load_bench.py [--users 16] [--messages 2] [--adapters 1000]` prints one JSON object.

Every simulated user owns a different LoRA adapter and chats with their twin (one message after
another, as people do). The same load runs twice in this process: through the batching inference
worker (the product's settings) and one request at a time (max batch 1), for each concurrency in
1, 4, 8, ... up to --users; the top-level keys are for --users concurrent users. While replies are
generated, a ticker measures how late the event loop wakes up (it must stay responsive). Last,
--adapters adapter directories are requested one after another through the LRU and the process's
resident memory is read: it must stay near the LRU bound, not grow with the number on disk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from peft import get_peft_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from persona.generate import AdapterRef, InferenceWorker  # noqa: E402
from persona.model import load_base_model, lora_config  # noqa: E402
from persona.prompt import Turn, build_prompt_ids  # noqa: E402
from twinbot.settings import load_settings  # noqa: E402

LINES = ["hey, are you coming tonight?", "what did you think of the film", "ok but who's bringing snacks",
         "lol that's exactly what you said last time", "can you send me the notes from monday?"]


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def make_adapters(settings, root: Path, count: int) -> list[AdapterRef]:  # noqa: ANN001
    """`count` adapter dirs: 8 distinct random LoRAs, hard-linked so 1,000 cost no extra disk."""
    base, _ = load_base_model(settings, dtype=torch.float32)
    model = get_peft_model(base, lora_config(settings.lora_rank))
    originals = []
    for k in range(min(8, count)):
        torch.manual_seed(k)
        for name, param in model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(param, std=0.02)
        model.save_pretrained(root / f"u{k}")
        originals.append(root / f"u{k}")
    refs = []
    for k in range(count):
        target = root / f"u{k}"
        if not target.exists():
            target.mkdir()
            for file in originals[k % len(originals)].iterdir():
                os.link(file, target / file.name)
        refs.append(AdapterRef(f"user{k}", str(target), 1.0))
    return refs


async def run_load(worker: InferenceWorker, prompts: list[list[int]], adapters: list[AdapterRef], users: int,
                   messages: int, max_new_tokens: int) -> dict:
    latencies: list[float] = []
    lags: list[float] = []
    errors = 0
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append((time.perf_counter() - started - 0.01) * 1000)

    async def user(k: int) -> None:
        nonlocal errors
        for m in range(messages):
            started = time.perf_counter()
            try:
                await worker.generate(prompts[(k + m) % len(prompts)], adapters[k % len(adapters)], max_new_tokens)
                latencies.append(time.perf_counter() - started)
            except Exception:
                errors += 1

    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    await asyncio.gather(*(user(k) for k in range(users)))
    wall = time.perf_counter() - started
    done.set()
    await tick
    return {"users": users, "reply_p50_s": round(percentile(latencies, 0.5), 3),
            "reply_p95_s": round(percentile(latencies, 0.95), 3), "replies_per_s": round(len(latencies) / wall, 3),
            "loop_lag_p50_ms": round(percentile(lags, 0.5), 2), "loop_lag_p99_ms": round(percentile(lags, 0.99), 2),
            "errors": errors}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--messages", type=int, default=2, help="messages each user sends, one after another")
    parser.add_argument("--adapters", type=int, default=1000, help="adapters on disk for the memory check")
    parser.add_argument("--max-new-tokens", type=int, default=40)
    args = parser.parse_args()
    settings = load_settings()
    levels = sorted({1, *[n for n in (4, 8, 16, 32, 64) if n < args.users], args.users})

    with tempfile.TemporaryDirectory(prefix="load-bench-") as tmp:
        adapters = make_adapters(settings, Path(tmp), max(args.adapters, args.users))

        def worker(max_batch: int) -> InferenceWorker:
            return InferenceWorker(lambda: load_base_model(settings), threads=settings.inference_threads,
                                   cache_size=max(settings.adapter_cache_size, args.users),
                                   batch_window_s=settings.batch_window_ms / 1000, max_batch=max_batch)

        batched, sequential = worker(settings.max_batch_size), worker(1)
        await batched.start()
        await sequential.start()
        tokenizer = batched.tokenizer
        prompts = [build_prompt_ids(tokenizer, "Ana", [Turn("Bo", line, False)], [], 256) for line in LINES]
        for warm in (batched, sequential):  # first calls pay one-off costs (allocations, kernels)
            await warm.generate(prompts[0], adapters[0], 4)
        runs = []
        for users in levels:
            users_adapters = adapters[:users]
            b = await run_load(batched, prompts, users_adapters, users, args.messages, args.max_new_tokens)
            s = await run_load(sequential, prompts, users_adapters, users, args.messages, args.max_new_tokens)
            runs.append({"users": users, "batched": b, "sequential": s,
                         "batched_vs_sequential_throughput": round(b["replies_per_s"] / s["replies_per_s"], 2)})
            print(json.dumps(runs[-1]), file=sys.stderr)
        await sequential.close()

        lru = settings.adapter_cache_size
        memory_worker = InferenceWorker(lambda: load_base_model(settings), threads=settings.inference_threads,
                                        cache_size=lru, batch_window_s=0.0, max_batch=1)
        await batched.close()
        await memory_worker.start()
        before = rss_mb()
        samples = []
        for k, ref in enumerate(adapters[: args.adapters]):
            await memory_worker.generate(prompts[0], ref, 1)  # loads it through the LRU, as a reply would
            if k % 100 == 99:
                samples.append(round(rss_mb(), 1))
        await memory_worker.close()

    top = runs[-1]
    report = {
        "users": top["users"], **{k: top["batched"][k] for k in ("loop_lag_p50_ms", "loop_lag_p99_ms", "reply_p50_s",
                                                                  "reply_p95_s", "replies_per_s", "errors")},
        "rss_mb_1000_adapters": samples[-1] if samples else round(rss_mb(), 1),
        "rss_mb_before_adapters": round(before, 1), "rss_mb_every_100_adapters": samples,
        "adapter_lru": lru, "adapters_on_disk": args.adapters,
        "batched_vs_sequential_throughput": top["batched_vs_sequential_throughput"],
        "levels": runs, "max_new_tokens": args.max_new_tokens, "threads": settings.inference_threads,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main())
