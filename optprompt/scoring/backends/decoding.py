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


def decode(
    model: Any,
    tokenizer: Any,
    seqs: Sequence[list[int]],
    settings: GenerationSettings,
    *,
    pad_id: int,
    lead: Lead | None = None,
    keep_arg: bool = True,
    lookup: int = 0,
    compact: bool = True,
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
        lookup: Greedy only: draft up to this many tokens per row and step by prompt
            lookup (:func:`lookup_draft` over the row's prompt and output) and verify them
            in the same forward pass; the accepted prefix is what greedy decoding would
            have produced token by token, so the text is the same (up to float ties).
        compact: Drop finished rows from the batch (and their cache) as soon as they end.

    Returns:
        The generated token ids of each row (up to, not including, an end-of-sequence
        token), and the number of tokens that went through the model.
    """
    import torch

    lead = lead or Lead()
    if settings.max_new_tokens <= 0:
        return [[] for _ in seqs], 0
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
    next_pos = torch.tensor([P + len(s) for s in seqs], dtype=torch.long, device=device)
    keep: dict[str, Any] = {"logits_to_keep": 1} if keep_arg else {}
    ids, mask, positions = ids.to(device), mask.to(device), positions.to(device)
    kwargs: dict[str, Any] = {}
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
    budget = settings.max_new_tokens
    lookup = lookup if settings.temperature <= 0 else 0
    out: list[list[int]] = [[] for _ in range(B)]
    done = [False] * B
    history = [list(s) for s in seqs]  # prompt + output per row: the lookup's source
    if settings.temperature > 0:
        torch.manual_seed(settings.seed)
    result = model(**inputs, attention_mask=mask, position_ids=pos, use_cache=True, **kwargs, **keep)
    logits = result.logits[:, -1, :].float()
    if settings.temperature > 0:
        first = torch.multinomial(torch.softmax(logits / settings.temperature, dim=-1), num_samples=1)[:, 0]
    else:
        first = logits.argmax(dim=-1)
    rows = list(range(B))  # original row of each batch row still running
    new = [[t] for t in first.tolist()]  # per batch row: tokens produced by the last pass

    def emit(b: int, tokens: list[int]) -> int:
        """Append ``tokens`` to row ``b``'s output until it ends; how many were used."""
        for used, t in enumerate(tokens, 1):
            if t in eos:
                done[b] = True
                return used
            out[b].append(t)
            history[b].append(t)
            if len(out[b]) >= budget or (
                stops and any(s in tokenizer.decode(out[b], skip_special_tokens=True) for s in stops)
            ):
                done[b] = True
                return used
        return len(tokens)

    while True:
        last = []
        for i, b in enumerate(rows):
            if not done[b]:
                emit(b, new[i])
            last.append(new[i][-1])
        if all(done[b] for b in rows):
            break
        cache = output_cache(result)
        if compact and any(done[b] for b in rows):
            kept = [i for i, b in enumerate(rows) if not done[b]]
            index = torch.tensor(kept, device=device)
            cache.batch_select_indices(index)
            mask, next_pos = mask[index], next_pos[index]
            rows = [rows[i] for i in kept]
            last = [last[i] for i in kept]
        drafts = [lookup_draft(history[b], min(lookup, budget - len(out[b]) - 1)) if lookup else [] for b in rows]
        width = 1 + max((len(d) for d in drafts), default=0)
        n = len(rows)
        block = torch.full((n, width), pad_id, dtype=torch.long)
        valid = torch.zeros((n, width), dtype=torch.long)
        for i, (t, d) in enumerate(zip(last, drafts)):
            t = pad_id if done[rows[i]] else t
            block[i, : 1 + len(d)] = torch.tensor([t, *d], dtype=torch.long)
            valid[i, : 1 + len(d)] = 0 if done[rows[i]] else 1
        mask = torch.cat([mask, valid.to(device)], dim=1)
        pos = next_pos[:, None] + torch.arange(width, device=device)[None]
        step_keep = {"logits_to_keep": width} if keep_arg else {}
        result = model(
            input_ids=block.to(device),
            attention_mask=mask,
            position_ids=pos,
            use_cache=True,
            **cache_kwargs(model, cache),
            **step_keep,
        )
        computed += int(valid.sum()) if width > 1 else n
        step_logits = result.logits[:, -width:, :].float()
        if settings.temperature > 0:
            probs = torch.softmax(step_logits[:, 0] / settings.temperature, dim=-1)
            guesses = torch.multinomial(probs, num_samples=1).tolist()
        else:
            guesses = step_logits.argmax(dim=-1).tolist()
        new = []
        advance = []
        for i, d in enumerate(drafts):
            g = guesses[i]
            a = 0
            while a < len(d) and d[a] == g[a]:
                a += 1
            new.append(g[: a + 1])
            advance.append(a + 1)
            if a + 1 < width:  # rejected drafts stay in the cache as masked holes
                mask[i, mask.shape[1] - width + a + 1 :] = 0
        next_pos = next_pos + torch.tensor(advance, device=device)
    return out, computed
