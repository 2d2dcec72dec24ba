"""How attributable held-out lines are at all: a linear classifier trained on the twins' own training lines.

An attribution score means little alone ("Yeah." could be anyone's), so the eval reports beside it
what the baseline of an authorship study gets from the same lines: logistic regression over TF-IDF
word and character n-grams of the line, and optionally of the two turns before it, which shows
how much of the telling apart is who tends to speak after whom, something a twin's score never weighs.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from persona.examples import Example

CONTEXT_TURNS_SEEN = 2
INVERSE_REGULARISATION = 1.0
"""C of the L2-regularised objective C * sum(cross-entropy) + |W|^2 / 2."""
_WORD = re.compile(r"\b\w\w+\b")


def word_ngrams(text: str) -> list[str]:
    words = _WORD.findall(text.lower())
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


def char_ngrams(text: str) -> list[str]:
    """Character 2- to 5-grams of each word padded with a space each side (a short word counts once)."""
    grams = []
    for word in text.lower().split():
        padded = f" {word} "
        for n in range(2, 6):
            grams += [padded[i: i + n] for i in range(max(1, len(padded) - n + 1))]
            if len(padded) <= n:
                break
    return grams


def context_tokens(example: Example) -> list[str]:
    """The speakers and words of the turns just before the line (not whose turn it is: that is the label)."""
    tokens = []
    for turn in example.context[-CONTEXT_TURNS_SEEN:]:
        tokens += [f"<speaker {turn.speaker.lower()}>", *turn.text.lower().split()]
    return tokens


@dataclass(frozen=True)
class FeatureBlock:
    """One kind of feature, with the vocabulary and IDF weights learnt from the training lines."""

    extract: Callable[[Example], list[str]]
    vocabulary: dict[str, int]
    idf: tuple[float, ...]

    @classmethod
    def fit(cls, extract: Callable[[Example], list[str]], examples: Sequence[Example], min_count: int) -> FeatureBlock:
        document_counts = Counter(gram for example in examples for gram in set(extract(example)))
        kept = [gram for gram, count in document_counts.items() if count >= min_count]
        n = len(examples)
        idf = tuple(math.log((1 + n) / (1 + document_counts[gram])) + 1 for gram in kept)
        return cls(extract, {gram: i for i, gram in enumerate(kept)}, idf)

    def rows(self, examples: Sequence[Example]) -> list[dict[int, float]]:
        """Each example's sublinear TF-IDF weights, L2-normalised within this block."""
        rows = []
        for example in examples:
            counts = Counter(g for g in self.extract(example) if g in self.vocabulary)
            weights = {self.vocabulary[g]: (1 + math.log(c)) * self.idf[self.vocabulary[g]]
                       for g, c in counts.items()}
            norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
            rows.append({i: w / norm for i, w in weights.items()})
        return rows


@dataclass(frozen=True)
class ReferenceClassifier:
    blocks: tuple[FeatureBlock, ...]
    weights: torch.Tensor
    bias: torch.Tensor

    @classmethod
    def fit(cls, examples: Sequence[Example], labels: Sequence[int], *, with_context: bool,
            max_iterations: int = 500) -> ReferenceClassifier:
        """Trained on `examples` labelled by speaker (0..n-1); `with_context`, on the turns before each too."""
        blocks = (FeatureBlock.fit(lambda e: word_ngrams(e.target), examples, 1),
                  FeatureBlock.fit(lambda e: char_ngrams(e.target), examples, 2))
        if with_context:
            blocks += (FeatureBlock.fit(context_tokens, examples, 1),)
        features = _matrix(blocks, examples)
        targets = torch.tensor(list(labels))
        weights = torch.zeros(features.shape[1], int(targets.max()) + 1, requires_grad=True)
        bias = torch.zeros(weights.shape[1], requires_grad=True)
        optimiser = torch.optim.LBFGS([weights, bias], max_iter=max_iterations, history_size=20,
                                      line_search_fn="strong_wolfe", tolerance_grad=1e-6)

        def objective() -> torch.Tensor:
            optimiser.zero_grad()
            logits = torch.sparse.mm(features, weights) + bias
            loss = INVERSE_REGULARISATION * torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
            loss = loss + 0.5 * (weights * weights).sum()
            loss.backward()
            return loss

        optimiser.step(objective)
        return cls(blocks, weights.detach(), bias.detach())

    def predict(self, examples: Sequence[Example]) -> list[int]:
        logits = torch.sparse.mm(_matrix(self.blocks, examples), self.weights) + self.bias
        return logits.argmax(1).tolist()


def _matrix(blocks: Sequence[FeatureBlock], examples: Sequence[Example]) -> torch.Tensor:
    """The examples' features, block after block, as one sparse (examples x features) matrix."""
    rows, columns, values = [], [], []
    offset = 0
    for block in blocks:
        for row, weights in enumerate(block.rows(examples)):
            for column, value in weights.items():
                rows.append(row)
                columns.append(offset + column)
                values.append(value)
        offset += len(block.vocabulary)
    return torch.sparse_coo_tensor(torch.tensor([rows, columns], dtype=torch.long).reshape(2, -1),
                                   torch.tensor(values, dtype=torch.float32),
                                   (len(examples), offset), check_invariants=True).coalesce()
