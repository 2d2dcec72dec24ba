"""Preference-tune the chat voice against its own replies: a person's real next line preferred to the voice's.

Trained on real chats alone (persona.training.voice), the voice writes plausible, polished and
generic lines: readers told them from real ones by exactly that. Here each pair is one prompt as
a twin sees it (persona prompt, recalled lines, the chat), the real next line as the chosen reply
and the voice's own sampled reply, drawn by the product's inference worker, as the rejected one.
The shipped voice adapter goes on training with DPO (Rafailov et al. 2023; self-play pairs as in SPIN,
Chen et al. 2024), its starting weights as the reference, plus the chosen line's loss per token
(as RPO adds it) so that both lines' likelihoods do not fall together.

`python -m persona.training.preference --corpus chitchat-shippable.jsonl --pairs 2000 --out DIR` writes the tuned
adapter, the run's figures and the drawn replies to DIR. The shipped voice is not tuned so: blind readers
found its replies no more human, and it lowered the base's likelihood of real lines (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import PeftModel
from torch.nn import functional
from tqdm import tqdm
from transformers import PreTrainedTokenizerBase

from persona.examples import Example
from persona.model import BUNDLED, CHAT_VOICE_DIR, load_base_model
from persona.prompt import build_prompt_ids, build_training_ids
from persona.serving.service import PROMPT_TOKENS, acceptable, clean_reply, normalised, reply_length
from persona.serving.worker import InferenceWorker, Sampling
from persona.training.lora import TRAINING_ATTENTION, TrainConfig, labelled_nll, learning_rate_factor, pad_batch
from persona.training.voice import named, read_lines, ship, voice_examples
from twinbot.settings import Settings, load_settings

Encoded = tuple[list[int], list[int]]


@dataclass(frozen=True)
class Pair:
    """One prompt's real next line (chosen) and the voice's own reply (rejected), as training ids."""

    chosen: Encoded
    rejected: Encoded


def pair_scores(model: torch.nn.Module, pairs: list[Pair], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each pair's summed log-likelihood of its chosen and its rejected reply (pairs x 2, the end of turn
    included), and the chosen replies' mean loss per token."""
    sequences = [seq for pair in pairs for seq in (pair.chosen, pair.rejected)]
    nll, rows = labelled_nll(model, pad_batch(sequences, pad_id))
    nll = nll.float()
    logps = -torch.zeros(len(sequences)).index_add(0, rows, nll)
    return logps.view(-1, 2), nll[rows % 2 == 0].mean()


