"""The eval's reference classifier: it learns from a line's words and from who spoke before it, and
never from whose view the context was built."""

from __future__ import annotations

import random
from dataclasses import replace

from persona.examples import Example
from persona.prompt import Turn
from persona.evaluation.classifier import ReferenceClassifier, char_ngrams


def answers(n: int, seed: int) -> tuple[list[Example], list[int]]:
    """Speaker 0 answers Zed, speaker 1 answers Yan, with the same few words: only the context tells them apart."""
    rng = random.Random(seed)
    examples, labels = [], []
    for _ in range(n):
        label = rng.randrange(2)
        asker = ("Zed", "Yan")[label]
        context = (Turn("Xia", rng.choice(["morning", "hello all"]), False),
                   Turn(asker, rng.choice(["you coming?", "lunch later?", "seen this?"]), False))
        examples.append(Example(context, rng.choice(["ok", "sure", "yeah ok"])))
        labels.append(label)
    return examples, labels


def test_who_spoke_before_a_line_tells_speakers_apart_when_their_words_cannot() -> None:
    train, train_labels = answers(80, seed=0)
    test, test_labels = answers(40, seed=1)
    guesses = ReferenceClassifier.fit(train, train_labels, with_context=True).predict(test)
    assert guesses == test_labels

    blind = ReferenceClassifier.fit(train, train_labels, with_context=False).predict(test)
    assert sum(g == t for g, t in zip(blind, test_labels)) < 0.8 * len(test)


def test_whose_view_the_context_is_seen_from_changes_nothing() -> None:
    train, labels = answers(60, seed=2)
    test, _ = answers(30, seed=3)
    classifier = ReferenceClassifier.fit(train, labels, with_context=True)
    as_owner = [replace(e, context=tuple(replace(t, is_owner=True) for t in e.context)) for e in test]
    assert classifier.predict(as_owner) == classifier.predict(test)


def test_character_ngrams_stay_within_words_and_count_a_short_word_once() -> None:
    assert char_ngrams("Hi") == [" h", "hi", "i ", " hi", "hi ", " hi "]
    assert char_ngrams("a b") == [" a", "a ", " a ", " b", "b ", " b "]
