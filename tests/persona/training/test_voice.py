"""The chat voice's examples: each sender's own lines, with their chat before them, as /train makes a twin's."""

from __future__ import annotations

from persona.training.lora import TrainConfig
from persona.training.voice import ChatLine, voice_examples


async def test_each_sender_learns_only_their_own_lines_even_under_a_shared_first_name() -> None:
    lines = [
        ChatLine("c1", "Person 1", "hey how are you", "Sam"),
        ChatLine("c1", "Person 2", "good, just got back from the lake", "Sam"),
        ChatLine("c1", "Person 1", "nice! was the lake cold", "Sam"),
        ChatLine("c2", "Person 1", "the lake again? lol", "Sam"),
        ChatLine("c2", "Person 3", "always the lake", "Ana"),
    ]
    per_sender = await voice_examples(lines, TrainConfig(recalled_lines=1))
    assert sorted(name for name, _ in per_sender) == ["Ana", "Sam", "Sam"]  # three people, two names
    targets = sorted(sorted(e.target for e in examples) for _, examples in per_sender)
    assert targets == [["always the lake"], ["good, just got back from the lake"],
                       ["hey how are you", "nice! was the lake cold", "the lake again? lol"]]
    person_1 = next(examples for _, examples in per_sender if len(examples) == 3)
    answered = {e.target: e.answered for e in person_1}
    assert answered["nice! was the lake cold"] == "good, just got back from the lake"
    # Their prompt recalls another of their own lines, never the line being learned.
    assert all(e.target not in e.recalled for e in person_1)
    assert any(e.recalled for e in person_1)
