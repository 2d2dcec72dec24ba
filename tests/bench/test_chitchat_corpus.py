"""The chitchat loader keeps the evaluation's reserved senders out of anything shippable."""

from __future__ import annotations

import json
from pathlib import Path

from bench.chitchat_corpus import convert, reserved_senders


def dataset(senders_per_chat: dict[str, list[str]]) -> dict:
    """A dataset.json of the real shape: conversations of bursts of {text, timestamp, sender}."""
    return {
        chat: {"messages": [[{"text": f"{s} says hi", "timestamp": "2018-05-02T19:38:15Z", "sender": s},
                             {"text": " ", "timestamp": "2018-05-02T19:38:16Z", "sender": s}] for s in senders],
               "ratings": {}, "start": "2018-05-02T19:38:00Z", "prompt": "?"}
        for chat, senders in senders_per_chat.items()
    }


def test_the_busiest_senders_are_reserved_and_shippable_chats_never_hold_them(tmp_path: Path) -> None:
    busy = [f"busy{i:02d}" for i in range(50)]
    chats = {f"c{i}": [busy[i], busy[(i + 1) % 50]] * 3 for i in range(50)}
    chats["quiet"] = ["q1", "q2"]
    chats["mixed"] = ["q3", busy[0]]
    data = dataset(chats)
    assert reserved_senders(data) == set(busy)
    source = tmp_path / "dataset.json"
    source.write_text(json.dumps(data))
    convert(source, tmp_path / "ship.jsonl", "shippable")
    shipped = [json.loads(line) for line in (tmp_path / "ship.jsonl").read_text().splitlines()]
    assert {line["chat"] for line in shipped} == {"quiet"}
    assert [line["text"] for line in shipped] == ["q1 says hi", "q2 says hi"]  # blank messages dropped
    assert convert(source, tmp_path / "all.jsonl") == 2 * 50 * 3 + 4
    evaluation = convert(source, tmp_path / "eval.jsonl", "eval")
    assert evaluation == 2 * 50 * 3 + 2
