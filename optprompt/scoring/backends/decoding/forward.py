"""The model's forward passes while decoding: a prefill for rows starting, then steps.

The model's plain forward is called with explicit positions and attention masks, so a
row's tokens sit at the positions they have when the row runs alone, whatever the
padding around them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optprompt.scoring.backends.decoding.batch import RunningBatch
from optprompt.scoring.backends.decoding.cache import expand
from optprompt.scoring.backends.decoding.lead import Lead
from optprompt.scoring.backends.kv import cache_kwargs, output_cache

__all__ = ["Forward"]


class Forward:
    """Runs ``model`` over prompts and running batches; counts the tokens it computes.

    Args:
        model: A transformers causal LM.
        lead: Shared positions in front of every row.
        pad_id: Filler for padded positions.
        keep_arg: Whether the model's forward accepts ``logits_to_keep``.
        temperature: 0: the argmax at each position; else one seeded sample per row (at
            the first position fed).

    Attributes:
        computed: Tokens that went through the model so far.
    """

    def __init__(self, model: Any, lead: Lead, *, pad_id: int, keep_arg: bool, temperature: float) -> None:
        self.model = model
        self.lead = lead
        self.pad_id = pad_id
        self.keep_arg = keep_arg
        self.temperature = temperature
        self.device = next(model.parameters()).device
        self.computed = 0

    def pick(self, logits: Any) -> list[list[int]]:
        """The next token per row and position: argmax, or one sample at the first position."""
        import torch

        if self.temperature > 0:
            probs = torch.softmax(logits[:, 0] / self.temperature, dim=-1)
            return torch.multinomial(probs, num_samples=1).tolist()
        return logits.argmax(dim=-1).tolist()

    def prefill(self, rows: list[int], prompts: Sequence[list[int]]) -> RunningBatch:
        """Run ``prompts`` (those of input rows ``rows``, after the lead) in one pass,
        left-padded: a batch of those rows, each to be fed its first generated token."""
        import torch

        P, device = self.lead.length, self.device
        n, L = len(prompts), max(len(p) for p in prompts)
        ids = torch.full((n, L), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, P + L), dtype=torch.long)
        mask[:, :P] = 1
        positions = torch.zeros((n, P + L), dtype=torch.long)
        positions[:, :P] = torch.arange(P)
        for i, prompt in enumerate(prompts):
            k = len(prompt)
            ids[i, L - k :] = torch.tensor(prompt, dtype=torch.long)
            mask[i, P + L - k :] = 1
            positions[i, P + L - k :] = torch.arange(P, P + k)
        ids, mask, positions = ids.to(device), mask.to(device), positions.to(device)
        kwargs: dict[str, Any] = {"logits_to_keep": 1} if self.keep_arg else {}
        if self.lead.embeds is not None:
            embeds = self.model.get_input_embeddings()(ids)
            virtual = self.lead.embeds.to(device=device, dtype=embeds.dtype).expand(n, -1, -1)
            inputs: dict[str, Any] = {"inputs_embeds": torch.cat([virtual, embeds], dim=1)}
            pos = positions
            self.computed += n * (P + L)
        else:
            inputs = {"input_ids": ids}
            pos = positions[:, P:]
            if self.lead.cache is not None:
                kwargs.update(cache_kwargs(self.model, expand(self.lead.cache, n)))
            self.computed += n * L
        result = self.model(**inputs, attention_mask=mask, position_ids=pos, use_cache=True, **kwargs)
        first = [g[0] for g in self.pick(result.logits[:, -1:, :].float())]
        next_pos = torch.tensor([P + len(p) for p in prompts], dtype=torch.long, device=device)
        return RunningBatch(list(rows), first, output_cache(result), mask, next_pos)

    def step(self, batch: RunningBatch, block: Any, valid: Any) -> list[list[int]]:
        """Feed ``block`` (per batch row: its next token, then its draft, padded) to the
        batch, ``valid`` marking the real tokens; the batch's cache and mask grow by the
        block. Returns the model's guess at each position of the block."""
        import torch

        n, width = block.shape
        device = self.device
        batch.mask = torch.cat([batch.mask, valid.to(device)], dim=1)
        pos = batch.next_pos[:, None] + torch.arange(width, device=device)[None]
        keep = {"logits_to_keep": width} if self.keep_arg else {}
        result = self.model(
            input_ids=block.to(device),
            attention_mask=batch.mask,
            position_ids=pos,
            use_cache=True,
            **cache_kwargs(self.model, batch.cache),
            **keep,
        )
        batch.cache = output_cache(result)
        self.computed += int(valid.sum()) if width > 1 else n
        return self.pick(result.logits[:, -width:, :].float())
