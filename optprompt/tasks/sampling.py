"""Seeded samples of a split, for demonstration pools and the like."""

from __future__ import annotations

import random
from collections.abc import Sequence

from optprompt.tasks.task import Example

__all__ = ["balanced_sample", "holdout_split"]


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


def holdout_split(examples: Sequence[Example], fraction: float) -> tuple[list[Example], list[Example]]:
    """``examples`` (already in a seeded order) split into (kept, held out): ``fraction`` of
    each gold answer's examples held out, rounded, taken from the end of the order; the
    same share overall when answers are free text. Both keep the input order."""
    groups: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        groups.setdefault(ex.target if ex.target_index >= 0 else "", []).append(i)
    if len(groups) > len(examples) / 2:  # free-text answers: no strata
        groups = {"": list(range(len(examples)))}
    held = {i for members in groups.values() for i in members[len(members) - round(fraction * len(members)) :]}
    return [ex for i, ex in enumerate(examples) if i not in held], [ex for i, ex in enumerate(examples) if i in held]
