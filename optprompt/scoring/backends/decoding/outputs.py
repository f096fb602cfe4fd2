"""Each row's output, and when a row ends: an end-of-sequence token, the budget, a stop string."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["Outputs", "StopStrings"]


class StopStrings:
    """Whether generated tokens, decoded, hold one of the stop strings (empty ones ignored)."""

    def __init__(self, tokenizer: Any, stops: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        self.stops = [s for s in stops if s]

    def reached(self, tokens: list[int]) -> bool:
        if not self.stops:
            return False
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        return any(s in text for s in self.stops)


class Outputs:
    """The tokens generated per row until it ends.

    Attributes:
        tokens: Each row's output (an end-of-sequence token is not kept).
        done: Whether each row has ended.
        history: Each row's prompt and output: what its drafts are looked up in.
    """

    def __init__(self, seqs: Sequence[list[int]], *, budget: int, eos: set[int], stops: StopStrings) -> None:
        self.budget = budget
        self.eos = eos
        self.stops = stops
        self.tokens: list[list[int]] = [[] for _ in seqs]
        self.done = [False] * len(seqs)
        self.history = [list(s) for s in seqs]

    def emit(self, b: int, tokens: Sequence[int]) -> None:
        """Append ``tokens`` to row ``b``'s output until it ends."""
        out = self.tokens[b]
        for t in tokens:
            if t in self.eos:
                self.done[b] = True
                return
            out.append(t)
            self.history[b].append(t)
            if len(out) >= self.budget or self.stops.reached(out):
                self.done[b] = True
                return

    def left(self, b: int) -> int:
        """Tokens row ``b`` may still generate."""
        return self.budget - len(self.tokens[b])
