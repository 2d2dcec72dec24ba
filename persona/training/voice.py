"""The chat voice: one LoRA adapter trained offline on people chatting, merged into the bundled base.

SmolLM2-Instruct answers like an assistant; twins trained on a few hundred lines inherit that voice.
This trains, once, an adapter on real chats (a `bench/chitchat_corpus.py --only shippable` corpus:
no conversation of a reserved evaluation sender) with the prompts twins are trained and served with,
so that every twin, trained or not, starts from a person chatting. It ships in `persona/voice/` and
`persona.model` merges it into the converted base.

`python -m persona.training.voice --corpus chitchat-shippable.jsonl --minutes 70 --lines 40000 --out persona/voice`
(`python -m persona.training.preference` tunes it further against its own replies; that was tried
and is not what ships: docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from persona.corpus import read_corpus
from persona.examples import Example, build_examples, usable
from persona.model import ALL_LINEAR, BUNDLED, load_base_model
from persona.retrieval import with_recalled_lines
from persona.training.lora import TrainConfig, encode, train_adapter, write_adapter
from persona_store import NewMessage, StoredMessage, open_store
from twinbot.settings import load_settings

FIRST_NAMES = (
    "Alex Sam Jordan Taylor Casey Riley Morgan Jamie Avery Quinn Emma Liam Olivia Noah Ava Ethan Mia Lucas "
    "Zoe Mason Lily Logan Chloe Owen Ella Jack Grace Ryan Nora Leo Ruby Max Ivy Finn Maya Cole Lucy Adam "
    "Sara Ben Hannah Eli Julia Dan Kate Tom Anna Nick Beth Josh Amy Luke Rose Matt Claire Tyler Jess Kyle "
    "Megan Sean Laura Evan Erin Chris Tara Drew Paige Gabe Kim Nate Dana Ian Holly Zach Leah Caleb Mara "
    "Jake Tess Brian Nina Carlos Sofia Diego Lena Omar Aisha Ravi Priya Ken Yuki Mei Hugo Ines Tariq Zara"
).split()


@dataclass(frozen=True, slots=True)
class ChatLine:
    chat: str
    speaker: str
    """The corpus's id of the sender ("Person 12"): who is who."""
    text: str
    name: str = ""
    """The first name the sender is shown with in prompts, as a twin's prompt holds display names."""


def read_lines(path: Path) -> list[ChatLine]:
    """The corpus's usable lines, in order (persona.corpus reads it)."""
    return [ChatLine(line.chat, line.speaker, line.text.strip()) for line in read_corpus(path) if usable(line.text)]


def named(lines: list[ChatLine], seed: int) -> list[ChatLine]:
    """Each sender shown with a first name (two people may share one, as in life)."""
    rng = random.Random(seed)
    names = {speaker: rng.choice(FIRST_NAMES) for speaker in sorted({line.speaker for line in lines})}
    return [ChatLine(line.chat, line.speaker, line.text, names[line.speaker]) for line in lines]


def as_stored(chat_lines: list[ChatLine], owner: str) -> list[StoredMessage]:
    """One chat as the store keeps it for `owner` (a corpus id): their lines own, the others context."""
    return [StoredMessage(id=i, owner_id=0, platform="corpus", chat_id=line.chat, message_id=str(i),
                          author=line.name, is_own=line.speaker == owner, ts=float(i), text=line.text,
                          source="import", reply_to=None, is_dm=False)
            for i, line in enumerate(chat_lines)]


