"""Does a twin sound like its owner, and do its replies read like its owner's? Attribution, perplexity, replies.

`twinbot eval --corpus FILE.jsonl --speakers 8 --train-lines 300 --test-lines 50 --seed 0 --json OUT.json
[--samples OUT.jsonl]`, or the same options to `python -m persona.evaluation.suite`.

The corpus is JSON lines `{"speaker", "text"}` (optionally `"chat"`: lines of different chats are
not each other's context) in conversation order. The N speakers with most lines each get a twin,
trained exactly as `/train` trains one (same examples, prompts and settings); each speaker's lines after
their first `train-lines` are held out, `test-lines` of them. No twin learns or recalls a held-out
line or the CLOSED_AFTER lines after it in its chat (split_speakers).

Twins are scored as they answer: each held-out line x is the reply to the prompt twin t would get
in a chat (persona prompt with t's name, the past lines t's prompt recalls for the line being
answered (persona.retrieval), and the conversation seen from t's side), with t's adapter folded in
as serving folds a lone reply's, at the strength it was trained at. Replies amplify it, the more so
the fewer lines it learned from (persona/serving/strength.py); scored amplified, twins tell owners
apart less well (docs/benchmarks.md).
score(x, t) = loss_t(x | context) - loss_base(x | context) in nats, where the base reads the same
conversation with no persona; x is attributed to the twin with the lowest score, and so is each
window of 5 consecutive lines of one speaker, by the sum of its lines' scores: the window's
likelihood ratio, in which each token counts once. `ppl_base` is the owner's untrained twin (same
prompt, no adapter): what training adds. For scale, an n-gram classifier trained on the same lines
attributes them too (persona.evaluation.classifier).

Then each twin answers the context of each of its owner's held-out lines through the product's own
reply path (TwinService on an inference worker, over a store holding the owner's lines and adapter),
and persona.evaluation.replies measures those replies beside the real lines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm
from transformers import PreTrainedTokenizerBase

from persona.assistant_voice import sounds_like_assistant
from persona.corpus import Line, read_corpus
from persona.examples import CONTEXT_TURNS, Example, build_examples, usable
from persona.serving.folding import ServedAdapters, make_foldable
from persona.training.lora import TrainConfig, encode, labelled_nll, pad_batch, train_adapter, write_adapter
from persona.model import LORA_TARGETS, base_model_id, load_base_model
from persona.prompt import Turn, build_reply_scoring_ids
from persona.evaluation import replies as measures
from persona.evaluation.classifier import ReferenceClassifier
from persona.evaluation.options import add_eval_arguments
from persona.evaluation.replies import Answer, write_samples
from persona.retrieval import reply_examples, with_recalled_lines
from persona.serving.service import ECHO_WORDS, PROMPT_TOKENS, ReplyRequest, TwinError, TwinService
from persona.training.trainer import base_train_config
from persona_store import NewMessage, Store, StoredMessage, User, open_store
from twinbot.settings import Settings, SettingsError, load_settings

SCORE_BATCH = 16
CLOSED_AFTER = 50
"""How many lines after a held-out line no twin knows: a scene's worth, where the chat goes on past it."""
LONE_REPLIES = 3
"""Each twin's first held-out lines are answered one at a time, after the others were answered in
batches: a lone reply's wall time with the adapter in use, until its first message is reply_p50_s
(what the person waits for; a burst's next messages follow as they are written), until its last
reply_whole_p50_s."""


def as_messages(lines: list[Line], owner: str) -> list[StoredMessage]:
    """The corpus as the store would hold it for `owner`: their lines own, the others context."""
    return [StoredMessage(id=line.index, owner_id=0, platform="corpus", chat_id=line.chat,
                          message_id=str(line.index), author=line.speaker, is_own=line.speaker == owner,
                          ts=float(line.index), text=line.text, source="import", reply_to=None, is_dm=False)
            for line in lines]


