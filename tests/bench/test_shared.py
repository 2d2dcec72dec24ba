"""The benchmarks' child processes: an answer comes back, and a failure ends the wait with an error."""

from __future__ import annotations

import os

import pytest

from bench.shared import in_child


def answer(x: int) -> int:
    return x * 2


async def answer_later(x: int) -> int:
    return x + 1


def raise_error(x: int) -> int:
    raise ValueError(f"bad input {x}")


def die(x: int) -> int:
    os._exit(x)


def test_a_function_and_a_coroutine_answer() -> None:
    assert in_child(answer, (21,), 1) == 42
    assert in_child(answer_later, (41,), 1) == 42


def test_an_exception_in_the_child_is_raised_with_its_traceback() -> None:
    with pytest.raises(RuntimeError, match="bad input 7"):
        in_child(raise_error, (7,), 1)


def test_a_child_that_dies_without_answering_ends_the_wait() -> None:
    with pytest.raises(RuntimeError, match="exit code 3"):
        in_child(die, (3,), 1)
