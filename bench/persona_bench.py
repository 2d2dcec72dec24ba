"""Speed and memory of the language twin on this machine; prints one JSON object.

`python bench/persona_bench.py [--corpus office.jsonl] [--threads 2]`

Keys: reply_p50_s / reply_p95_s (up to 40 new tokens through the inference worker, a user adapter
active, the serving MODEL_DTYPE, to a one-line prompt; reply_tokens_p50 says how long they were),
reply_chat_p50_s / _p95_s / _tokens_p50 (the same to a busy group chat's prompt: 8 turns and 4 of
the owner's lines, reply_chat_prompt_tokens long), decode_tok_s_fp32 / _bf16 / _int8
(the worker's decoding loop, greedy), adapter_switch_hot_ms (the worker switching to another
loaded adapter's folds, as a lone reply for another twin does) / adapter_switch_cold_ms (reading
an adapter's files and making its folds), train_tok_s and
train_2000_messages_s (a twin trained on 2,000 real lines of the corpus's busiest speaker with
/train's settings, its recalled lines and the model load included; needs --corpus, see bench/office_corpus.py), rss_bot_mb
(the serving process with the model loaded) and rss_trainer_mb (peak of the training process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.shared import in_child, percentile, random_adapters, rss_mb  # noqa: E402
from persona.serving.decoding import RowPlan, decode  # noqa: E402
from persona.serving.folding import ServedAdapters, make_foldable  # noqa: E402
from persona.serving.worker import AdapterRef, InferenceWorker, Sampling  # noqa: E402
from persona.model import LORA_TARGETS, load_base_model, model_source  # noqa: E402
from persona.prompt import Turn, build_prompt_ids  # noqa: E402
from persona.serving.service import PROMPT_TOKENS  # noqa: E402
from twinbot.settings import Settings, load_settings  # noqa: E402

NEW_TOKENS = 40
CHAT_TURNS = 8
RETRIEVAL_EXAMPLES = 4
CHAT_LINES = ["honestly I think we should just order pizza again, nobody wants to cook tonight",
              "did anyone see the match last night? that last minute goal was unbelievable",
              "I'm running late, the train is stuck somewhere outside the station again",
              "can someone send me the photos from saturday, mine all came out blurry"]
FORCED = Sampling(do_sample=True, repetition_penalty=1.15)
GREEDY = Sampling(do_sample=False)


def decode_tok_s(settings: Settings, model_dtype: str, prompt: list[int], runs: int = 3) -> float:
    """New tokens a second through the worker's own decoding loop (greedy, NEW_TOKENS of them, no adapter)."""
    model, tokenizer = load_base_model(settings.model_copy(update={"model_dtype": model_dtype}))
    make_foldable(model, LORA_TARGETS)
    ids = torch.tensor([prompt])
    rates = []
    with torch.inference_mode():
        for _ in range(runs + 1):
            started = time.perf_counter()
            decode(model, ids, torch.ones_like(ids), [RowPlan(NEW_TOKENS)], GREEDY, [], tokenizer.eos_token_id)
            rates.append(NEW_TOKENS / (time.perf_counter() - started))
    return round(statistics.median(rates[1:]), 1)  # the first run pays one-off costs


def switch_ms(settings: Settings, adapters: list[Path]) -> tuple[float, float]:
    """Switching between two loaded adapters as a lone reply does (their folds made), and loading
    a new one from disk up to its folds, as its first lone reply pays."""
    model, _ = load_base_model(settings)
    make_foldable(model, LORA_TARGETS)
    served = ServedAdapters(model)
    for k in (0, 1):
        served.load_adapter(f"a{k}", adapters[k])
    hot = []
    with torch.inference_mode():
        for name in ("a0", "a1"):
            served.set_adapter(name)
        for k in range(40):
            started = time.perf_counter()
            served.set_adapter(f"a{k % 2}")
            hot.append((time.perf_counter() - started) * 1000)
    cold = []
    for k in range(2, len(adapters)):
        started = time.perf_counter()
        served.load_adapter(f"a{k}", adapters[k])
        with torch.inference_mode():
            served.set_adapter(f"a{k}")
        cold.append((time.perf_counter() - started) * 1000)
        served.delete_adapter(f"a{k}")
    return round(statistics.median(hot), 3), round(statistics.median(cold), 1)