def held_out_example(lines: list[Line], at: int, owner: str) -> Example:
    """Line `at` with the usable lines before it in its chat as context, from `owner`'s point of view."""
    target = lines[at]
    context: list[Turn] = []
    for line in reversed(lines[:at]):
        if line.chat != target.chat or len(context) == CONTEXT_TURNS:
            break
        if usable(line.text):
            context.append(Turn(line.speaker, line.text.strip(), line.speaker == owner))
    return Example(tuple(reversed(context)), target.text.strip())


@dataclass
class Split:
    speaker: str
    known: list[int]
    """The lines the speaker's twin may learn from and recall, in order: the chats of its training lines,
    up to the last of them, less every held-out line and the CLOSED_AFTER lines after it."""
    test: list[int]

    def own_training(self, lines: list[Line]) -> list[int]:
        """The speaker's own usable lines among those their twin knows: what it is trained on."""
        return [at for at in self.known if lines[at].speaker == self.speaker and usable(lines[at].text)]


def split_speakers(lines: list[Line], speakers: int, train_lines: int, test_lines: int) -> list[Split]:
    """The `speakers` busiest speakers' held-out lines (each one's lines after their first `train_lines`,
    `test_lines` of them) and what each twin may know.

    No twin knows a held-out line or the CLOSED_AFTER lines after it in its chat: neither the line it is
    scored on nor the replies that quote it. Else a twin whose owner's first lines run past another
    speaker's held-out ones (a sitcom's later characters' run through its early seasons) recalls and
    learns that very scene. Closing only that stretch, not the chat's whole rest, keeps a corpus of one
    long chat (a group's export, a script with no scenes marked) open to every speaker's first lines.
    Each speaker trains on their first `train_lines` lines outside those stretches, which may come after
    their held-out ones.
    """
    counts = Counter(line.speaker for line in lines if usable(line.text))
    chosen = [name for name, _ in counts.most_common(speakers)]
    if len(chosen) < speakers:
        raise ValueError(f"the corpus has only {len(chosen)} speakers; asked for {speakers}")
    owned = {name: [line.index for line in lines if line.speaker == name and usable(line.text)] for name in chosen}
    for name, own in owned.items():
        if len(own) < train_lines + test_lines:
            raise ValueError(f"{name} has {len(own)} lines; {train_lines} + {test_lines} are needed")
    tests = {name: own[train_lines: train_lines + test_lines] for name, own in owned.items()}
    closed: set[int] = set()
    for at in (at for test in tests.values() for at in test):
        closed.update(after for after in range(at, min(at + CLOSED_AFTER + 1, len(lines)))
                      if lines[after].chat == lines[at].chat)

    splits = []
    for name in chosen:
        training = [at for at in owned[name] if at not in closed][:train_lines]
        if len(training) < train_lines:
            raise ValueError(f"{name} has {len(training)} lines outside the held-out lines and the {CLOSED_AFTER} "
                             f"after each in their chats, and {train_lines} are needed: ask for fewer train lines "
                             "or speakers")
        chats = {lines[at].chat for at in training}
        known = [line.index for line in lines[: training[-1] + 1] if line.chat in chats and line.index not in closed]
        splits.append(Split(name, known, tests[name]))
    return splits


def token_losses(model: torch.nn.Module, encoded: list[tuple[list[int], list[int]]], pad_id: int
                 ) -> list[tuple[float, int]]:
    """(summed negative log-likelihood, token count) of the labelled tokens of each sequence."""
    results: list[tuple[float, int]] = [(0.0, 0)] * len(encoded)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    for start in range(0, len(order), SCORE_BATCH):
        picks = order[start: start + SCORE_BATCH]
        batch = pad_batch([encoded[i] for i in picks], pad_id)
        with torch.inference_mode():
            nll, rows = labelled_nll(model, batch)
        sums = torch.zeros(len(picks), dtype=torch.float64).index_add_(0, rows, nll.double())
        counted = (batch["labels"][:, 1:] != -100).sum(1)
        for row, i in enumerate(picks):
            results[i] = (float(sums[row]), int(counted[row]))
    return results


