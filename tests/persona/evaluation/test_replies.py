"""The reply measures of persona.evaluation.replies, each on a case where the answer is known."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from persona.evaluation import replies
from persona.assistant_voice import ASSISTANT_PHRASES, sounds_like_assistant
from persona.evaluation.replies import Answer
from persona.evaluation.suite import (
    Line, ReferenceAccuracy, Replies, attribute, read_corpus, reply_measures, reply_relevance, split_speakers,
    token_losses, unprompted_ids,
)
from persona.prompt import Turn

CAT = "my cat Whiskers knocked the blue vase off the kitchen shelf"
REPORT = "the quarterly sales report is due on Friday at noon"


def corpus(tmp_path: Path, rows: list[tuple[str, str, str]]) -> list[Line]:
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps({"chat": c, "speaker": s, "text": t}) + "\n" for c, s, t in rows))
    return read_corpus(path)


def test_a_reply_copied_from_the_other_context_has_no_relevance(bundled_model_dir: Path, tokenizer,  # noqa: ANN001
                                                                 tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(bundled_model_dir, dtype=torch.float32).eval()
    lines = corpus(tmp_path, [("a", "Bo", CAT), ("a", "Ann", "oh no, poor Whiskers, is the vase broken?"),
                              ("b", "Cy", REPORT), ("b", "Ann", "ugh, I'll finish the sales report tonight")])
    tests = [(0, 1), (0, 3)]  # Ann's two lines, each in its own chat
    pad = tokenizer.pad_token_id
    real = token_losses(model, [unprompted_ids(tokenizer, lines, at, lines[at].text) for _, at in tests], pad)

    def relevance(twins: list[str]) -> tuple[float, float]:
        answers = [Answer(0, "Ann", (), lines[at].text, twin) for (_, at), twin in zip(tests, twins)]
        return reply_relevance(model, tokenizer, pad, lines, tests, answers, real, seed=0)

    swapped, real_relevance = relevance([REPORT, CAT])  # each reply repeats the other chat's line
    assert swapped <= 0 < real_relevance
    echoed, _ = relevance([CAT, REPORT])  # each repeats its own chat's line
    assert echoed > real_relevance


def test_relevance_is_the_loss_another_context_adds_per_token() -> None:
    assert replies.relevance([(6.0, 3), (2.0, 1)], [(9.0, 3), (2.0, 1)]) == pytest.approx(3 / 4)
    assert replies.relevance([(6.0, 3)], [(3.0, 3)]) == pytest.approx(-1.0)
    assert replies.relevance([], []) == 0.0


def test_another_context_comes_from_another_chat_whenever_there_is_one() -> None:
    chats = ["a", "a", "b", "c", "c"]
    picks = replies.mismatched_contexts(chats, seed=0)
    assert all(chats[j] != chats[i] for i, j in enumerate(picks))
    assert picks == replies.mismatched_contexts(chats, seed=0)
    assert replies.mismatched_contexts(["a", "a", "a"], seed=0)[0] in (1, 2)  # one chat: another line of it


def test_a_verbatim_stored_line_counts_as_a_copy(tmp_path: Path) -> None:
    lines = corpus(tmp_path, [("c", "Ann", "I love sailing boats"), ("c", "Bob", "boats make me seasick"),
                              ("c", "Ann", "sailing again tomorrow"), ("c", "Bob", "do you like boats, Ann?"),
                              ("c", "Ann", "sailing is my whole life"), ("c", "Bob", "seasick just hearing it")])
    splits = split_speakers(lines, 2, 2, 1)
    ann = next(k for k, split in enumerate(splits) if split.speaker == "Ann")
    twins = ["  i LOVE sailing\tboats ", "I love sailing boats!", "boats make me seasick",
             "sailing is my whole life"]  # stored (case and spaces aside); not quite; Bob's line; Ann's held-out line
    answers = [Answer(ann, "Ann", (), "sailing is my whole life", twin) for twin in twins]
    report = reply_measures(lines, splits, Replies(answers, [(0.2, 0.5), (0.3, 0.3), (0.1, 0.9)], 1.0, 0.0, 1, {}), ReferenceAccuracy(1.0, 1.0, 0.5, 1.0),
                            (0.1, 0.2))
    assert report["reply_copy_share"] == 0.25
    assert report["reply_style_twin"] == 0.5 and report["reply_style_real"] == 1.0
    assert (report["reply_relevance_twin"], report["reply_relevance_real"]) == (0.1, 0.2)
    assert report["reply_words_median_real"] == 5 and report["reply_words_median_twin"] == 4
    assert (report["reply_p50_s"], report["reply_whole_p50_s"]) == (0.2, 0.5)  # to the first message; to the last


@pytest.mark.parametrize("marker", ASSISTANT_PHRASES)
def test_the_assistant_list_catches_each_of_its_phrases(marker: str) -> None:
    assert sounds_like_assistant(f"Well. {marker.capitalize()} whatever comes next")


@pytest.mark.parametrize("reply", [
    "I\u2019m sorry, but I cannot do that.",
    "I'm sorry if I was unable to assist you because of some issues while responding to user queries",
    "I will not discuss that and i am unable or unwilling to answer any personal questions",
    "As an AI language model, I don't have personal opinions.",
])
def test_the_assistant_list_catches_the_voice_twins_were_seen_in(reply: str) -> None:
    assert sounds_like_assistant(reply)


@pytest.mark.parametrize("reply", [
    "sorry I'm late, traffic was awful", "i can help you move on saturday", "as a kid i loved that show",
    "lol no", "Oh whaaat", "I'm sorry. But you're wrong.", "ai is scary tbh",
])
def test_the_assistant_list_leaves_ordinary_chat_alone(reply: str) -> None:
    assert not sounds_like_assistant(reply)


def test_lines_attributed_in_windows_of_five_add_up_their_scores() -> None:
    # Twin 0's six lines and twin 1's six lines (scores[line][twin]); alone, only half of each go right,
    # but over five lines the right twin's scores add up to the lowest. The sixth lines make no window.
    mild, wrong = [-1.0, 0.0], [0.0, -0.5]
    scores = [mild, wrong, mild, wrong, mild, wrong] + [[0.0, -1.0], [-0.5, 0.0]] * 3
    owners = [0] * 6 + [1] * 6
    single = sum(guess == owner for guess, owner in zip(attribute(scores), owners)) / len(owners)
    summed, window_owners = replies.windows(scores, owners)
    assert single == 0.5 and window_owners == [0, 1]
    assert summed == [[-3.0, -1.0], [-1.0, -3.0]] and attribute(summed) == [0, 1]


def test_an_echo_counts_against_the_lines_of_its_own_context_only() -> None:
    answer = Answer(0, "Ann", (Turn("Bob", "did you see the game last night", False),), "nope, busy", "the game last night was wild")
    assert replies.echoed(answer, answer.twin) and not replies.echoed(answer, answer.real)
    assert not replies.echoed(Answer(0, "Ann", (), "", ""), "the game last night")


def test_the_samples_file_has_one_line_per_reply_with_its_context(tmp_path: Path) -> None:
    context = (Turn("Bob", "you up?", False), Turn("Ann", "hm", True))
    answers = [Answer(0, "Ann", context, "yes, why", "yeah \U0001f600"), Answer(1, "Bob", (), "first!", "hello")]
    replies.write_samples(tmp_path / "out" / "samples.jsonl", answers)
    rows = [json.loads(line) for line in (tmp_path / "out" / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows == [
        {"speaker": "Ann", "context": ["Bob: you up?", "Ann: hm"], "real": "yes, why", "twin": "yeah \U0001f600"},
        {"speaker": "Bob", "context": [], "real": "first!", "twin": "hello"},
    ]


def test_a_burst_is_one_message_a_line_in_the_samples() -> None:
    burst = Answer(0, "Ann", (), "wait", "no way", real_after=("what?", "srsly"), twin_after=("omg",))
    assert replies.sample(burst)["real"] == "wait\nwhat?\nsrsly" and replies.sample(burst)["twin"] == "no way\nomg"


def test_median_words() -> None:
    assert replies.median_words(["a b", "a b c", "a"]) == 2 and replies.median_words([]) == 0.0
