"""How a twin sees a conversation: our own persona system prompt and ChatML, for training and replies alike.

The base model's chat template would inject its own "helpful AI assistant named SmolLM" system
prompt; a twin must never get it, so the ids are built here directly. Other speakers' lines are
`user` turns ("Name: text"); the owner's lines are `assistant` turns, which is what the twin learns
to produce. Training and generation share these functions, so a twin is scored as it is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the bot's torch-free job side imports Turn from here
    from transformers import PreTrainedTokenizerBase

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
MAX_TURN_CHARS = 600
MAX_EXAMPLE_CHARS = 200


@dataclass(frozen=True, slots=True)
class Turn:
    speaker: str
    text: str
    is_owner: bool


def system_prompt(owner_name: str, examples: list[str]) -> str:
    """Who the twin is, and a few of the owner's real lines to echo their voice."""
    name = owner_name or "the speaker"
    lines = [
        f"You are {name}, chatting with friends. Reply exactly as {name} would: same voice, same length, "
        "same habits, casual chat, never as an assistant."
    ]
    if examples:
        lines.append(f"Things {name} has said before:")
        lines += [f"- {example[:MAX_EXAMPLE_CHARS]}" for example in examples]
    return "\n".join(lines)


class ChatEncoder:
    """Token ids of ChatML blocks, computed piecewise so the boundaries (and labels) are exact."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer
        self.start = tokenizer.convert_tokens_to_ids(IM_START)
        self.end = tokenizer.convert_tokens_to_ids(IM_END)
        self.newline = self.text("\n")

    def text(self, text: str) -> list[int]:
        """Plain text's ids: a "<|im_end|>" typed by a person stays characters, never a control token."""
        return self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]

    def header(self, role: str) -> list[int]:
        return [self.start, *self.text(f"{role}\n")]

    def block(self, role: str, content: str) -> list[int]:
        return [*self.header(role), *self.text(content), self.end, *self.newline]

    def turn(self, turn: Turn) -> list[int]:
        text = turn.text[:MAX_TURN_CHARS]
        return self.block("assistant", text) if turn.is_owner else self.block("user", f"{turn.speaker}: {text}")


def _encoder(tokenizer: PreTrainedTokenizerBase) -> ChatEncoder:
    cached = getattr(tokenizer, "_twinbot_chat_encoder", None)
    if cached is None:
        cached = ChatEncoder(tokenizer)
        tokenizer._twinbot_chat_encoder = cached  # one per tokenizer: the special ids never change
    return cached


def _fit(enc: ChatEncoder, system: list[int], context: list[Turn], tail: list[int], max_tokens: int) -> list[int]:
    """system + as many of the most recent context turns as fit + tail."""
    budget = max_tokens - len(system) - len(tail)
    kept: list[list[int]] = []
    for turn in reversed(context):
        ids = enc.turn(turn)
        if len(ids) > budget:
            break
        kept.append(ids)
        budget -= len(ids)
    return [*system, *(i for ids in reversed(kept) for i in ids), *tail]


def build_prompt_ids(tokenizer: PreTrainedTokenizerBase, owner_name: str, context: list[Turn], examples: list[str],
                     max_tokens: int) -> list[int]:
    """The prompt for the owner's next line: ends with the assistant header, ready to generate."""
    enc = _encoder(tokenizer)
    system = enc.block("system", system_prompt(owner_name, examples))
    return _fit(enc, system, context, enc.header("assistant"), max_tokens)


def build_training_ids(tokenizer: PreTrainedTokenizerBase, owner_name: str, context: list[Turn], target: str,
                       examples: list[str], max_tokens: int) -> tuple[list[int], list[int]]:
    """(input_ids, labels) for one example: the loss falls only on the owner's words and the end of turn."""
    answer = _answer(tokenizer, target)
    prompt = build_prompt_ids(tokenizer, owner_name, context, examples, max_tokens - len(answer))
    return [*prompt, *answer], [-100] * len(prompt) + answer


def continue_training_ids(tokenizer: PreTrainedTokenizerBase, sequence: tuple[list[int], list[int]],
                          turns: list[Turn], target: str) -> tuple[list[int], list[int]]:
    """A training sequence that ends with one of the owner's lines, carried on by the turns after it
    and the owner's next line (labelled as build_training_ids labels it): the same tokens as that
    next line's own example would have, had its context held everything before it."""
    enc = _encoder(tokenizer)
    ids, labels = sequence
    between = [*enc.newline, *(i for turn in turns for i in enc.turn(turn)), *enc.header("assistant")]
    answer = _answer(tokenizer, target)
    return [*ids, *between, *answer], [*labels, *[-100] * len(between), *answer]


def between_messages(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """What follows the end of an owner's message when the owner sends another one straight after (a
    burst): the newline and the owner's next header, as consecutive owner lines are in training."""
    enc = _encoder(tokenizer)
    return [*enc.newline, *enc.header("assistant")]


def build_reply_scoring_ids(tokenizer: PreTrainedTokenizerBase, owner_name: str, context: list[Turn], target: str,
                            examples: list[str], prompt_tokens: int) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of `target` as the reply to exactly the prompt a twin's reply starts from."""
    answer_tokens = len(_answer(tokenizer, target))
    return build_training_ids(tokenizer, owner_name, context, target, examples, prompt_tokens + answer_tokens)


def _answer(tokenizer: PreTrainedTokenizerBase, target: str) -> list[int]:
    enc = _encoder(tokenizer)
    return [*enc.text(target[:MAX_TURN_CHARS]), enc.end]