def perplexity(pairs: list[tuple[float, int]]) -> float:
    total, tokens = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
    return math.exp(total / tokens) if tokens else float("nan")


@dataclass(frozen=True)
class Recalled:
    """What the twins' prompts recall (persona.retrieval), found by the store's own search."""

    training: list[list[Example]]
    """Each twin's training examples, each with the lines its training prompt recalls."""
    replies: dict[tuple[int, int], list[str]]
    """The lines each twin's reply prompt recalls, keyed by (twin, held-out line), for the line being
    answered (the line before the held-out one)."""


async def speaker_examples(store: Store, lines: list[Line], speaker: str, cfg: TrainConfig
                           ) -> tuple[int, list[Example]]:
    """The chats `speaker` writes in put in `store` as /import keeps an export of them (their usable
    lines their own, the others' as context): their user id, and their training examples with the
    lines each recalls, as /train makes them."""
    user = await store.users.get_or_create("corpus", speaker, speaker)
    chats = {line.chat for line in lines if line.speaker == speaker}
    await store.messages.add_many([
        NewMessage(user.id, "corpus", line.chat, str(line.index), line.speaker, line.speaker == speaker,
                   float(line.index), line.text, source="import")
        for line in lines if line.chat in chats and usable(line.text)
    ])
    examples = build_examples(as_messages(lines, speaker))
    return user.id, await with_recalled_lines(store, user.id, examples, cfg.recalled_lines, cfg.recalled_chars)


async def recall_lines(store_path: Path, lines: list[Line], splits: list[Split], tests: list[tuple[int, int]],
                       limit: int, cfg: TrainConfig) -> Recalled:
    """Each speaker's training lines go into a real store at `store_path`, from which their twin recalls
    lines as it would in training and in replies (and from which its replies are made later)."""
    training: list[list[Example]] = []
    replies: dict[tuple[int, int], list[str]] = {}
    async with open_store(store_path) as store:
        for k, split in enumerate(splits):
            user_id, examples = await speaker_examples(store, [lines[at] for at in split.known], split.speaker, cfg)
            training.append(examples)
            for i, (_, at) in enumerate(tests):
                answered = held_out_example(lines, at, split.speaker).answered
                replies[k, i] = await reply_examples(store, user_id, answered, limit, include_dm=False)
    return Recalled(training, replies)


def train_twins(settings: Settings, splits: list[Split], training: list[list[Example]], cfg: TrainConfig,
                target: Path, progress: bool) -> tuple[dict[str, Path], float, int]:
    """Each speaker's twin trained as /train trains one: (adapter dirs, seconds, tokens)."""
    adapters: dict[str, Path] = {}
    seconds, tokens = 0.0, 0
    for k, (split, examples) in enumerate(zip(splits, training, strict=True)):
        base, tokenizer = load_base_model(settings, dtype=cfg.base_dtype)
        bar = tqdm(desc=f"training {split.speaker} ({k + 1}/{len(splits)})", unit="step", disable=not progress,
                   leave=False)

        def show(p, bar=bar) -> bool:  # noqa: ANN001 - a Progress
            bar.total = p.total_steps
            bar.n = p.step
            bar.set_postfix(loss=f"{p.loss:.3f}")
            return True

        model, result = train_adapter(base, tokenizer, encode(tokenizer, split.speaker, examples, cfg.max_tokens),
                                      cfg, progress=show)
        bar.close()
        seconds += result.seconds
        tokens += result.tokens
        adapters[split.speaker] = write_adapter(model, target / f"twin{k}")
        del model, base
    return adapters, seconds, tokens


@dataclass(frozen=True)
class ReferenceAccuracy:
    """How often a line classifier (persona.evaluation.classifier) trained on the twins' training
    lines names the right owner: how attributable the lines are without a language model."""

    line: float
    """Of the real held-out lines, from the line alone."""
    with_context: float
    """Of the real held-out lines, knowing the turns before each."""
    twin_replies: float
    """Of the twins' replies, from the reply alone: whether a twin writes in its owner's style."""
    real_replies: float
    """Of the real lines the twins' replies stand in for, from the line alone."""


