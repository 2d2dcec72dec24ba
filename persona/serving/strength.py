"""How strongly a reply uses a twin's adapter, from how many of its owner's lines trained it.

Serving amplifies what a twin learned over the shared base (`ServedAdapters`). A twin of a few
hundred lines has taken a few dozen steps away from the base, and needs 2× to write in its owner's
style as often as the owner does; one of thousands has moved much further, and at 2× says a word
over and over where 1.5 keeps it in character (docs/benchmarks.md). Between the two, the strength
falls with the logarithm of the lines, as training's steps grow with them.
"""

from __future__ import annotations

import math

FEW_LINES = 300
"""A twin of this many lines or fewer is served at the `few` strength."""
MANY_LINES = 2000
"""A twin of this many lines or more is served at the `many` strength."""


def adapter_strength(lines: int, *, few: float, many: float) -> float:
    """The strength for a twin trained on `lines` of its owner's lines."""
    if lines <= FEW_LINES:
        return few
    if lines >= MANY_LINES:
        return many
    share = math.log(lines / FEW_LINES) / math.log(MANY_LINES / FEW_LINES)
    return few + (many - few) * share
