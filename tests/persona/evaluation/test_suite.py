"""persona.evaluation.suite on a tiny model: the report's numbers are consistent, distinct voices are told apart, and
each twin is scored with the prompt its replies would get."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from persona.evaluation import suite
from persona.corpus import Line
from persona.evaluation.suite import evaluate, main, read_corpus, split_speakers
from twinbot.settings import Settings

VOICES = {
    "Ann": ["ok ok ok {n}", "ok sure {n}", "ok fine {n} ok"],
    "Bob": ["WHAT?! {n}!!!", "NO WAY {n}!!", "WOW {n}!!!"],
    "Cat": ["hmm, {n} perhaps; indeed.", "indeed, {n} perhaps.", "perhaps {n}; hmm, indeed."],
}


def write_corpus(path: Path, lines_each: int) -> Path:
    rng = random.Random(0)
    rows = [(speaker, rng.choice(forms).format(n=rng.randint(0, 999)))
            for _ in range(lines_each) for speaker, forms in VOICES.items()]
    path.write_text("".join(json.dumps({"speaker": s, "text": t, "chat": "c"}) + "\n" for s, t in rows))
    return path


def test_eval_reports_and_tells_distinct_voices_apart(settings: Settings, tiny_model_dir: Path, tmp_path: Path) -> None:
    s = settings.model_copy(update={"base_model": str(tiny_model_dir), "model_dtype": "float32",
                                    "train_max_steps": 40, "max_new_tokens": 8, "batch_window_ms": 300.0})
    lines = read_corpus(write_corpus(tmp_path / "c.jsonl", 80))
    splits = split_speakers(lines, 3, 60, 10)
    report = evaluate(s, lines, splits, seed=0, progress=False, samples=tmp_path / "samples.jsonl")
    assert sorted(report["speakers"]) == sorted(VOICES) and report["chance"] == pytest.approx(1 / 3, abs=1e-3)
    assert sum(map(sum, report["confusion"])) == report["test_lines"] == 30
    assert report["ppl_own"] < report["ppl_base"] and report["ppl_own"] < report["ppl_other"]
    assert report["attribution_accuracy"] > 0.6 and 0 <= report["attribution_accuracy_centred"] <= 1
    # three vocabularies that share no word
    assert report["attribution_reference_line"] == report["attribution_reference_with_context"] == 1.0
    assert report["train_tokens_per_s"] > 0
    # 10 lines each: two windows of 5 per speaker
    assert report["attribution_accuracy_window5"] in {n / 6 for n in range(7)}
    assert report["reply_style_real"] == report["attribution_reference_line"]
    assert report["reply_words_median_real"] == 4  # the real lines: 2 to 4 words each
    for key in ("reply_cap_share", "reply_style_twin", "reply_copy_share", "reply_assistant_share",
                "reply_echo_share_twin", "reply_echo_share_real"):
        assert 0 <= report[key] <= 1, key
    assert report["reply_words_median_twin"] >= 0 and 0 < report["reply_p50_s"] <= report["reply_whole_p50_s"]
    assert all(math.isfinite(report[key]) for key in ("reply_relevance_twin", "reply_relevance_real"))
    assert 1 < report["reply_largest_batch"] <= s.max_batch_size  # the worker batched the replies
    # 60 training lines a twin: each replies at the strength of a twin of few lines
    assert report["reply_adapter_strengths"] == {speaker: s.adapter_strength_few_lines for speaker in VOICES}
    samples = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 30 and {row["speaker"] for row in samples} == set(VOICES)
    assert [row["real"] for row in samples] == [lines[at].text for split in splits for at in split.test]
    assert all(row["context"][-1].split(": ")[0] in VOICES for row in samples)


def test_no_twin_knows_a_held_out_line_or_what_follows_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [("a", "Ann", "first of mine"), ("a", "Ann", "second of mine"), ("a", "Bob", "Bob here"),
            ("a", "Ann", "held out of Ann"), ("a", "Bob", "Bob after it"), ("b", "Bob", "held out of Bob"),
            ("b", "Bob", "Bob goes on"), ("c", "Bob", "Bob later on")]
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"chat": c, "speaker": s, "text": t}) + "\n" for c, s, t in rows))
    lines = read_corpus(corpus)
    ann, bob = sorted(split_speakers(lines, 2, 2, 1), key=lambda split: split.speaker)
    assert (ann.known, ann.test) == ([0, 1], [3])
    # Bob's line after Ann's held-out one is not his to learn; his second training line comes later,
    # after his own held-out line, in a chat that is not held out
    assert (bob.known, bob.test, bob.own_training(lines)) == ([0, 1, 2, 7], [5], [2, 7])

    def one_chat(speakers: list[str]) -> list[Line]:
        corpus.write_text("".join(json.dumps({"speaker": s, "text": f"line {n}"}) + "\n"
                                  for n, s in enumerate(speakers)))
        return read_corpus(corpus)

    monkeypatch.setattr(suite, "CLOSED_AFTER", 1)
    # one chat: Ann's held-out line (2) and the line after it are closed, and so are Bob's (5) and the
    # line after it; Bob's first lines lie past Ann's, and he trains on them
    lines = one_chat(["Ann", "Ann", "Ann", "Bob", "Bob", "Bob", "Bob", "Bob"])
    ann, bob = sorted(split_speakers(lines, 2, 2, 1), key=lambda split: split.speaker)
    assert (ann.known, ann.test) == ([0, 1], [2])
    assert (bob.known, bob.test, bob.own_training(lines)) == ([0, 1, 4, 7], [5], [4, 7])
    # each of Bob's lines follows a held-out line or is one
    with pytest.raises(ValueError, match="Bob has 0 lines outside the held-out lines and the 1 after each in their "
                                         "chats, and 1 are needed"):
        split_speakers(one_chat(["Ann", "Ann", "Bob", "Bob"]), 2, 1, 1)


def test_centring_stops_a_twin_that_lowers_every_line_from_taking_them_all() -> None:
    from persona.evaluation.suite import attribute

    # Lines 0-1 are twin 0's, lines 2-3 twin 1's; twin 0 scores every line lower.
    scores = [[-1.0, -0.3], [-1.0, -0.3], [-0.8, -0.6], [-0.8, -0.6]]
    assert attribute(scores) == [0, 0, 0, 0]
    assert attribute(scores, centred=True) == [0, 0, 1, 1]


def test_a_window_goes_to_the_twin_that_makes_its_tokens_likeliest() -> None:
    from persona.evaluation.replies import windows
    from persona.evaluation.suite import attribute, log_likelihood_ratios

    # Five lines of twin 0's owner: four "ok." (2 tokens) that twin 1 finds a little likelier, and one
    # line of 30 tokens that twin 0 finds much likelier. Per token, twin 1 wins four lines of five and
    # their per-line means add up in its favour; over the window's 38 tokens, twin 0 is likelier.
    neutral = [(6.0, 2)] * 4 + [(90.0, 30)]
    twin0 = [(5.0, 2)] * 4 + [(60.0, 30)]
    twin1 = [(3.0, 2)] * 4 + [(88.0, 30)]
    ratios = log_likelihood_ratios([twin0, twin1], neutral)
    assert ratios[0] == [-1.0, -3.0] and ratios[4] == [-30.0, -2.0]
    per_token = [[ratio / tokens for ratio in row] for row, (_, tokens) in zip(ratios, neutral)]
    assert attribute(per_token) == [1, 1, 1, 1, 0]
    assert attribute(windows(per_token, [0] * 5)[0]) == [1]
    assert attribute(windows(ratios, [0] * 5)[0]) == [0]


def test_bad_corpus_and_too_few_lines_fail_clearly(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"speaker": "a", "text": "fine"}\nnot json\n')
    assert main(["--corpus", str(bad)]) == 2
    assert "bad.jsonl:2" in capsys.readouterr().err
    small = write_corpus(tmp_path / "small.jsonl", 5)
    assert main(["--corpus", str(small), "--speakers", "3", "--train-lines", "300", "--test-lines", "50"]) == 2
    assert "lines; 300 + 50 are needed" in capsys.readouterr().err


def test_token_losses_equal_the_models_own_loss(tiny_model_dir: Path, tokenizer) -> None:  # noqa: ANN001
    import torch
    from transformers import AutoModelForCausalLM

    from persona.evaluation.suite import token_losses

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    encoded = [(list(range(5, 5 + n)), [-100] * (n - 3) + list(range(2 + n, 5 + n))) for n in (6, 9, 12)]
    got = token_losses(model, encoded, tokenizer.eos_token_id)
    for (ids, labels), (total, count) in zip(encoded, got):
        with torch.no_grad():
            expected = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss
        assert count == 3 and abs(total / count - float(expected)) < 1e-4


def test_each_twin_is_trained_and_scored_with_its_own_recalled_lines(tmp_path: Path) -> None:
    import asyncio

    from persona.evaluation.suite import recall_lines
    from persona.training.lora import TrainConfig

    rows = [("Ann", "I love sailing boats"), ("Bob", "boats make me seasick"), ("Ann", "sailing again tomorrow"),
            ("Bob", "do you like boats, Ann?"), ("Ann", "sailing is my whole life"), ("Bob", "seasick just hearing it")]
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"speaker": s, "text": t, "chat": "c"}) + "\n" for s, t in rows))
    lines = read_corpus(corpus)
    splits = split_speakers(lines, 2, 2, 1)
    tests = [(k, at) for k, split in enumerate(splits) for at in split.test]
    cfg = TrainConfig(recalled_lines=2, recalled_chars=12)
    recalled = asyncio.run(recall_lines(tmp_path / "store.sqlite3", lines, splits, tests, 4, cfg))
    examples = recalled.replies
    ann = next(k for k, split in enumerate(splits) if split.speaker == "Ann")
    bob = 1 - ann
    # Ann's second training line answers "boats make me seasick": her prompt recalls her other line
    # about boats (cut to 12 characters), never the line being learned
    assert [e.recalled for e in recalled.training[ann]] == [(), ("I love saili",)]
    # Ann's held-out line answers "do you like boats, Ann?": her twin recalls what she answered to Bob's
    # line about boats, then her line about boats.
    at_ann = next(i for i, (k, _) in enumerate(tests) if k == ann)
    assert examples[ann, at_ann] == ["sailing again tomorrow", "I love sailing boats"]
    assert examples[bob, at_ann] == ["boats make me seasick"]
    assert all(text in {"I love sailing boats", "sailing again tomorrow"} for text in examples[ann, 1 - at_ann])