def reference_attribution(lines: list[Line], splits: list[Split], tests: list[tuple[int, int]],
                          answers: list[Answer]) -> ReferenceAccuracy:
    """The line classifier's accuracy on the held-out lines and on the twins' replies to them."""
    training = [(held_out_example(lines, at, split.speaker), k) for k, split in enumerate(splits)
                for at in split.own_training(lines)]
    examples, labels = [example for example, _ in training], [k for _, k in training]
    held_out = [held_out_example(lines, at, splits[k].speaker) for k, at in tests]
    replies = [Example((), answer.twin) for answer in answers]

    def accuracy(classifier: ReferenceClassifier, items: list[Example], owners: list[int]) -> float:
        guesses = classifier.predict(items)
        return sum(guess == k for guess, k in zip(guesses, owners, strict=True)) / max(len(owners), 1)

    line_only = ReferenceClassifier.fit(examples, labels, with_context=False)
    with_context = ReferenceClassifier.fit(examples, labels, with_context=True)
    owners = [k for k, _ in tests]
    return ReferenceAccuracy(accuracy(line_only, held_out, owners), accuracy(with_context, held_out, owners),
                             accuracy(line_only, replies, [answer.owner for answer in answers]),
                             accuracy(line_only, [Example((), answer.real) for answer in answers],
                                      [answer.owner for answer in answers]))


@dataclass(frozen=True)
class Replies:
    """The twins' answers to their owners' held-out contexts, and how making them went."""

    answers: list[Answer]
    """In the order of the held-out lines; an empty `twin` where TwinService gave up."""
    lone_seconds: list[tuple[float, float]]
    """Replies made one at a time: seconds until their first message, and until their last."""
    seconds: float
    capped_share: float
    """Of the worker's generations, those cut at the token cap before they ended their turn."""
    largest_batch: int
    strengths: dict[str, float]
    """Each twin's adapter strength in its replies, which falls with its training lines."""


def answers_someone(lines: list[Line], at: int, owner: str) -> bool:
    """Whether held-out line `at` answers another speaker's line: a line that carries on its owner's own
    burst is not a reply to anyone, so the reply measures leave it out."""
    context = held_out_example(lines, at, owner).context
    return bool(context) and not context[-1].is_owner


def real_burst(lines: list[Line], at: int, messages: int) -> tuple[str, ...]:
    """The lines that follow line `at` in its burst (its speaker's next lines in the chat before anyone
    else speaks), as many as a twin's reply may add."""
    after: list[str] = []
    for line in lines[at + 1:]:
        if len(after) == messages - 1 or line.chat != lines[at].chat or line.speaker != lines[at].speaker:
            break
        if usable(line.text):
            after.append(line.text.strip())
    return tuple(after)


def reply_request(owner: User, lines: list[Line], at: int) -> tuple[ReplyRequest, Example]:
    """The chat message held-out line `at` answers, as TwinService gets one (the turns before it as its
    history), and the held-out example it comes from."""
    example = held_out_example(lines, at, owner.display_name)
    *history, answered = example.context or (Turn("", "", is_owner=False),)
    request = ReplyRequest(owner, answered.speaker, answered.text, history, "corpus", lines[at].chat, is_dm=False)
    return request, example


