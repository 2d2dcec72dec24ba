"""The LoRA training loop of a twin: examples in, a peft adapter out, with checkpoints to resume from.

Free of stores and processes on purpose: the local worker and the Ray backend both call
`train_adapter` with a progress callback, and only they know where progress goes.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from array import array
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from peft import PeftModel, get_peft_model, set_peft_model_state_dict, get_peft_model_state_dict
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from persona.examples import Example
from persona.model import LORA_TARGETS, lora_config
from persona.prompt import build_training_ids, continue_training_ids
from twinbot.atomic import save_torch_atomically, write_dir_atomically

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "state.pt"
CHAINED_TOKENS_FACTOR = 2
TRAINING_ATTENTION = "eager"


@dataclass(frozen=True)
class TrainConfig:
    rank: int = 8
    # A twin sees its lines about once, so it needs a brisk rate; 1e-3 learned less (docs/benchmarks.md).
    learning_rate: float = 3e-3
    # The owner's lines a step, in however many sequences hold them (a sequence carries 1-3 on):
    # about two carried-on sequences, as good as more single examples and no more tokens.
    batch_lines: int = 6
    epochs: float = 1.0
    max_steps: int = 400
    max_minutes: float = 10.0
    # Room for the recalled lines (persona.retrieval) beside the chat.
    max_tokens: int = 160
    recalled_lines: int = 2
    recalled_chars: int = 100
    checkpoint_every_s: float = 30.0
    seed: int = 0
    bf16: bool = True
    targets: tuple[str, ...] = LORA_TARGETS
    """The layers the adapter changes: a twin's q/v (what serving folds), the chat voice's all."""

    @property
    def base_dtype(self) -> torch.dtype:
        """The dtype to load the frozen base in: with bf16 autocast, a bf16 base trains as well in half
        the memory, without casting every weight at every step."""
        return torch.bfloat16 if self.bf16 else torch.float32


@dataclass(frozen=True)
class Progress:
    step: int
    total_steps: int
    loss: float | None
    eta_s: float | None
    tokens_per_s: float
    budget_used: float = 0.0
    """The share of the time budget spent so far."""
    learning_rate: float | None = None

    @property
    def fraction(self) -> float:
        """How far the run is: by its steps, or by its time budget when that will end it first."""
        by_steps = self.step / self.total_steps if self.total_steps else 0.0
        return min(1.0, max(by_steps, self.budget_used))


def learning_rate_factor(step: int, done: float) -> float:
    """Warm up over 10 steps, then decay linearly to a tenth by the end of the run, `done` (0-1) being
    how far the run is by its steps or by its time budget, whichever ends it first.

    A decay planned over the steps alone left a run the budget stopped early (a large history, or a
    trainer starved by a busy bot) on a high learning rate.
    """
    return min(1.0, (step + 1) / 10) * max(0.1, 1 - done)


class TrainingStopped(Exception):
    """The progress callback asked to stop (job cancelled, or the worker is shutting down)."""


@dataclass(frozen=True)
class TrainResult:
    steps: int
    sequences: int
    final_loss: float | None
    seconds: float
    tokens: int
    resumed_from_step: int = 0

    def metrics(self) -> dict:
        data = asdict(self)
        data["tokens_per_s"] = round(self.tokens / self.seconds, 1) if self.seconds else 0.0
        return data


def encode(tokenizer: PreTrainedTokenizerBase, owner_name: str, examples: list[Example], max_tokens: int
           ) -> list[tuple[list[int], list[int]]]:
    """Token ids and labels of the training sequences, with the same prompt building replies use
    (a sequence's system prompt recalls its first example's `recalled` lines).

    An example whose context holds the previous example's line carries that example's sequence on
    (up to CHAINED_TOKENS_FACTOR x `max_tokens`) rather than starting a new one: in a busy chat the
    owner speaks every few turns, and repeating the turns two examples share wastes tokens. Each line
    is still learned once, after at least the turns it would have had alone (unless those were cut to
    fit the earlier example), as replies see longer chats too.
    """
    sequences: list[tuple[list[int], list[int]]] = []
    for example in examples:
        since = example.turns_since_previous
        if sequences and since is not None:
            turns = list(example.context[len(example.context) - since:])
            carried = continue_training_ids(tokenizer, sequences[-1], turns, example.target)
            if len(carried[0]) <= CHAINED_TOKENS_FACTOR * max_tokens:
                sequences[-1] = carried
                continue
        sequences.append(build_training_ids(tokenizer, owner_name, list(example.context), example.target,
                                            list(example.recalled), max_tokens))
    return sequences


def lines_in(labels: list[int]) -> int:
    """How many of the owner's lines a sequence teaches: each is one unbroken run of labels."""
    return sum(1 for k, label in enumerate(labels) if label != -100 and (k == 0 or labels[k - 1] == -100))


