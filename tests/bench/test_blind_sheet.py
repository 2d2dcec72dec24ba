"""Blind sheets: pairs never share a chat, the key says which message is real, and scoring counts
the times the twin was taken for the real one."""

from __future__ import annotations

import json
from pathlib import Path

from bench.blind_sheet import score, write_sheet


def test_a_sheet_hides_which_is_real_and_scoring_counts_the_fooled(tmp_path: Path) -> None:
    samples = [{"speaker": f"S{i % 3}", "context": [f"Bo: line {i // 2}", f"Ana: q {i // 2}"],
                "real": f"real {i}", "twin": f"twin {i}"} for i in range(20)]
    # a later line's chat that shows an earlier pair's real message: never both on one sheet
    samples += [{"speaker": "S1", "context": ["Bo: line 0", "S0: real 0"], "real": "leak", "twin": "t"}]
    samples.append({"speaker": "S0", "context": ["Bo: x"], "real": "r", "twin": ""})  # no reply: never shown
    (tmp_path / "samples.jsonl").write_text("\n".join(json.dumps(s) for s in samples))
    assert write_sheet(tmp_path / "samples.jsonl", tmp_path / "out", 8, seed=0) == 8
    sheet = (tmp_path / "out" / "sheet.md").read_text()
    key = json.loads((tmp_path / "out" / "key.json").read_text())
    assert len(key) == 8 and set(key.values()) <= {"A", "B"}
    contexts = [block.split("\n\n")[1] for block in sheet.split("## ")[1:]]
    assert len(set(contexts)) == 8  # no two pairs share a chat
    for n, block in enumerate(sheet.split("## ")[1:], 1):
        real_line = next(line for line in block.splitlines() if line.startswith(f"{key[str(n)]}: "))
        real = real_line.split(": ", 1)[1]
        assert real.startswith("real ") or real == "leak"
        speaker = block.split("is from ", 1)[1].split("\n", 1)[0]
        assert not any(f"{speaker}: {real}" in context for context in contexts)  # no pair gives another away
    answers = "\n".join(f"{n}: {'A' if n % 2 else 'B'}" for n in range(1, 9))
    (tmp_path / "answers.txt").write_text(answers)
    result = score(tmp_path / "out" / "key.json", tmp_path / "answers.txt")
    wrong = sum((("A" if n % 2 else "B") != key[str(n)]) for n in range(1, 9))
    assert result == {"pairs": 8, "answered": 8, "twin_taken_for_real": wrong, "fooled_share": round(wrong / 8, 3)}


def test_a_burst_shows_one_message_a_line_and_its_later_lines_give_no_pair_away(tmp_path: Path) -> None:
    burst = {"speaker": "S0", "context": ["Bo: hi"], "real": "hey\nwhat's up", "twin": "yo\nsup\nlol"}
    later = {"speaker": "S0", "context": ["S0: what's up", "Bo: nothing"], "real": "ok", "twin": "k"}
    (tmp_path / "samples.jsonl").write_text("\n".join(json.dumps(s) for s in (burst, later)))
    assert write_sheet(tmp_path / "samples.jsonl", tmp_path / "out", 2, seed=0) == 1  # one shows the other's line
    (tmp_path / "samples.jsonl").write_text(json.dumps(burst))
    write_sheet(tmp_path / "samples.jsonl", tmp_path / "out", 1, seed=0)
    sheet = (tmp_path / "out" / "sheet.md").read_text()
    assert "hey\n   what's up" in sheet and "yo\n   sup\n   lol" in sheet


def test_a_control_sheet_pairs_each_real_message_with_an_unseen_one_of_the_same_person(tmp_path: Path) -> None:
    samples = [{"speaker": f"S{i % 2}", "context": [f"Bo: q {i}"], "real": f"real {i}", "twin": f"twin {i}"}
               for i in range(12)]
    samples.append({"speaker": "S0", "context": ["Bo: hi", "S0: real 0"], "real": "later", "twin": "t"})
    (tmp_path / "samples.jsonl").write_text("\n".join(json.dumps(s) for s in samples))
    assert write_sheet(tmp_path / "samples.jsonl", tmp_path / "out", 6, seed=0, control=True) == 6
    key = json.loads((tmp_path / "out" / "key.json").read_text())
    sheet = (tmp_path / "out" / "sheet.md").read_text()
    reals, others = [], []
    for n, block in enumerate(sheet.split("## ")[1:], 1):
        speaker = block.split("is from ", 1)[1].split("\n", 1)[0]
        shown = {line[0]: line[3:] for line in block.splitlines() if line[:3] in ("A: ", "B: ")}
        reals.append(shown[key[str(n)]])
        others.append(shown["B" if key[str(n)] == "A" else "A"])
        assert others[-1] in {s["real"] for s in samples if s["speaker"] == speaker}  # the same person's words
    assert not set(others) & set(reals) and len(set(others)) == len(others)  # none seen elsewhere on the sheet
    assert not any(f"S0: {other}" in sheet or f"S1: {other}" in sheet for other in others)
    side = (tmp_path / "out" / "side_by_side.md").read_text()
    assert "- other: " in side and "- twin: " not in side