async def twin_replies(settings: Settings, store_path: Path, lines: list[Line], splits: list[Split],
                       tests: list[tuple[int, int]], adapters: dict[str, Path], progress: bool) -> Replies:
    """Each twin answers its owner's held-out contexts exactly as a chat reply is made: TwinService over
    the store holding the owner's lines, with the adapter recorded there, on a real inference worker.
    Replies go in concurrent chunks, so the worker batches them as it batches a busy chat's."""
    async with open_store(store_path) as store:
        owners = []
        for split in splits:
            user = await store.users.get_or_create("corpus", split.speaker, split.speaker)
            await store.adapters.record(user.id, str(adapters[split.speaker]), None, base_model_id(settings),
                                        len(split.own_training(lines)), {})
            owners.append(user)
        service = TwinService(settings, store)
        strengths = {}
        for split, owner in zip(splits, owners, strict=True):
            ref = await service.adapter_for(owner)
            assert ref is not None  # recorded just above
            strengths[split.speaker] = round(ref.strength, 3)
        await service.start()
        answers: dict[int, Answer] = {}
        bar = tqdm(total=len(tests), desc="twins replying", unit="reply", disable=not progress)

        async def answer(i: int) -> tuple[float, float]:
            """Seconds until the first message came, and until the whole reply had."""
            k, at = tests[i]
            request, example = reply_request(owners[k], lines, at)
            begun = time.monotonic()
            messages, first = [], None
            try:
                async for message in service.replies(request):
                    first = first if first is not None else time.monotonic() - begun
                    messages.append(message)
            except TwinError:
                messages = [""]
            answers[i] = Answer(k, splits[k].speaker, example.context, example.target, messages[0],
                                real_burst(lines, at, settings.reply_messages), tuple(messages[1:]))
            bar.update()
            whole = time.monotonic() - begun
            return (first if first is not None else whole), whole

        lone: list[tuple[float, float]] = []
        started = time.monotonic()
        try:
            for k in range(len(splits)):
                own = [i for i, (owner_k, _) in enumerate(tests) if owner_k == k]
                batched, alone = own[LONE_REPLIES:], own[:LONE_REPLIES]
                for start in range(0, len(batched), settings.max_batch_size):
                    await asyncio.gather(*(answer(i) for i in batched[start: start + settings.max_batch_size]))
                for i in alone:
                    lone.append(await answer(i))
        finally:
            bar.close()
            await service.close()
        stats = service.worker.stats
        return Replies([answers[i] for i in range(len(tests))], lone, time.monotonic() - started,
                       stats.capped / max(stats.requests, 1), stats.largest_batch, strengths)


def unprompted_ids(tokenizer: PreTrainedTokenizerBase, lines: list[Line], at: int, reply: str
                   ) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of `reply` as the next line after the conversation before line `at`, with no persona."""
    example = held_out_example(lines, at, "")
    return build_reply_scoring_ids(tokenizer, "", list(example.context), reply, [], PROMPT_TOKENS)


def reply_relevance(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, pad_id: int, lines: list[Line],
                    tests: list[tuple[int, int]], answers: list[Answer], real_in_context: list[tuple[float, int]],
                    seed: int) -> tuple[float, float]:
    """(twin replies, real lines): how much likelier the base with no persona finds each after its own
    context than after another held-out line's (persona.evaluation.replies.relevance).
    `real_in_context` are the real lines' losses in their own context, already scored."""
    elsewhere = [tests[j][1] for j in measures.mismatched_contexts([lines[at].chat for _, at in tests], seed)]
    reads = [unprompted_ids(tokenizer, lines, other, lines[at].text.strip())
             for other, (_, at) in zip(elsewhere, tests, strict=True)]
    for contexts in ([at for _, at in tests], elsewhere):
        reads += [unprompted_ids(tokenizer, lines, at, answer.twin) for at, answer in zip(contexts, answers, strict=True)]
    losses = token_losses(model, reads, pad_id)
    n = len(tests)
    return (measures.relevance(losses[n: 2 * n], losses[2 * n:]),
            measures.relevance(real_in_context, losses[:n]))


def median_seconds(seconds: Iterable[float]) -> float | None:
    values = list(seconds)
    return round(statistics.median(values), 3) if values else None