def bucketed_batches(lengths: list[int], lines: list[int], batch_lines: int, seed: int, window_batches: int = 16
                     ) -> list[list[int]]:
    """Sequences (by index) in shuffled batches of similar length, each teaching about `batch_lines` lines.

    A batch is padded to its longest sequence, and on a CPU every padded token costs as much as a
    real one; sorting within windows of a few batches (then shuffling the batches) keeps the
    randomness of the order while cutting most of the padding. Counting lines rather than
    sequences keeps a step's worth of learning the same whether a chat's lines carry on or not.
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    start = 0
    while start < len(order):
        end, window_lines = start, 0
        while end < len(order) and window_lines < batch_lines * window_batches:
            window_lines += lines[order[end]]
            end += 1
        batch: list[int] = []
        batch_count = 0
        for index in sorted(order[start:end], key=lengths.__getitem__):
            batch.append(index)
            batch_count += lines[index]
            if batch_count >= batch_lines:
                batches.append(batch)
                batch, batch_count = [], 0
        batches += [batch] if batch else []
        start = end
    rng.shuffle(batches)
    return batches


def pad_batch(items: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """One tensor batch, padded on the right (labels -100 there; the mask marks real tokens)."""
    width = max(len(ids) for ids, _ in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), -100, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, (i, l) in enumerate(items):
        ids[row, : len(i)] = torch.tensor(i)
        labels[row, : len(l)] = torch.tensor(l)
        mask[row, : len(i)] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def shared_prefix_length(batch: dict[str, torch.Tensor]) -> int:
    """How many leading tokens every row of the batch has in common, ending before the first scored position.

    Every example of a twin starts with the same persona system prompt (a third of its tokens in
    training), and a scoring batch of one twin with the same first lines of it. 0 when there is
    nothing worth sharing (one row, or rows that differ from the start).
    """
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    if ids.shape[0] < 2:
        return 0
    same = ((ids == ids[:1]) & (mask == 1)).all(0)
    common = int(same.long().cumprod(0).sum())
    labelled = labels != -100
    first_scored = int(labelled.long().argmax(1)[labelled.any(1)].min()) - 1 if labelled.any() else common
    return max(0, min(common, first_scored))


def labelled_nll(causal_lm: PreTrainedModel, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Negative log-likelihood of each labelled token under `causal_lm`, and the batch row it belongs to.

    Only the owner's words carry labels (a few of a hundred tokens), so the vocabulary projection,
    the costliest part of a step, runs on those positions alone. The prefix all rows share runs once,
    for one row, and the rows continue from its keys and values (repeated, so gradients flow back
    into it): the same values as running every row whole, to float rounding, in less time.
    """
    ids, mask = batch["input_ids"], batch["attention_mask"]
    start = shared_prefix_length(batch)
    if start:
        cache = DynamicCache()
        causal_lm.model(input_ids=ids[:1, :start], past_key_values=cache, use_cache=True)
        cache.batch_repeat_interleave(ids.shape[0])
        hidden = causal_lm.model(input_ids=ids[:, start:], attention_mask=mask, past_key_values=cache,
                                 use_cache=True).last_hidden_state
    else:
        hidden = causal_lm.model(input_ids=ids, attention_mask=mask).last_hidden_state
    targets = batch["labels"][:, start + 1:]
    scored = targets != -100
    logits = causal_lm.lm_head(hidden[:, :-1][scored]).float()
    nll = torch.nn.functional.cross_entropy(logits, targets[scored], reduction="none")
    rows = torch.arange(targets.shape[0]).unsqueeze(1).expand_as(targets)[scored]
    return nll, rows


def sequences_fingerprint(encoded: list[tuple[list[int], list[int]]]) -> str:
    """A digest of the training sequences, which a checkpoint must have been made from to resume them."""
    digest = hashlib.sha256()
    for ids, labels in encoded:
        digest.update(array("q", [len(ids), *ids, *labels]).tobytes())
    return digest.hexdigest()


@dataclass
class Checkpoint:
    """What resuming a run needs; saved as a dict of these fields, so the writer and the reader of a
    checkpoint name its contents in one place."""

    adapter: dict
    optimizer: dict
    step: int
    tokens: int
    seconds: float
    loss: float | None
    batches: list[list[int]]
    """The run's shuffled batch order, which a resumed run goes on with."""
    rng: torch.Tensor
    sequences: str
    """The sequences_fingerprint of what the run trains on: a checkpoint resumes only those."""

    def save(self, path: Path) -> None:
        save_torch_atomically(vars(self), path)


