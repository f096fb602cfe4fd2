"""The rows decoding together: which rows, their next tokens, cache, mask and positions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optprompt.scoring.backends.decoding.cache import join

__all__ = ["RunningBatch"]


@dataclass
class RunningBatch:
    """Rows in one forward pass, batch row ``i`` being row ``rows[i]`` of the input.

    Attributes:
        rows: The input row of each batch row.
        last: Per batch row, the token to feed next.
        cache: The key/value cache of every batch row (the lead, the prompt, the output).
        mask: Attention mask over the cache's positions (padding and rejected drafts: 0).
        next_pos: Per batch row, the position of the token fed next.
    """

    rows: list[int]
    last: list[int]
    cache: Any
    mask: Any
    next_pos: Any

    def select(self, kept: list[int]) -> None:
        """Keep the batch rows at indices ``kept`` (in order), and their cache."""
        if kept and len(kept) < len(self.rows):
            import torch

            index = torch.tensor(kept, device=self.next_pos.device)
            self.cache.batch_select_indices(index)
            self.mask, self.next_pos = self.mask[index], self.next_pos[index]
        self.rows = [self.rows[i] for i in kept]
        self.last = [self.last[i] for i in kept]

    def join(self, other: RunningBatch) -> None:
        """Append ``other``'s rows (rows starting while these run), caches aligned at the right."""
        import torch

        self.mask = join(self.cache, self.mask, other.cache, other.mask)
        self.next_pos = torch.cat([self.next_pos, other.next_pos])
        self.rows += other.rows
        self.last += other.last
