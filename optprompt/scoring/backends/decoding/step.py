"""One decoding step of the running batch: next tokens and drafts in, accepted tokens out."""

from __future__ import annotations

from typing import Any

from optprompt.scoring.backends.decoding.batch import RunningBatch
from optprompt.scoring.backends.decoding.drafter import accepted
from optprompt.scoring.backends.decoding.forward import Forward
from optprompt.scoring.backends.decoding.outputs import Outputs

__all__ = ["decode_step"]


def _block(batch: RunningBatch, drafts: list[list[int]], outputs: Outputs, pad_id: int) -> tuple[Any, Any]:
    """What each batch row is fed: its next token and its draft, padded to the longest;
    and which of those tokens are real (a finished row kept in the batch gets padding)."""
    import torch

    width = 1 + max((len(d) for d in drafts), default=0)
    n = len(batch.rows)
    block = torch.full((n, width), pad_id, dtype=torch.long)
    valid = torch.zeros((n, width), dtype=torch.long)
    for i, (t, d) in enumerate(zip(batch.last, drafts)):
        if outputs.done[batch.rows[i]]:  # kept in the batch (compaction off): fed padding, masked
            continue
        block[i, : 1 + len(d)] = torch.tensor([t, *d], dtype=torch.long)
        valid[i, : 1 + len(d)] = 1
    return block, valid


def decode_step(forward: Forward, batch: RunningBatch, drafts: list[list[int]], outputs: Outputs) -> None:
    """Feed each running row its next token and its draft in one pass and keep what greedy
    decoding agrees with: the drafted prefix the model's guesses confirm, then the model's
    own next token. Rejected draft positions stay in the cache as masked holes."""
    import torch

    block, valid = _block(batch, drafts, outputs, forward.pad_id)
    width = block.shape[1]
    guesses = forward.step(batch, block, valid)
    advance = []
    for i, d in enumerate(drafts):
        g = guesses[i]
        a = accepted(d, g)
        if not outputs.done[batch.rows[i]]:
            outputs.emit(batch.rows[i], g[: a + 1])
        batch.last[i] = g[a]
        advance.append(a + 1)
        if a + 1 < width:
            batch.mask[i, batch.mask.shape[1] - width + a + 1 :] = 0
    batch.next_pos = batch.next_pos + torch.tensor(advance, device=forward.device)