def dpo_loss(policy: torch.Tensor, reference: torch.Tensor, chosen_nll: torch.Tensor, beta: float,
             sft_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """DPO's loss for pairs whose (chosen, rejected) log-likelihoods are `policy` and `reference` (pairs x 2),
    plus `sft_weight` x the chosen lines' mean loss per token; and how often the policy prefers the chosen
    line by more than the reference did (the pairs' reward accuracy)."""
    margin = beta * ((policy[:, 0] - reference[:, 0]) - (policy[:, 1] - reference[:, 1]))
    loss = -functional.logsigmoid(margin).mean() + sft_weight * chosen_nll
    return loss, (margin > 0).float().mean()


def pairs_from(tokenizer: PreTrainedTokenizerBase, owner_of: list[str], examples: list[Example], replies: list[str],
               max_tokens: int) -> list[Pair]:
    """Training pairs of the examples whose drawn reply is a message worth sending and differs from
    the real line (a reply the product would not send teaches nothing about the ones it does)."""
    pairs = []
    for owner, example, reply in zip(owner_of, examples, replies, strict=True):
        text = clean_reply(reply, owner)
        chat = [turn.text for turn in example.context]
        if not acceptable(text, list(example.recalled), chat) or normalised(text) == normalised(example.target):
            continue
        chosen, rejected = (build_training_ids(tokenizer, owner, list(example.context), target,
                                               list(example.recalled), max_tokens) for target in (example.target, text))
        pairs.append(Pair(chosen, rejected))
    return pairs


async def draw_replies(settings: Settings, prompts: list[list[int]], progress: bool) -> list[str]:
    """The voice's reply to each prompt, through the product's inference worker (its sampler and batching),
    as long as an instant twin's, whose owner's usual length is unknown."""
    length = reply_length([], settings.max_new_tokens)
    worker = InferenceWorker.from_settings(settings)
    await worker.start()
    replies: list[str] = []
    try:
        with tqdm(total=len(prompts), desc="drawing the voice's replies", disable=not progress) as bar:
            for start in range(0, len(prompts), settings.max_batch_size):
                chunk = prompts[start: start + settings.max_batch_size]
                drawn = await asyncio.gather(*(worker.generate(ids, None, length.cap, Sampling(), length.soft)
                                               for ids in chunk))
                replies += [messages[0] if messages else "" for messages in drawn]
                bar.update(len(chunk))
    finally:
        await worker.close()
    return replies


def train_preference(model: PeftModel, pairs: list[Pair], pad_id: int, cfg: TrainConfig, *, beta: float,
                     sft_weight: float, batch_pairs: int, progress: bool) -> dict:
    """Go on training `model`'s adapter on `pairs` for one pass (or `cfg.max_minutes`), its weights at the
    start as the reference; returns the run's figures."""
    torch.manual_seed(cfg.seed)
    order = list(range(len(pairs)))
    random.Random(cfg.seed).shuffle(order)
    batches = [[pairs[i] for i in order[start: start + batch_pairs]] for start in range(0, len(order), batch_pairs)]
    inner = model.get_base_model()
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
        reference = [pair_scores(inner, batch, pad_id)[0] for batch in
                     tqdm(batches, desc="reference", disable=not progress)]
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)
    started, budget = time.monotonic(), cfg.max_minutes * 60
    accuracies: list[float] = []
    losses: list[float] = []
    bar = tqdm(total=len(batches), desc="preference", disable=not progress)
    for step, batch in enumerate(batches):
        if time.monotonic() - started > budget:
            break
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            policy, chosen_nll = pair_scores(inner, batch, pad_id)
        loss, accuracy = dpo_loss(policy, reference[step], chosen_nll, beta, sft_weight)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        done = max(step / len(batches), (time.monotonic() - started) / budget)
        for group in optimizer.param_groups:
            group["lr"] = cfg.learning_rate * learning_rate_factor(step, done)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        accuracies.append(float(accuracy))
        recent = slice(-50, None)
        bar.update()
        bar.set_postfix(loss=f"{sum(losses[recent]) / len(losses[recent]):.3f}",
                        acc=f"{sum(accuracies[recent]) / len(accuracies[recent]):.2f}")
    bar.close()
    model.eval()
    tail = max(1, len(losses) // 10)
    return {"steps": len(losses), "batches": len(batches), "seconds": round(time.monotonic() - started, 1),
            "first_loss": round(sum(losses[:tail]) / tail, 4) if losses else math.nan,
            "last_loss": round(sum(losses[-tail:]) / tail, 4) if losses else math.nan,
            "last_reward_accuracy": round(sum(accuracies[-tail:]) / tail, 3) if accuracies else math.nan}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m persona.training.preference", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="bench/chitchat_corpus.py --only shippable output")
    parser.add_argument("--out", type=Path, required=True, help="where the tuned voice adapter is written")
    parser.add_argument("--pairs", type=int, default=2000, help="prompts to draw a reply for")
    parser.add_argument("--minutes", type=float, default=15.0, help="training time budget")
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--sft-weight", type=float, default=0.2)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--batch-pairs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not (CHAT_VOICE_DIR / "adapter_config.json").is_file():
        print(f"preference: no voice adapter in {CHAT_VOICE_DIR}", file=sys.stderr)
        return 1
    try:
        lines = named(read_lines(args.corpus), args.seed)
    except (OSError, ValueError) as exc:
        print(f"preference: {exc}", file=sys.stderr)
        return 1
    cfg = TrainConfig(learning_rate=args.learning_rate, max_minutes=args.minutes, seed=args.seed)
    per_speaker = asyncio.run(voice_examples(lines, cfg))
    flat = [(name, example) for name, examples in per_speaker for example in examples]
    chosen = random.Random(args.seed).sample(flat, min(args.pairs, len(flat)))
    # The plain bundled base with the shipped voice adapter on top, trained on; the replies are drawn from
    # the same voice merged into the base, as twins serve it.
    base, tokenizer = load_base_model(load_settings(base_model=BUNDLED, chat_voice=False), dtype=cfg.base_dtype)
    prompts = [build_prompt_ids(tokenizer, name, list(example.context), list(example.recalled), PROMPT_TOKENS)
               for name, example in chosen]
    replies = asyncio.run(draw_replies(load_settings(), prompts, progress=True))
    pairs = pairs_from(tokenizer, [name for name, _ in chosen], [example for _, example in chosen], replies,
                       cfg.max_tokens)
    base.set_attn_implementation(TRAINING_ATTENTION)
    model = PeftModel.from_pretrained(base, CHAT_VOICE_DIR, is_trainable=True)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    report = train_preference(model, pairs, pad_id, cfg, beta=args.beta, sft_weight=args.sft_weight,
                              batch_pairs=args.batch_pairs, progress=True)
    ship(model, args.out / "adapter")
    report = {"corpus": args.corpus.name, "prompts": len(chosen), "pairs": len(pairs), "beta": args.beta,
              "sft_weight": args.sft_weight, "learning_rate": args.learning_rate, "batch_pairs": args.batch_pairs,
              **report}
    (args.out / "preference.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "samples.jsonl").write_text("".join(
        json.dumps({"real": example.target, "voice": reply}) + "\n" for (_, example), reply in zip(chosen, replies)))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
