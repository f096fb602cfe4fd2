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


def _mergeable(cache: Any) -> bool:
    """Whether rows can join ``cache`` mid-decoding: plain dynamic layers only (a sliding
    window or a static cache keeps positions of its own)."""
    try:
        from transformers.cache_utils import DynamicLayer
    except ImportError:  # a transformers without layered caches: batches one after another
        return False
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def _left_pad(t: Any, length: int, dim: int) -> Any:
    """``t`` padded with zeros at the front of ``dim`` to ``length``."""
    import torch

    extra = length - t.shape[dim]
    if extra <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = extra
    return torch.cat([t.new_zeros(shape), t], dim=dim)


def _join(cache: Any, mask: Any, other: Any, other_mask: Any) -> Any:
    """Rows of ``other`` appended to ``cache`` (in place), both aligned at the right: the
    shorter one's positions padded at the front, masked out. Positions are explicit, so
    every key keeps the position it was written at. Returns the joined mask."""
    import torch

    length = max(mask.shape[1], other_mask.shape[1])
    for a, b in zip(cache.layers, other.layers):
        a.keys = torch.cat([_left_pad(a.keys, length, 2), _left_pad(b.keys, length, 2)], dim=0)
        a.values = torch.cat([_left_pad(a.values, length, 2), _left_pad(b.values, length, 2)], dim=0)
    return torch.cat([_left_pad(mask, length, 1), _left_pad(other_mask, length, 1)], dim=0)


