"""What the benchmarks share: memory readings, percentiles and stand-in user adapters."""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import traceback
from pathlib import Path

import torch
from peft import get_peft_model

from persona.model import load_base_model, lora_config
from twinbot.settings import Settings


def rss_mb() -> float:
    """This process's resident memory now, in MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def random_adapters(settings: Settings, root: Path, count: int) -> list[Path]:
    """`count` distinct random LoRAs of the product's shape (rank, target modules), saved like trained ones."""
    base, _ = load_base_model(settings, dtype=torch.float32)
    model = get_peft_model(base, lora_config(settings.lora_rank))
    paths = []
    for k in range(count):
        torch.manual_seed(k)
        for name, param in model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(param, std=0.02)
        model.save_pretrained(root / f"a{k}")
        paths.append(root / f"a{k}")
    return paths


def in_child(fn, args: tuple, threads: int):  # noqa: ANN001, ANN201
    """fn(*args) (a function or a coroutine function) in a fresh process, so its memory is its own.

    A child that raises, or dies without an answer (killed, out of memory), raises here instead of
    leaving the benchmark waiting forever.
    """
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    child = context.Process(target=_run_child, args=(fn, args, threads, out))
    child.start()
    while True:
        alive = child.is_alive()  # read before the wait: an answer sent just before exiting still counts
        try:
            failed, result = out.get(timeout=1.0)
            break
        except queue.Empty:
            if not alive:
                raise RuntimeError(f"the benchmark's child process died (exit code {child.exitcode})") from None
    child.join()
    if failed:
        raise RuntimeError(f"the benchmark's child process failed:\n{result}")
    return result


def _run_child(fn, args: tuple, threads: int, out: multiprocessing.Queue) -> None:  # noqa: ANN001
    torch.set_num_threads(threads)
    try:
        out.put((False, asyncio.run(fn(*args)) if asyncio.iscoroutinefunction(fn) else fn(*args)))
    except BaseException:
        out.put((True, traceback.format_exc()))
        raise