async def reply_latencies(settings: Settings, prompts: dict[str, list[int]], adapter: Path, replies: int = 12
                          ) -> tuple[dict[str, list[float]], dict[str, list[int]], float]:
    """Replies to each prompt through the inference worker, their lengths in tokens (a reply that
    ends its turn early is shorter than NEW_TOKENS, and faster), and the serving process's memory
    with the model loaded."""
    worker = InferenceWorker.from_settings(settings)
    await worker.start()
    ref = AdapterRef("bench", str(adapter), 1.0)
    await worker.generate(next(iter(prompts.values())), ref, 4)
    times: dict[str, list[float]] = {name: [] for name in prompts}
    lengths: dict[str, list[int]] = {name: [] for name in prompts}
    for _ in range(replies):
        for name, prompt in prompts.items():
            started = time.perf_counter()
            (text,) = await worker.generate(prompt, ref, NEW_TOKENS, FORCED)  # one message, as before bursts
            times[name].append(time.perf_counter() - started)
            lengths[name].append(len(worker.tokenizer(text, add_special_tokens=False)["input_ids"]))
    memory = rss_mb()
    await worker.close()
    return times, lengths, memory


def chat_prompt(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """A prompt the size of a busy group chat's: RETRIEVAL_EXAMPLES of the owner's lines, CHAT_TURNS turns."""
    turns = [Turn(("Bo", "Cy", "Ana")[k % 3], f"{CHAT_LINES[k % len(CHAT_LINES)]} ({k})", k % 3 == 2)
             for k in range(CHAT_TURNS)]
    return build_prompt_ids(tokenizer, "Ana", turns, CHAT_LINES[:RETRIEVAL_EXAMPLES], PROMPT_TOKENS)


def train_2000(settings: Settings, corpus: Path) -> dict:
    """Runs in a child process, so its peak memory is the trainer's alone."""
    from persona.evaluation.suite import read_corpus, speaker_examples
    from persona.training.lora import TrainConfig, encode, train_adapter
    from persona.training.trainer import base_train_config
    from persona_store import open_store

    async def recalled(lines: list, speaker: str, cfg: TrainConfig) -> list:
        with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
            async with open_store(Path(tmp) / "bench.sqlite3") as store:
                return (await speaker_examples(store, lines, speaker, cfg))[1]

    lines = read_corpus(corpus)
    speaker = max({line.speaker for line in lines}, key=lambda s: sum(line.speaker == s for line in lines))
    own = [line.index for line in lines if line.speaker == speaker]
    started = time.perf_counter()
    cfg = base_train_config(settings, 0)
    examples = asyncio.run(recalled(lines[: own[1999] + 1], speaker, cfg))[:2000]
    base, tokenizer = load_base_model(settings, dtype=cfg.base_dtype)
    _, result = train_adapter(base, tokenizer, encode(tokenizer, speaker, examples, cfg.max_tokens), cfg)
    return {"train_2000_messages_s": round(time.perf_counter() - started, 1),
            "train_tok_s": round(result.tokens / result.seconds, 1), "train_steps": result.steps,
            "train_examples": len(examples), "rss_trainer_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="JSON lines {speaker, text}: times training on 2,000 lines")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = load_settings()
    settings = base.model_copy(update={"base_model": str(model_source(base)), "inference_threads": args.threads})
    report: dict = {"threads": args.threads}
    with tempfile.TemporaryDirectory(prefix="persona-bench-") as tmp:
        adapters = random_adapters(settings, Path(tmp), 8)
        _, tokenizer = load_base_model(settings)
        prompt = build_prompt_ids(tokenizer, "Ana", [Turn("Bo", "so what did you do this weekend?", False)], [], 256)
        chat = chat_prompt(tokenizer)
        for model_dtype, key in (("float32", "fp32"), ("bfloat16", "bf16"), ("int8", "int8")):
            report[f"decode_tok_s_{key}"] = decode_tok_s(settings, model_dtype, prompt)
        report["adapter_switch_hot_ms"], report["adapter_switch_cold_ms"] = switch_ms(settings, adapters)
        prompts = {"reply": prompt, "reply_chat": chat}
        times, lengths, report["rss_bot_mb"] = in_child(reply_latencies, (settings, prompts, adapters[0]), args.threads)
        for name in prompts:
            report[f"{name}_p50_s"] = round(statistics.median(times[name]), 3)
            report[f"{name}_p95_s"] = round(percentile(times[name], 0.95), 3)
            report[f"{name}_tokens_p50"] = statistics.median(lengths[name])
        report["reply_chat_prompt_tokens"] = len(chat)
    if args.corpus:
        report.update(in_child(train_2000, (settings, args.corpus), args.threads))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
