"""Seeded samples of a split, for demonstration pools and the like."""

from __future__ import annotations

import random
from collections.abc import Sequence

from optprompt.tasks.task import Example

__all__ = ["balanced_sample"]


def balanced_sample(examples: Sequence[Example], size: int, rng: random.Random, *, by_label: bool) -> list[Example]:
    """Up to ``size`` examples; with ``by_label``, labels take turns (a label-balanced pool)."""
    if not by_label:
        return rng.sample(list(examples), min(size, len(examples)))
    groups: dict[str, list[Example]] = {}
    for ex in examples:
        groups.setdefault(ex.target, []).append(ex)
    for g in groups.values():
        rng.shuffle(g)
    pool: list[Example] = []
    while len(pool) < min(size, len(examples)):
        for key in sorted(groups):
            if groups[key] and len(pool) < size:
                pool.append(groups[key].pop())
    return pool
