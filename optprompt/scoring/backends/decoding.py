"""One decoding loop for every causal backend: plain, shared-prefix and adapted models.

``model.generate`` hides how positions, attention masks and the key/value cache move
from step to step, and that has changed under optprompt's feet: transformers 5.24 renamed
``past_key_values`` to ``cache``, and PEFT's generation hook for prompt learning, which
still looks for the old name, re-inserted the virtual tokens at every step. This loop owns
those details instead: it calls the model's plain forward pass, so what it generates is by
construction what a forward-pass greedy loop produces.

Layout of a batch, left to right: an optional *lead* that every row shares (the key/value
cache of a shared prompt prefix or of prefix-tuning's virtual tokens, or the embeddings
of prompt-tuning's virtual tokens), then each row's prompt, left-padded. Padding is
masked out and positions are explicit, so every real token sits at the position it has
when its row runs alone.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optprompt.scoring.backends.base import GenerationSettings
from optprompt.scoring.backends.kv import cache_kwargs, output_cache

__all__ = ["Lead", "decode", "eos_ids"]


@dataclass(frozen=True)
class Lead:
    """What comes before every row's prompt.

    Attributes:
        length: Positions it occupies (the first prompt token sits at this position).
        cache: A key/value cache for those positions, for one row (expanded per batch).
        embeds: Input embeddings for those positions, shape ``(1, length, hidden)``,
            run through the model with the prompts in the first step.
    """

    length: int = 0
    cache: Any = None
    embeds: Any = None

    def __post_init__(self) -> None:
        if self.cache is not None and self.embeds is not None:
            raise ValueError("a lead is either a cache or embeddings, not both")


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """End-of-sequence token ids: the model's generation config, else the tokenizer's."""
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if ids is None:
        ids = tokenizer.eos_token_id
    if ids is None:
        return set()
    return {int(i) for i in ids} if isinstance(ids, (list, tuple)) else {int(ids)}


def _expand(cache: Any, n: int) -> Any:
    out = copy.deepcopy(cache)
    if n > 1:
        out.batch_repeat_interleave(n)
    return out


def decode(
    model: Any,
    tokenizer: Any,
    seqs: Sequence[list[int]],
    settings: GenerationSettings,
    *,
    pad_id: int,
    lead: Lead | None = None,
    keep_arg: bool = True,
) -> tuple[list[list[int]], int]:
    """Greedy (or seeded temperature-sampling) continuations of token sequences.

    Args:
        model: A transformers causal LM (its plain forward is called).
        tokenizer: Decodes the generated tokens to check stop strings.
        seqs: Each row's prompt tokens (after the lead).
        settings: Budget, stop strings, temperature and seed.
        pad_id: Filler for padded positions.
        lead: Shared positions in front of every row.
        keep_arg: Whether the model's forward accepts ``logits_to_keep``.

    Returns:
        The generated token ids of each row (up to, not including, an end-of-sequence
        token), and the number of tokens that went through the model.
    """
    import torch

    lead = lead or Lead()
    device = next(model.parameters()).device
    B, L, P = len(seqs), max(len(s) for s in seqs), lead.length
    ids = torch.full((B, L), pad_id, dtype=torch.long)
    mask = torch.zeros((B, P + L), dtype=torch.long)
    mask[:, :P] = 1
    positions = torch.full((B, P + L), 0, dtype=torch.long)
    positions[:, :P] = torch.arange(P)
    for b, s in enumerate(seqs):
        n = len(s)
        ids[b, L - n :] = torch.tensor(s, dtype=torch.long)
        mask[b, P + L - n :] = 1
        positions[b, P + L - n :] = torch.arange(P, P + n)
    next_pos = torch.tensor([P + len(s) for s in seqs], dtype=torch.long)
    kwargs: dict[str, Any] = {"logits_to_keep": 1} if keep_arg else {}
    ids, mask, positions = ids.to(device), mask.to(device), positions.to(device)
    if lead.embeds is not None:
        embeds = model.get_input_embeddings()(ids)
        virtual = lead.embeds.to(device=device, dtype=embeds.dtype).expand(B, -1, -1)
        inputs: dict[str, Any] = {"inputs_embeds": torch.cat([virtual, embeds], dim=1)}
        pos = positions
        computed = B * (P + L)
    else:
        inputs = {"input_ids": ids}
        pos = positions[:, P:]
        if lead.cache is not None:
            kwargs.update(cache_kwargs(model, _expand(lead.cache, B)))
        computed = B * L
    stops = [s for s in settings.stop if s]
    eos = eos_ids(model, tokenizer)
    out: list[list[int]] = [[] for _ in range(B)]
    done = [False] * B
    if settings.temperature > 0:
        torch.manual_seed(settings.seed)
    for step in range(settings.max_new_tokens):
        result = model(**inputs, attention_mask=mask, position_ids=pos, use_cache=True, **kwargs)
        logits = result.logits[:, -1, :].float()
        if settings.temperature > 0:
            probs = torch.softmax(logits / settings.temperature, dim=-1)
            nxt = torch.multinomial(probs, num_samples=1)[:, 0]
        else:
            nxt = logits.argmax(dim=-1)
        for b, t in enumerate(nxt.tolist()):
            if done[b]:
                continue
            if t in eos:
                done[b] = True
                continue
            out[b].append(t)
            if stops and any(s in tokenizer.decode(out[b], skip_special_tokens=True) for s in stops):
                done[b] = True
        if all(done) or step + 1 == settings.max_new_tokens:
            break
        kwargs = {**kwargs, **cache_kwargs(model, output_cache(result))}
        nxt = torch.where(torch.tensor(done, device=nxt.device), torch.full_like(nxt, pad_id), nxt)
        inputs = {"input_ids": nxt[:, None]}
        mask = torch.cat([mask, torch.ones((B, 1), dtype=mask.dtype, device=device)], dim=1)
        pos = next_pos[:, None].to(device)
        next_pos = next_pos + 1
        computed += B
    return out, computed
