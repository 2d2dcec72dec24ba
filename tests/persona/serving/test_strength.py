"""The strength a twin's adapter is served at, from the number of lines it learned from."""

from __future__ import annotations

import math

import pytest

from persona.serving.strength import FEW_LINES, MANY_LINES, adapter_strength


def test_few_lines_get_the_few_strength_and_many_the_many() -> None:
    for lines in (0, 1, FEW_LINES):
        assert adapter_strength(lines, few=2.0, many=1.5) == 2.0
    for lines in (MANY_LINES, 10 * MANY_LINES):
        assert adapter_strength(lines, few=2.0, many=1.5) == 1.5


def test_between_the_strength_falls_with_the_log_of_the_lines() -> None:
    middle = round(math.sqrt(FEW_LINES * MANY_LINES))
    assert adapter_strength(middle, few=2.0, many=1.5) == pytest.approx(1.75, abs=1e-3)
    strengths = [adapter_strength(lines, few=2.0, many=1.5) for lines in range(FEW_LINES, MANY_LINES + 1, 50)]
    assert all(a > b for a, b in zip(strengths, strengths[1:]))
    assert adapter_strength(1000, few=1.0, many=1.0) == 1.0
