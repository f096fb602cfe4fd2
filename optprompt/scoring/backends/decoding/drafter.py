"""Prompt-lookup drafting: tokens guessed from the row's own text, verified by the model."""

from __future__ import annotations

from collections.abc import Sequence

from optprompt.scoring.backends.decoding.outputs import Outputs

__all__ = ["Drafter", "accepted", "lookup_draft"]


def lookup_draft(context: Sequence[int], k: int, ngram: int = 3) -> list[int]:
    """Prompt-lookup draft (Saxena, 2023): up to ``k`` tokens that followed an earlier
    occurrence of ``context``'s last ``ngram`` (down to 1) tokens in ``context``: the
    latest occurrence of the longest such tail with ``k`` tokens after it, else the
    longest tail's occurrence with the most; empty when none occurs. Extraction copies
    spans of its input, so the drafts often hold.
    """
    n = len(context)
    if k <= 0:
        return []
    partial: list[int] = []
    for size in range(min(ngram, n - 1), 0, -1):
        tail = list(context[n - size :])
        best: list[int] = []
        for start in range(n - size - 1, -1, -1):
            if list(context[start : start + size]) == tail:
                follow = list(context[start + size : start + size + k])
                if len(follow) == k:
                    return follow
                if len(follow) > len(best):
                    best = follow
        if best and not partial:
            partial = best
    return partial


class Drafter:
    """Drafts for the running rows: up to ``tokens`` per row (0: none), never past a row's
    budget, looked up in the row's prompt and output so far."""

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens

    def drafts(self, rows: Sequence[int], outputs: Outputs) -> list[list[int]]:
        """One draft per row of ``rows`` (empty when drafting is off)."""
        if not self.tokens:
            return [[] for _ in rows]
        return [lookup_draft(outputs.history[b], min(self.tokens, outputs.left(b) - 1)) for b in rows]


def accepted(draft: Sequence[int], guesses: Sequence[int]) -> int:
    """How many tokens of ``draft`` the model agrees with: the length of the prefix where
    each drafted token is the model's guess at its position."""
    a = 0
    while a < len(draft) and draft[a] == guesses[a]:
        a += 1
    return a
