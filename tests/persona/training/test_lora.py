"""The LoRA loop on a tiny real model: it learns, it resumes from checkpoints, adapters land whole."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from peft import PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

from persona.training import lora
from persona.examples import Example
from persona.training.lora import (
    CHECKPOINT_FILE,
    Progress,
    TrainConfig,
    TrainingStopped,
    bucketed_batches,
    encode,
    labelled_nll,
    lines_in,
    pad_batch,
    read_checkpoint,
    shared_prefix_length,
    train_adapter,
    write_adapter,
)
from persona.model import lora_config
from persona.prompt import Turn

torch.set_num_threads(1)


def examples(n: int = 24) -> list[Example]:
    return [Example((Turn("Bo", f"what's up {i}?", False),), "quack quack, said the duck") for i in range(n)]


def load(tiny_model_dir: Path):  # noqa: ANN201
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)


def test_training_lowers_the_loss_on_the_owners_lines(tiny_model_dir: Path, tokenizer) -> None:  # noqa: ANN001
    encoded = encode(tokenizer, "Ana", examples(), 64)
    cfg = TrainConfig(max_steps=40, learning_rate=3e-2, batch_lines=8, bf16=False, epochs=100)
    losses = []
    model, result = train_adapter(load(tiny_model_dir), tokenizer, encoded, cfg,
                                  progress=lambda p: losses.append(p.loss) or True)
    assert result.steps == 40 and len(losses) == 40
    # A random-init model starts near ln(vocab) = 10.8 nats; LoRA on q,v of a 2-layer toy moves it ~0.5 nats.
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.4


def test_a_stopped_run_resumes_from_its_checkpoint(tiny_model_dir: Path, tokenizer, tmp_path: Path) -> None:  # noqa: ANN001
    encoded = encode(tokenizer, "Ana", examples(), 64)
    cfg = TrainConfig(max_steps=12, batch_lines=4, bf16=False, epochs=100, checkpoint_every_s=1000)
    with pytest.raises(TrainingStopped):
        train_adapter(load(tiny_model_dir), tokenizer, encoded, cfg, checkpoint_dir=tmp_path,
                      progress=lambda p: p.step < 5)
    steps = []
    _, result = train_adapter(load(tiny_model_dir), tokenizer, encoded, cfg, checkpoint_dir=tmp_path,
                              progress=lambda p: steps.append(p.step) or True)
    assert result.resumed_from_step == 5 and steps == list(range(6, 13)) and result.steps == 12


def test_a_checkpoint_of_other_sequences_starts_the_run_over(tiny_model_dir: Path, tokenizer, tmp_path: Path
                                                             ) -> None:  # noqa: ANN001
    """The owner wrote more since the job started: the saved batch order would name other sequences."""
    cfg = TrainConfig(max_steps=12, batch_lines=4, bf16=False, epochs=100, checkpoint_every_s=1000)
    with pytest.raises(TrainingStopped):
        train_adapter(load(tiny_model_dir), tokenizer, encode(tokenizer, "Ana", examples(), 64), cfg,
                      checkpoint_dir=tmp_path, progress=lambda p: p.step < 5)
    more = encode(tokenizer, "Ana", examples(30), 64)
    _, result = train_adapter(load(tiny_model_dir), tokenizer, more, cfg, checkpoint_dir=tmp_path)
    assert result.resumed_from_step == 0 and result.steps == 12


def test_a_checkpoint_lacking_what_resuming_needs_starts_the_run_over(tiny_model_dir: Path, tokenizer, tmp_path: Path
                                                                      ) -> None:  # noqa: ANN001
    """A checkpoint written by a trainer that kept less (no batch order, say) is not resumed half-way."""
    cfg = TrainConfig(max_steps=12, batch_lines=4, bf16=False, epochs=100, checkpoint_every_s=1000)
    encoded = encode(tokenizer, "Ana", examples(), 64)
    with pytest.raises(TrainingStopped):
        train_adapter(load(tiny_model_dir), tokenizer, encoded, cfg, checkpoint_dir=tmp_path,
                      progress=lambda p: p.step < 5)
    saved = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=False)
    assert read_checkpoint(tmp_path / CHECKPOINT_FILE).step == 5
    del saved["batches"]
    torch.save(saved, tmp_path / CHECKPOINT_FILE)
    assert read_checkpoint(tmp_path / CHECKPOINT_FILE) is None
    _, result = train_adapter(load(tiny_model_dir), tokenizer, encoded, cfg, checkpoint_dir=tmp_path)
    assert result.resumed_from_step == 0 and result.steps == 12


def test_a_sequence_recalls_its_first_lines_recalled_lines(tokenizer) -> None:  # noqa: ANN001
    chat = [Example((Turn("Bo", "boats?", False),), "sailing, always", recalled=("I love sailing boats",)),
            Example((Turn("Bo", "and you?", False),), "me too", 1, recalled=("me neither",))]
    (ids, labels), = encode(tokenizer, "Ana", chat, 96)
    text = tokenizer.decode(ids)
    assert text.count("Things Ana has said before:\n- I love sailing boats") == 1
    assert "me neither" not in text  # a carried-on line keeps the sequence's system prompt
    assert tokenizer.decode([t for t in labels if t != -100]).count("sailing, always") == 1


def test_the_time_budget_stops_training_with_its_learning_rate_decayed(tiny_model_dir: Path, tokenizer,
                                                                        monkeypatch: pytest.MonkeyPatch
                                                                        ) -> None:  # noqa: ANN001
    """On a clock that moves 0.05 s a step, so a busy machine cannot make the run too short to tell."""
    now = [0.0]
    monkeypatch.setattr(lora, "time", SimpleNamespace(monotonic=lambda: now[0]))
    cfg = TrainConfig(max_steps=10_000, max_minutes=0.02, batch_lines=2, bf16=False, epochs=1000)
    reports: list[Progress] = []

    def tick(report: Progress) -> bool:
        reports.append(report)
        now[0] += 0.05
        return True

    _, result = train_adapter(load(tiny_model_dir), tokenizer, encode(tokenizer, "Ana", examples(), 64), cfg,
                              progress=tick)
    assert result.steps == 24 and result.seconds == pytest.approx(1.15)
    last = reports[-1]
    # The budget, not the steps, ended it (its last report came one tick before the budget ran out).
    assert last.step < last.total_steps / 10 and last.fraction > 0.95
    assert last.learning_rate <= 0.15 * cfg.learning_rate  # decayed as if the steps had ended there
    fractions = [p.fraction for p in reports]
    assert fractions == sorted(fractions)
    rates = [p.learning_rate for p in reports]
    assert max(rates) > 0.5 * cfg.learning_rate and rates[-1] < rates[len(rates) // 2] < max(rates)


def test_adapter_is_written_whole_and_reloads(tiny_model_dir: Path, tokenizer, tmp_path: Path) -> None:  # noqa: ANN001
    cfg = TrainConfig(max_steps=3, batch_lines=4, bf16=False)
    model, _ = train_adapter(load(tiny_model_dir), tokenizer, encode(tokenizer, "Ana", examples(8), 64), cfg)
    target = write_adapter(model, tmp_path / "7" / "job1")
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in target.iterdir()}
    assert [p.name for p in target.parent.iterdir()] == ["job1"]  # no staging dir left behind
    reloaded = PeftModel.from_pretrained(load(tiny_model_dir), target)
    ids = torch.tensor([tokenizer("hello there")["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, reloaded(input_ids=ids).logits, atol=1e-5)


def test_batches_group_similar_lengths_and_count_lines_without_losing_any() -> None:
    lengths = [random.Random(i).randint(10, 250) for i in range(400)]
    lines = [1 + length // 100 for length in lengths]  # longer sequences carry more lines on
    batches = bucketed_batches(lengths, lines, 6, seed=3)
    assert sorted(i for batch in batches for i in batch) == list(range(400))
    short = [batch for batch in batches if sum(lines[i] for i in batch) < 6]
    assert len(short) <= len(batches) // 16 + 1  # only a window's last batch may fall short
    assert all(sum(lines[i] for i in batch[:-1]) < 6 for batch in batches)  # none takes more than it needs

    def padding(bs: list[list[int]]) -> int:
        return sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in bs)

    shuffled = list(range(400))
    random.Random(3).shuffle(shuffled)
    sizes = [len(b) for b in batches]
    unsorted = [shuffled[sum(sizes[:k]): sum(sizes[:k + 1])] for k in range(len(sizes))]
    assert padding(batches) < padding(unsorted) / 3
    assert [len(b) for b in batches] != sorted(len(b) for b in batches)  # still shuffled, not one long sort


def test_a_job_trains_with_the_settings_unless_it_asks_otherwise(settings) -> None:  # noqa: ANN001
    from persona.training.trainer import train_config
    from persona_store import JobState, TrainingJob

    s = settings.model_copy(update={"train_epochs": 3.0, "train_max_steps": 120, "lora_rank": 4})
    plain = TrainingJob(1, 1, JobState.QUEUED, 0.0, 0, 0, None, None, None, params={"examples": 80})
    asked = TrainingJob(2, 1, JobState.QUEUED, 0.0, 0, 0, None, None, None, params={"epochs": 2, "max_steps": 7})
    assert (train_config(s, plain).epochs, train_config(s, plain).max_steps, train_config(s, plain).rank) == (3.0, 120, 4)
    assert (train_config(s, asked).epochs, train_config(s, asked).max_steps) == (2.0, 7)


def test_the_shared_prefix_stops_before_the_first_scored_token_and_at_padding() -> None:
    def batch(rows: list[tuple[list[int], list[int]]]) -> dict[str, torch.Tensor]:
        return pad_batch(rows, 0)

    a = ([5, 6, 7, 8, 9], [-100, -100, -100, 8, 9])
    b = ([5, 6, 7, 1, 2, 3], [-100, -100, -100, -100, 2, 3])
    assert shared_prefix_length(batch([a, b])) == 2  # token 7 is where row a's first label is predicted
    assert shared_prefix_length(batch([b, ([5, 6, 7, 1], [-100, -100, -100, -100])])) == 3
    assert shared_prefix_length(batch([([0, 1], [-100, 1]), ([0], [-100])])) == 0  # the pad (0) is not shared
    assert shared_prefix_length(batch([a])) == 0
    assert shared_prefix_length(batch([a, ([4, 6, 7, 8, 9], a[1])])) == 0


def test_sharing_the_prompt_prefix_gives_every_rows_own_loss_and_gradients(tiny_model_dir: Path, tokenizer) -> None:  # noqa: ANN001
    """A batch run with its common prefix computed once must equal each row run alone, gradients included."""
    torch.manual_seed(0)
    model = get_peft_model(load(tiny_model_dir), lora_config(4))
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)  # a non-zero adapter, so the prefix's keys depend on it
    varied = [Example(tuple(Turn("Bo", "hi " * (i + 1), False) for _ in range(i % 3 + 1)), f"line {i} " * (i + 1))
              for i in range(5)]
    encoded = encode(tokenizer, "Ana", varied, 96)
    batch = pad_batch(encoded, tokenizer.eos_token_id)
    assert shared_prefix_length(batch) > 10
    params = [p for p in model.parameters() if p.requires_grad]

    nll, rows = labelled_nll(model.get_base_model(), batch)
    shared_grads = torch.autograd.grad(nll.sum(), params)
    alone = [labelled_nll(model.get_base_model(), pad_batch([item], tokenizer.eos_token_id))[0] for item in encoded]
    alone_grads = torch.autograd.grad(sum(n.sum() for n in alone), params)

    assert torch.equal(rows, torch.cat([torch.full((len(n),), k) for k, n in enumerate(alone)]))
    torch.testing.assert_close(nll, torch.cat(alone), rtol=1e-5, atol=1e-5)
    for shared, whole in zip(shared_grads, alone_grads, strict=True):
        torch.testing.assert_close(shared, whole, rtol=1e-4, atol=1e-6)


def test_examples_that_follow_each_other_share_one_sequence_up_to_twice_max_tokens(tokenizer) -> None:  # noqa: ANN001
    from persona.examples import build_examples
    from persona_store import StoredMessage

    lines = [("Bo" if i % 2 else "Ana", f"line {i} " * (1 + i % 4)) for i in range(40)]
    messages = [StoredMessage(i, 1, "console", "c", str(i), who, who == "Ana", float(i), text, "live", None, False)
                for i, (who, text) in enumerate(lines)]
    chained = build_examples(messages)
    alone = [Example(e.context, e.target) for e in chained]
    sequences, singles = encode(tokenizer, "Ana", chained, 96), encode(tokenizer, "Ana", alone, 96)

    def learned(encoded: list[tuple[list[int], list[int]]]) -> list[str]:
        return [tokenizer.decode([t]) for ids, labels in encoded for t, l in zip(ids, labels) if l != -100]

    assert len(singles) == 20 and 1 < len(sequences) < 10
    assert learned(sequences) == learned(singles)  # every line learned once, in order
    assert sum(lines_in(labels) for _, labels in sequences) == 20 and {lines_in(l) for _, l in singles} == {1}
    assert all(len(ids) <= 2 * 96 for ids, _ in sequences)
    # a carried-on line adds its own two turns, not a system prompt and four turns again
    assert sum(len(ids) for ids, _ in sequences) < 0.6 * sum(len(ids) for ids, _ in singles)


def test_training_attention_gives_the_serving_attentions_losses(tiny_model_dir: Path, tokenizer) -> None:  # noqa: ANN001
    """Eager attention (training) must mask padding and the shared prefix's cache as fp32 SDPA (serving) does."""
    from persona.serving.attention import FP32_ATTENTION
    from persona.training.lora import TRAINING_ATTENTION

    model = load(tiny_model_dir)
    varied = [Example((Turn("Bo", "hi " * (i + 1), False),), f"line {i} " * (3 * i + 1)) for i in range(4)]
    batch = pad_batch(encode(tokenizer, "Ana", varied, 96), tokenizer.eos_token_id)
    assert shared_prefix_length(batch) > 10 and (batch["attention_mask"] == 0).any()
    losses = []
    for attention in (FP32_ATTENTION, TRAINING_ATTENTION):
        model.set_attn_implementation(attention)
        with torch.no_grad():
            losses.append(labelled_nll(model, batch)[0])
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-5)