def _trim(cache: Any, mask: Any) -> Any:
    """Drop the leading positions no running row attends to any more (those of rows that
    have left), so that a long stream of joining rows keeps a short cache. Returns the mask."""
    used = mask.any(dim=0)
    start = int(used.int().argmax()) if bool(used.any()) else 0
    if start < 16:
        return mask
    for layer in cache.layers:
        layer.keys = layer.keys[:, :, start:, :]
        layer.values = layer.values[:, :, start:, :]
    return mask[:, start:]


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
    max_rows: int | None = None,
    continuous: bool = True,
) -> tuple[list[list[int]], int]:
    """Greedy (or seeded temperature-sampling) continuations of token sequences.

    Args:
        model: A transformers causal LM (its plain forward is called).
        tokenizer: Decodes the generated tokens to check stop strings.
        seqs: Each row's prompt tokens (after the lead), in the order they start.
        settings: Budget, stop strings, temperature and seed.
        pad_id: Filler for padded positions.
        lead: Shared positions in front of every row.
        keep_arg: Whether the model's forward accepts ``logits_to_keep``.
        lookup: Greedy only: draft up to this many tokens per row and step by prompt
            lookup (:func:`lookup_draft` over the row's prompt and output) and verify them
            in the same forward pass; the accepted prefix is what greedy decoding would
            have produced token by token, so the text is the same (up to float ties).
        compact: Drop finished rows from the batch (and their cache) as soon as they end.
        max_rows: At most this many rows decode at once (None: all of them); the others
            wait, in ``seqs``' order.
        continuous: Waiting rows join the running batch as finished rows leave it (their
            prompts run in one pass, their cache joined to the batch's, aligned at the
            right), so the steps near the end, when few rows are left, serve the next rows
            too. Off (or without ``compact``, or with a cache that cannot be joined): the
            next rows start when the batch has ended, one batch after another.

    Returns:
        The generated token ids of each row (up to, not including, an end-of-sequence
        token), and the number of tokens that went through the model.
    """
    import torch

    lead = lead or Lead()
    B = len(seqs)
    if settings.max_new_tokens <= 0 or not B:
        return [[] for _ in seqs], 0
    device = next(model.parameters()).device
    P = lead.length
    slots = max(1, min(B, max_rows or B))
    continuous = continuous and compact
    stops = [s for s in settings.stop if s]
    eos = eos_ids(model, tokenizer)
    budget = settings.max_new_tokens
    lookup = lookup if settings.temperature <= 0 else 0
    out: list[list[int]] = [[] for _ in range(B)]
    done = [False] * B
    history = [list(s) for s in seqs]  # prompt + output per row: the lookup's source
    computed = 0
    if settings.temperature > 0:
        torch.manual_seed(settings.seed)

    def emit(b: int, tokens: list[int]) -> None:
        """Append ``tokens`` to row ``b``'s output until it ends."""
        for t in tokens:
            if t in eos:
                done[b] = True
                return
            out[b].append(t)
            history[b].append(t)
            if len(out[b]) >= budget or (
                stops and any(s in tokenizer.decode(out[b], skip_special_tokens=True) for s in stops)
            ):
                done[b] = True
                return

    def pick(logits: Any) -> list[list[int]]:
        """The next token per row and position: argmax, or one sample at the first position."""
        if settings.temperature > 0:
            probs = torch.softmax(logits[:, 0] / settings.temperature, dim=-1)
            return torch.multinomial(probs, num_samples=1).tolist()
        return logits.argmax(dim=-1).tolist()

    def prefill(batch: list[int]) -> tuple[Any, Any, Any, list[int]]:
        """Run the prompts of rows ``batch`` (after the lead): their cache, attention mask,
        next positions and first tokens."""
        nonlocal computed
        n, L = len(batch), max(len(seqs[b]) for b in batch)
        ids = torch.full((n, L), pad_id, dtype=torch.long)
        mask = torch.zeros((n, P + L), dtype=torch.long)
        mask[:, :P] = 1
        positions = torch.zeros((n, P + L), dtype=torch.long)
        positions[:, :P] = torch.arange(P)
        for i, b in enumerate(batch):
            k = len(seqs[b])
            ids[i, L - k :] = torch.tensor(seqs[b], dtype=torch.long)
            mask[i, P + L - k :] = 1
            positions[i, P + L - k :] = torch.arange(P, P + k)
        ids, mask, positions = ids.to(device), mask.to(device), positions.to(device)
        kwargs: dict[str, Any] = {"logits_to_keep": 1} if keep_arg else {}
        if lead.embeds is not None:
            embeds = model.get_input_embeddings()(ids)
            virtual = lead.embeds.to(device=device, dtype=embeds.dtype).expand(n, -1, -1)
            inputs: dict[str, Any] = {"inputs_embeds": torch.cat([virtual, embeds], dim=1)}
            pos = positions
            computed += n * (P + L)
        else:
            inputs = {"input_ids": ids}
            pos = positions[:, P:]
            if lead.cache is not None:
                kwargs.update(cache_kwargs(model, _expand(lead.cache, n)))
            computed += n * L
        result = model(**inputs, attention_mask=mask, position_ids=pos, use_cache=True, **kwargs)
        first = [g[0] for g in pick(result.logits[:, -1:, :].float())]
        next_pos = torch.tensor([P + len(seqs[b]) for b in batch], dtype=torch.long, device=device)
        return output_cache(result), mask, next_pos, first

    waiting = list(range(B))
    rows: list[int] = []  # original row of each batch row still running
    last: list[int] = []  # per batch row: the token to feed next
    cache = mask = next_pos = None
    joins = False  # whether rows can join the running batch: read once, off the first cache
    while True:
        free = slots - len(rows)
        if waiting and (not rows or joins) and free >= min(len(waiting), max(1, slots // 4)):
            batch, waiting = waiting[:free], waiting[free:]
            new_cache, new_mask, new_pos, first = prefill(batch)
            for b, t in zip(batch, first):
                emit(b, [t])
            kept = [i for i, b in enumerate(batch) if not done[b]]
            if kept and len(kept) < len(batch):
                index = torch.tensor(kept, device=device)
                new_cache.batch_select_indices(index)
                new_mask, new_pos = new_mask[index], new_pos[index]
            if kept:
                if rows:
                    mask = _join(cache, mask, new_cache, new_mask)
                    next_pos = torch.cat([next_pos, new_pos])
                else:
                    cache, mask, next_pos = new_cache, new_mask, new_pos
                    joins = continuous and _mergeable(cache)
                rows += [batch[i] for i in kept]
                last += [first[i] for i in kept]
        if not rows or all(done[b] for b in rows):
            if waiting:
                rows, last, cache = [], [], None
                continue
            break
        drafts = [lookup_draft(history[b], min(lookup, budget - len(out[b]) - 1)) if lookup else [] for b in rows]
        width = 1 + max((len(d) for d in drafts), default=0)
        n = len(rows)
        block = torch.full((n, width), pad_id, dtype=torch.long)
        valid = torch.zeros((n, width), dtype=torch.long)
        for i, (t, d) in enumerate(zip(last, drafts)):
            if done[rows[i]]:  # kept in the batch (compact off): fed padding, masked
                continue
            block[i, : 1 + len(d)] = torch.tensor([t, *d], dtype=torch.long)
            valid[i, : 1 + len(d)] = 1
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
        cache = output_cache(result)
        computed += int(valid.sum()) if width > 1 else n
        guesses = pick(result.logits[:, -width:, :].float())
        advance = []
        for i, d in enumerate(drafts):
            g = guesses[i]
            a = 0
            while a < len(d) and d[a] == g[a]:
                a += 1
            if not done[rows[i]]:
                emit(rows[i], g[: a + 1])
            last[i] = g[a]
            advance.append(a + 1)
            if a + 1 < width:  # rejected drafts stay in the cache as masked holes
                mask[i, mask.shape[1] - width + a + 1 :] = 0
        next_pos = next_pos + torch.tensor(advance, device=device)
        if compact and any(done[b] for b in rows):
            kept = [i for i, b in enumerate(rows) if not done[b]]
            if kept:
                index = torch.tensor(kept, device=device)
                cache.batch_select_indices(index)
                mask, next_pos = mask[index], next_pos[index]
            rows = [rows[i] for i in kept]
            last = [last[i] for i in kept]
            if kept and joins:
                mask = _trim(cache, mask)
    return out, computed