def read_checkpoint(path: Path) -> Checkpoint | None:
    """A checkpoint, or None (logged) when it cannot be read or lacks what resuming needs.

    Checkpoints are written atomically, so a damaged one means a damaged disk or a trainer too
    different from the one that wrote it; starting the job over loses minutes, failing it would
    lose the job.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        missing = {field.name for field in fields(Checkpoint)} - set(state)
    except Exception as exc:  # whatever the unpickler makes of a damaged file
        log.warning("the checkpoint %s cannot be read (%s); training starts over", path, exc)
        return None
    if missing:
        log.warning("the checkpoint %s lacks %s; training starts over", path, ", ".join(sorted(missing)))
        return None
    return Checkpoint(**{field.name: state[field.name] for field in fields(Checkpoint)})


def train_adapter(
    base: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    encoded: list[tuple[list[int], list[int]]],
    cfg: TrainConfig,
    *,
    progress: Callable[[Progress], bool] | None = None,
    checkpoint_dir: Path | None = None,
    on_checkpoint: Callable[[Path], None] | None = None,
) -> tuple[PeftModel, TrainResult]:
    """Train a fresh LoRA adapter on `base` (which it wraps in place); resumes from `checkpoint_dir`.

    `progress` is called after each step; returning False stops the run (a checkpoint is written
    first, so nothing is lost) by raising TrainingStopped. `on_checkpoint` gets the file of each
    checkpoint once it is written (the Ray backend ships it to the worker that owns the job).
    """
    if not encoded:
        raise ValueError("no training examples")
    torch.manual_seed(cfg.seed)
    # transformers' eager attention in bf16 rather than our fp32 SDPA, whose CPU backward pass is
    # slow; the losses agree.
    base.set_attn_implementation(TRAINING_ATTENTION)
    model = get_peft_model(base, lora_config(cfg.rank, cfg.targets))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)
    batches = bucketed_batches([len(ids) for ids, _ in encoded], [lines_in(labels) for _, labels in encoded],
                               cfg.batch_lines, cfg.seed)
    total = max(1, min(cfg.max_steps, math.ceil(len(batches) * cfg.epochs)))
    step, tokens, spent, loss_value = 0, 0, 0.0, None
    resumed_from = 0
    state_path = checkpoint_dir / CHECKPOINT_FILE if checkpoint_dir else None
    state = read_checkpoint(state_path) if state_path is not None and state_path.exists() else None
    fingerprint = sequences_fingerprint(encoded)
    if state is not None and state.sequences != fingerprint:
        # The owner's messages changed since (or the trainer encodes them differently): the saved
        # batch order names other sequences.
        log.warning("the checkpoint %s was made from other training sequences; training starts over", state_path)
        state = None
    if state is not None:
        set_peft_model_state_dict(model, state.adapter)
        optimizer.load_state_dict(state.optimizer)
        step, tokens, spent, loss_value, batches = state.step, state.tokens, state.seconds, state.loss, state.batches
        torch.set_rng_state(state.rng)
        resumed_from = step

    def checkpoint() -> None:
        if state_path is not None:
            Checkpoint(get_peft_model_state_dict(model), optimizer.state_dict(), step, tokens, spent, loss_value,
                       batches, torch.get_rng_state(), fingerprint).save(state_path)
            if on_checkpoint is not None:
                on_checkpoint(state_path)

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    started = time.monotonic() - spent
    last_checkpoint = time.monotonic()
    budget_s = cfg.max_minutes * 60
    while step < total and time.monotonic() - started < budget_s:
        batch = pad_batch([encoded[i] for i in batches[step % len(batches)]], pad_id)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = labelled_nll(model.get_base_model(), batch)[0].mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        done = max(step / total, (time.monotonic() - started) / budget_s)
        rate = cfg.learning_rate * learning_rate_factor(step, done)
        for group in optimizer.param_groups:
            group["lr"] = rate
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        tokens += int(batch["attention_mask"].sum())
        loss_value = float(loss.detach())
        spent = time.monotonic() - started
        steps_per_s = step / spent if spent else 0.0
        eta = min((total - step) / steps_per_s if steps_per_s else math.inf, budget_s - spent)
        if time.monotonic() - last_checkpoint >= cfg.checkpoint_every_s:
            checkpoint()
            last_checkpoint = time.monotonic()
        report = Progress(step, total, loss_value, max(0.0, eta), tokens / spent if spent else 0.0,
                          min(1.0, spent / budget_s), rate)
        if progress is not None and not progress(report):
            checkpoint()
            raise TrainingStopped(f"stopped at step {step} of {total}")
    model.eval()
    return model, TrainResult(step, len(encoded), loss_value, round(spent, 2), tokens, resumed_from)


def write_adapter(model: PeftModel, target: Path) -> Path:
    """Save the adapter so that `target` is never seen half-written.

    Each training job writes its own `target` (a new directory), so readers of the previous
    adapter are never disturbed; the caller records the new path and removes older ones.
    """
    return write_dir_atomically(target, lambda staging: model.save_pretrained(staging, safe_serialization=True))