def reply_measures(lines: list[Line], splits: list[Split], replies: Replies, reference: ReferenceAccuracy,
                   relevance: tuple[float, float]) -> dict:
    """The report's measures of the twins' replies (persona.evaluation.replies), beside the real lines'."""
    stored = [frozenset(measures.normalised(lines[at].text) for at in split.own_training(lines)) for split in splits]
    answers = replies.answers
    return {
        "reply_words_median_twin": measures.median_words(a.twin for a in answers),
        "reply_words_median_real": measures.median_words(a.real for a in answers),
        "reply_cap_share": round(replies.capped_share, 4),
        "reply_style_twin": round(reference.twin_replies, 4), "reply_style_real": round(reference.real_replies, 4),
        "reply_relevance_twin": round(relevance[0], 4), "reply_relevance_real": round(relevance[1], 4),
        "reply_copy_share": round(measures.share(measures.copied(a.twin, stored[a.owner]) for a in answers), 4),
        "reply_assistant_share": round(measures.share(sounds_like_assistant(a.twin) for a in answers), 4),
        "reply_echo_share_twin": round(measures.share(measures.echoed(a, a.twin) for a in answers), 4),
        "reply_echo_share_real": round(measures.share(measures.echoed(a, a.real) for a in answers), 4),
        "reply_burst_share_twin": round(measures.share(bool(a.twin_after) for a in answers), 4),
        "reply_burst_share_real": round(measures.share(bool(a.real_after) for a in answers), 4),
        "reply_p50_s": median_seconds(first for first, _ in replies.lone_seconds),
        "reply_whole_p50_s": median_seconds(whole for _, whole in replies.lone_seconds),
        "reply_failures": sum(not a.twin for a in answers), "reply_seconds": round(replies.seconds, 1),
        "reply_largest_batch": replies.largest_batch,
        "reply_adapter_strengths": replies.strengths,
    }


def log_likelihood_ratios(twin_losses: list[list[tuple[float, int]]], neutral: list[tuple[float, int]]
                          ) -> list[list[float]]:
    """How many nats less likely each held-out line is under each twin than under the base with no
    persona (`twin_losses[twin][line]` and `neutral[line]` are (summed NLL, tokens)), as
    `ratios[line][twin]`.

    A window's ratios add up to the whole window's: the twin that makes its ~40 tokens likeliest wins.
    Per line, dividing by the line's tokens picks the same twin, since every twin reads the same tokens.
    """
    return [[twin[i][0] - base for twin in twin_losses] for i, (base, _) in enumerate(neutral)]


def attribute(scores: list[list[float]], *, centred: bool = False) -> list[int]:
    """The twin each held-out line goes to, the one with the lowest score (`scores[line][twin]`).

    Centred, each twin's scores first lose their mean over all lines: a twin that lowers every
    line's loss (a broad voice, or a prompt that suits everything) stops pulling every line to
    itself. That uses the unlabelled held-out set, so it is reported beside the attribution the
    issue defines, as a diagnostic of how much of the error is such a pull.
    """
    if centred and scores:
        means = [sum(column) / len(column) for column in zip(*scores, strict=True)]
        scores = [[value - mean for value, mean in zip(row, means, strict=True)] for row in scores]
    return [min(range(len(row)), key=row.__getitem__) for row in scores]


