"""What the chat voice changes: the base with and without it, on chats it never saw.

`python bench/voice_bench.py --corpus chitchat.jsonl [--lines 300]` scores held-out lines of the
conversations of the reserved evaluation senders (never trained on) as a twin's replies (persona
prompt with the speaker's name and the conversation before it, no recalled lines), and answers ten
ordinary messages as an instant twin would; prints one JSON object: perplexity of the real lines,
and the replies' median words and assistant-voice share, for each base.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from persona.assistant_voice import sounds_like_assistant  # noqa: E402
from persona.evaluation.suite import held_out_example, perplexity, read_corpus, token_losses  # noqa: E402
from persona.model import load_base_model  # noqa: E402
from persona.prompt import build_reply_scoring_ids  # noqa: E402
from persona.serving.service import PROMPT_TOKENS, ReplyRequest, TwinService  # noqa: E402
from persona_store import open_store  # noqa: E402
from twinbot.settings import Settings, load_settings  # noqa: E402

MESSAGES = ("how was your weekend?", "who ate my yogurt", "party in the conference room at 5!",
            "did you see the game last night", "can you cover for me tomorrow?", "lol what", "ugh mondays",
            "are you coming to lunch?", "I think I broke the printer", "what are you doing this weekend")


def held_out_ppl(settings: Settings, corpus: Path, lines: int, seed: int) -> float:
    """Perplexity of `lines` random lines by the busiest (reserved) speakers, as replies to their chat."""
    corpus_lines = read_corpus(corpus)
    reserved = {f"Person {k}" for k in range(1, 51)}
    picks = [line.index for line in corpus_lines if line.speaker in reserved]
    random.Random(seed).shuffle(picks)
    model, tokenizer = load_base_model(settings, dtype=torch.bfloat16)
    encoded = []
    for at in picks[:lines]:
        example = held_out_example(corpus_lines, at, corpus_lines[at].speaker)
        encoded.append(build_reply_scoring_ids(tokenizer, corpus_lines[at].speaker, list(example.context),
                                               example.target, [], PROMPT_TOKENS))
    return perplexity(token_losses(model, encoded, tokenizer.pad_token_id))


async def instant_replies(settings: Settings) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        async with open_store(Path(tmp) / "voice.sqlite3") as store:
            owner = await store.users.get_or_create("console", "sam", "Sam")
            service = TwinService(settings, store)
            await service.start()
            try:
                return ["\n".join(await service.reply(ReplyRequest(owner, "Alex", text, [], "console", "c", False)))
                        for text in MESSAGES]
            finally:
                await service.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="bench/chitchat_corpus.py output (all chats)")
    parser.add_argument("--lines", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = {}
    for name, voice in (("plain", False), ("chat_voice", True)):
        settings = load_settings(chat_voice=voice)
        torch.manual_seed(args.seed)
        replies = asyncio.run(instant_replies(settings))
        report[name] = {
            "held_out_ppl": round(held_out_ppl(settings, args.corpus, args.lines, args.seed), 2),
            "reply_words_median": statistics.median(len(r.split()) for r in replies),
            "reply_assistant_share": sum(map(sounds_like_assistant, replies)) / len(replies),
            "replies": dict(zip(MESSAGES, replies, strict=True)),
        }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