async def voice_examples(lines: list[ChatLine], cfg: TrainConfig) -> list[tuple[str, list[Example]]]:
    """Each speaker's examples, as /train makes a twin's: the chat before each of their lines, and
    their own other lines the prompt recalls (found by the store's search, as in a reply)."""
    by_chat: dict[str, list[ChatLine]] = defaultdict(list)
    for line in lines:
        by_chat[line.chat].append(line)
    chats_of: dict[str, list[str]] = defaultdict(list)
    for chat, chat_lines in by_chat.items():
        for speaker in dict.fromkeys(line.speaker for line in chat_lines):
            chats_of[speaker].append(chat)
    found: list[tuple[str, list[Example]]] = []
    with tempfile.TemporaryDirectory(prefix="chat-voice-store-") as tmp:
        async with open_store(Path(tmp) / "voice.sqlite3") as store:
            for speaker, chats in tqdm(sorted(chats_of.items()), desc="examples", unit="speaker"):
                name = next(line.name for line in by_chat[chats[0]] if line.speaker == speaker)
                user = await store.users.get_or_create("corpus", speaker, name)
                stored = [m for chat in chats for m in as_stored(by_chat[chat], speaker)]
                await store.messages.add_many([
                    NewMessage(user.id, "corpus", m.chat_id, m.message_id, m.author, True, m.ts, m.text, source="import")
                    for m in stored if m.is_own])
                examples = build_examples(stored)
                found.append((name, await with_recalled_lines(store, user.id, examples, cfg.recalled_lines,
                                                                       cfg.recalled_chars)))
    return found


def ship(model, target: Path) -> None:  # noqa: ANN001 - a PeftModel
    """Write the voice adapter as it ships: its weights in bf16 (they are merged into fp32 weights, and
    the file is half the size), without the model card peft writes beside it (ours is MODEL_CARD.md)."""
    write_adapter(model, target)
    path = target / "adapter_model.safetensors"
    save_file({name: tensor.to(torch.bfloat16) for name, tensor in load_file(path).items()}, path)
    (target / "README.md").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m persona.training.voice", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="bench/chitchat_corpus.py --only shippable output")
    parser.add_argument("--out", type=Path, required=True, help="where the adapter is written (persona/voice)")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--lines", type=int, default=20000, help="at most this many lines, whole chats")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.monotonic()
    try:
        lines = named(read_lines(args.corpus), args.seed)
    except (OSError, ValueError) as exc:
        print(f"voice: {exc}", file=sys.stderr)
        return 1
    chats = list(dict.fromkeys(line.chat for line in lines))
    random.Random(args.seed).shuffle(chats)
    keep: set[str] = set()
    total = 0
    sizes = defaultdict(int)
    for line in lines:
        sizes[line.chat] += 1
    for chat in chats:
        if total >= args.lines:
            break
        keep.add(chat)
        total += sizes[chat]
    lines = [line for line in lines if line.chat in keep]
    cfg = TrainConfig(rank=args.rank, learning_rate=args.learning_rate, epochs=1.0, max_steps=100_000,
                      max_minutes=args.minutes, seed=args.seed, targets=ALL_LINEAR)
    per_speaker = asyncio.run(voice_examples(lines, cfg))
    # The plain bundled base, never one with a voice already merged in.
    settings = load_settings(base_model=BUNDLED, chat_voice=False)
    base, tokenizer = load_base_model(settings, dtype=cfg.base_dtype)
    encoded = [seq for speaker, examples in per_speaker for seq in encode(tokenizer, speaker, examples, cfg.max_tokens)]
    bar = tqdm(desc="training the chat voice", unit="step")

    def show(p) -> bool:  # noqa: ANN001 - a Progress
        bar.total = p.total_steps
        bar.n = p.step
        bar.set_postfix(loss=f"{p.loss:.3f}", tok_s=f"{p.tokens_per_s:.0f}")
        return True

    model, result = train_adapter(base, tokenizer, encoded, cfg, progress=show,
                                  checkpoint_dir=settings.data_dir / "voice-checkpoint")
    bar.close()
    ship(model, args.out / "adapter")
    report = {"corpus": args.corpus.name, "chats": len(keep), "lines": len(lines), "speakers": len(per_speaker),
              "sequences": len(encoded), "rank": args.rank, "targets": list(ALL_LINEAR),
              "learning_rate": args.learning_rate, **result.metrics(),
              "wall_minutes": round((time.monotonic() - started) / 60, 1)}
    (args.out / "training.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