def evaluate(settings: Settings, lines: list[Line], splits: list[Split], seed: int, progress: bool = True,
             samples: Path | None = None) -> dict:
    """The report: the twins' attribution and perplexity on the held-out lines, and the measures of
    their replies to them (`samples`, when given, gets the replies beside the real lines)."""
    random.seed(seed)
    torch.manual_seed(seed)
    cfg: TrainConfig = base_train_config(settings, seed)
    names = [s.speaker for s in splits]
    tests = [(owner_k, at) for owner_k, split in enumerate(splits) for at in split.test]
    with tempfile.TemporaryDirectory(prefix="twin-eval-") as tmp:
        store_path = Path(tmp) / "eval.sqlite3"
        recalled = asyncio.run(recall_lines(store_path, lines, splits, tests, settings.retrieval_examples, cfg))
        adapters, train_seconds, train_tokens = train_twins(settings, splits, recalled.training, cfg, Path(tmp),
                                                            progress)
        replied = [i for i, (k, at) in enumerate(tests) if answers_someone(lines, at, splits[k].speaker)]
        reply_tests = [tests[i] for i in replied]
        replies = asyncio.run(twin_replies(settings, store_path, lines, splits, reply_tests, adapters, progress))
        scoring_started = time.monotonic()
        model, tokenizer = load_base_model(settings, dtype=torch.bfloat16)  # scoring only: bf16 is 2-3x faster
        make_foldable(model, LORA_TARGETS)
        served = ServedAdapters(model)  # each twin scored folded in, as a lone reply is served
        for k, name in enumerate(names):
            served.load_adapter(f"twin{k}", adapters[name])
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

        def scored(owner: str, k: int, i: int, at: int) -> tuple[list[int], list[int]]:
            """Line `at` as the reply to the prompt `owner`'s twin would see."""
            example = held_out_example(lines, at, owner)
            return build_reply_scoring_ids(tokenizer, owner, list(example.context), example.target,
                                           recalled.replies[k, i], PROMPT_TOKENS)

        twin_loss: dict[int, list[tuple[float, int]]] = {}
        untrained_own: list[tuple[float, int]] = [(0.0, 0)] * len(tests)
        for k, name in enumerate(tqdm(names, desc="scoring held-out lines", disable=not progress)):
            encoded = [scored(name, k, i, at) for i, (_, at) in enumerate(tests)]
            own = [i for i, (owner_k, _) in enumerate(tests) if owner_k == k]
            served.set_adapter(f"twin{k}")
            twin_loss[k] = token_losses(model, encoded, pad_id)
            served.delete_adapter(f"twin{k}")  # its folds go, and the base serves: the untrained twin
            for i, loss in zip(own, token_losses(model, [encoded[i] for i in own], pad_id), strict=True):
                untrained_own[i] = loss
        neutral = token_losses(model, [unprompted_ids(tokenizer, lines, at, lines[at].text.strip())
                                       for _, at in tests], pad_id)
        relevance = reply_relevance(model, tokenizer, pad_id, lines, reply_tests, replies.answers,
                                    [neutral[i] for i in replied], seed)
        score_seconds = time.monotonic() - scoring_started
    if samples is not None:
        write_samples(samples, replies.answers)

    reference = reference_attribution(lines, splits, tests, replies.answers)
    reply_report = {**reply_measures(lines, splits, replies, reference, relevance), "reply_lines": len(reply_tests)}
    ratios = log_likelihood_ratios([twin_loss[k] for k in range(len(names))], neutral)
    scores = [[ratio / max(tokens, 1) for ratio in row] for row, (_, tokens) in zip(ratios, neutral, strict=True)]
    window_scores, window_owners = measures.windows(ratios, [owner_k for owner_k, _ in tests])
    confusion = [[0] * len(names) for _ in names]
    for (owner_k, _), guess in zip(tests, attribute(scores), strict=True):
        confusion[owner_k][guess] += 1
    correct = sum(confusion[k][k] for k in range(len(names)))
    centred = sum(guess == owner_k for (owner_k, _), guess in zip(tests, attribute(scores, centred=True), strict=True))
    own = [twin_loss[owner_k][i] for i, (owner_k, _) in enumerate(tests)]
    other = [twin_loss[k][i] for i, (owner_k, _) in enumerate(tests) for k in range(len(names)) if k != owner_k]
    per_speaker = {name: round(confusion[k][k] / len(splits[k].test), 3) for k, name in enumerate(names)}
    return {
        "speakers": names, "attribution_accuracy": round(correct / len(tests), 4), "chance": round(1 / len(names), 4),
        "attribution_accuracy_centred": round(centred / len(tests), 4),
        "attribution_accuracy_window5": round(measures.share(
            guess == owner_k for guess, owner_k in zip(attribute(window_scores), window_owners, strict=True)), 4),
        "attribution_reference_line": round(reference.line, 4),
        "attribution_reference_with_context": round(reference.with_context, 4),
        **reply_report,
        "ppl_base": round(perplexity(untrained_own), 2), "ppl_own": round(perplexity(own), 2),
        "ppl_other": round(perplexity(other), 2), "ppl_base_no_persona": round(perplexity(neutral), 2),
        "train_seconds": round(train_seconds, 1),
        "train_tokens_per_s": round(train_tokens / train_seconds, 1) if train_seconds else 0.0,
        "score_seconds": round(score_seconds, 1),
        "per_speaker_accuracy": per_speaker, "confusion": confusion, "test_lines": len(tests),
        "train_config": {"rank": cfg.rank, "epochs": cfg.epochs, "max_steps": cfg.max_steps,
                         "max_tokens": cfg.max_tokens, "learning_rate": cfg.learning_rate},
        "retrieval_examples": settings.retrieval_examples, "prompt_tokens": PROMPT_TOKENS,
    }


def table(report: dict) -> str:
    rows = [f"{'speaker':<16} accuracy"] + [f"{name:<16} {acc:.2f}" for name, acc in report["per_speaker_accuracy"].items()]
    drop = 1 - report["ppl_own"] / report["ppl_base"]
    rows += ["", f"attribution accuracy {report['attribution_accuracy']:.3f} (chance {report['chance']:.3f})",
             f"centred on each twin's mean score: {report['attribution_accuracy_centred']:.3f}",
             f"an n-gram classifier trained on the same lines: {report['attribution_reference_line']:.3f} from "
             f"the line, {report['attribution_reference_with_context']:.3f} knowing who spoke before it",
             f"over windows of {measures.WINDOW} lines of one speaker: {report['attribution_accuracy_window5']:.3f}",
             f"perplexity: base {report['ppl_base']}, own twin {report['ppl_own']} ({drop:.0%} lower), "
             f"other twins {report['ppl_other']}",
             "",
             f"replies: median {report['reply_words_median_twin']:g} words (the real lines "
             f"{report['reply_words_median_real']:g}); {report['reply_cap_share']:.1%} ran to the token cap; "
             f"a lone reply's first message takes {report['reply_p50_s']} s, all of it {report['reply_whole_p50_s']} s "
             "(p50)",
             f"in the owner's style (the classifier names the owner): twin {report['reply_style_twin']:.3f}, "
             f"real {report['reply_style_real']:.3f}",
             f"relevance to the chat (nats a token): twin {report['reply_relevance_twin']:+.3f}, "
             f"real {report['reply_relevance_real']:+.3f}",
             f"copies of a stored line {report['reply_copy_share']:.1%}; in an assistant's voice "
             f"{report['reply_assistant_share']:.1%}; no reply {report['reply_failures']}",
             f"saying back {ECHO_WORDS} words of the chat in a row: twin {report['reply_echo_share_twin']:.1%}, "
             f"real {report['reply_echo_share_real']:.1%}",
             f"sent as a burst of 2 or more messages: twin {report['reply_burst_share_twin']:.1%}, "
             f"real {report['reply_burst_share_real']:.1%}",
             f"training: {report['train_seconds']} s, {report['train_tokens_per_s']} tokens/s; "
             f"replying: {report['reply_seconds']} s; scoring: {report['score_seconds']} s"]
    return "\n".join(rows)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """The eval as the options ask (persona.evaluation.options): prints the table, writes the files.
    A bad corpus raises ValueError or OSError."""
    torch.set_num_threads(args.threads)
    started = time.monotonic()
    lines = read_corpus(args.corpus)
    splits = split_speakers(lines, args.speakers, args.train_lines, args.test_lines)
    report = evaluate(settings, lines, splits, args.seed, samples=args.samples)
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    print(table(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m persona.evaluation.suite", description=__doc__.splitlines()[0])
    add_eval_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args, load_settings())
    except (OSError, ValueError, SettingsError) as exc:
        print(f"persona.evaluation.suite: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
