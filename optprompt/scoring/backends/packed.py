"""Packed tree scoring: every distinct token through the model once, shared context never copied.

The shared root (the longest token prefix every request's context starts with: system
turn, instruction, demonstrations) runs once into a key/value cache of one row, kept
across calls. Everything else (per-example prompt text, inputs, answers) is a
:class:`~optprompt.scoring.backends.trie.TokenTrie` under it, flattened into rows of at
most ``budget`` tokens: each row attends to the cached root and, through a 4-D tree mask,
to its own ancestors within the row; positions are explicit, so every token sits where it
would in its own unpadded sequence. A subtree larger than a row is split where it
branches: its shared stem extends the cache (computed once), its branches become rows.
After each row the cache is cropped back, so no row's tokens are ever copied per example.

A *lead* (:class:`~optprompt.scoring.backends.decoding.Lead`) may sit in front of the
root: the virtual tokens of a prompt-tuning adapter (embeddings, run into the root once)
or the virtual key/values of a prefix-tuning adapter (the root's first cache entries).
Everything after it is shifted by its length, as the adapter places it. With
``grad=True`` the same pass is differentiable (a trainer's loss): the root then runs once
per call, with gradients, and is not kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from optprompt.scoring.backends.decoding import Lead
from optprompt.scoring.backends.kv import cache_kwargs, crop_to, output_cache
from optprompt.scoring.backends.trie import TokenTrie, build_trie, pack_forest, shared_prefix, tree_mask

__all__ = ["PackedScorer", "common_root"]


def common_root(contexts: Sequence[Sequence[int]], prefix_lengths: Sequence[int]) -> int:
    """How many leading tokens every context shares, within every request's own prompt
    prefix (so the cached root is the same for every slice of one candidate's examples)
    and leaving each context at least one token (its last one predicts the answers)."""
    return shared_prefix(contexts, min(min(prefix_lengths), min(len(c) for c in contexts) - 1))


class PackedScorer:
    """Runs a scoring job's trie through a causal LM.

    Args:
        model: A transformers causal LM whose attention takes a 4-D float mask.
        budget: Tokens per row (the attention work per row grows with its square).
        keep_arg: Whether the forward takes ``logits_to_keep`` (then as a 1-D index
            tensor: only the positions that predict answer tokens are projected).
        max_roots: Cached roots kept (LRU), one per recent candidate.
    """

    def __init__(self, model: Any, *, budget: int, keep_arg: bool, max_roots: int = 4) -> None:
        self.model = model
        self.budget = budget
        self.keep_arg = keep_arg
        self.max_roots = max_roots
        self._roots: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self.computed_tokens = 0

    def clear(self) -> None:
        """Forget the cached roots (the model's weights changed)."""
        self._roots.clear()

    # --- public -------------------------------------------------------------------
    def score(
        self,
        contexts: Sequence[list[int]],
        answers: Sequence[list[list[int]]],
        prefix_lengths: Sequence[int],
        *,
        lead: Lead | None = None,
        lead_key: Any = None,
    ) -> list[list[float]]:
        """Summed log-probability of each answer after its context (token ids).

        Args:
            lead: Positions in front of every context (an adapter's virtual tokens).
            lead_key: Identifies ``lead`` in the cached roots' keys (e.g. the adapter's
                digest); a root cached under one lead is never read under another.
        """
        sums = self._score(contexts, answers, prefix_lengths, lead, lead_key, grad=False)
        return [s.tolist() for s in sums]

    def score_tensors(
        self,
        contexts: Sequence[list[int]],
        answers: Sequence[list[list[int]]],
        *,
        lead: Lead | None = None,
    ) -> list[Any]:
        """Like :meth:`score`, differentiable: one 1-D tensor per context (a trainer's
        loss). The root (the contexts' shared leading tokens, after ``lead``) runs once
        per call, with gradients, and is not cached."""
        return self._score(contexts, answers, [len(c) - 1 for c in contexts], lead, None, grad=True)

    def _score(
        self,
        contexts: Sequence[list[int]],
        answers: Sequence[list[list[int]]],
        prefix_lengths: Sequence[int],
        lead: Lead | None,
        lead_key: Any,
        *,
        grad: bool,
    ) -> list[Any]:
        import torch

        lead = lead or Lead()
        P = lead.length
        R = common_root(contexts, prefix_lengths)
        root = tuple(contexts[0][:R])
        if grad:
            cache = self._compute_root(root, lead)
        else:
            cache = self.root_cache(root, lead=lead, lead_key=lead_key) if (R or P) else None
        job = build_trie(contexts, answers, R)
        picked: list[Any] = []
        where: dict[tuple[int, int], int] = {}
        predictors = job.predictors
        sizes = job.trie.subtree_sizes()
        try:
            self._forest(job.trie, sizes, list(job.trie.roots.values()), cache, P + R, P + R, predictors, picked, where)
        finally:
            if cache is not None:
                crop_to(cache, P + R)
        flat = torch.cat(picked) if picked else torch.zeros(0)
        owner, index = [], []
        for i, per_request in enumerate(job.reads):
            for a, pairs in enumerate(per_request):
                for pair in pairs:
                    index.append(where[pair])
                    owner.append((i, a))
        n_answers = [len(a) for a in answers]
        offsets = [0]
        for n in n_answers:
            offsets.append(offsets[-1] + n)
        slot = torch.tensor([offsets[i] + a for i, a in owner], dtype=torch.long, device=flat.device)
        values = flat[torch.tensor(index, dtype=torch.long, device=flat.device)]
        sums = torch.zeros(offsets[-1], dtype=flat.dtype, device=flat.device).index_add(0, slot, values)
        return [sums[offsets[i] : offsets[i + 1]] for i in range(len(answers))]

    # --- internals ----------------------------------------------------------------
    def root_cache(self, key: tuple[int, ...], *, lead: Lead | None = None, lead_key: Any = None) -> Any:
        """The key/value cache of ``lead`` then ``key`` (one row), computed once and kept
        (LRU). Callers must leave it as they found it (crop back, or copy before extending)."""
        full = (lead_key, lead.length if lead else 0, *key)
        if full in self._roots:
            self._roots.move_to_end(full)
            return self._roots[full]
        cache = self._compute_root(key, lead)
        self._roots[full] = cache
        while len(self._roots) > self.max_roots:
            self._roots.popitem(last=False)
        return cache

    def _compute_root(self, key: tuple[int, ...], lead: Lead | None) -> Any:
        """The key/value cache of ``lead`` (its cache copied, or its embeddings run) then
        ``key`` at the positions after it, in chunks of ``budget`` tokens."""

        import torch

        lead = lead or Lead()
        device = self.model.device
        extra = {"logits_to_keep": 1} if self.keep_arg else {}
        cache = None
        if lead.cache is not None:
            cache = _own_copy(lead.cache)
        if lead.embeds is not None:
            embeds = lead.embeds.to(device=device, dtype=self._dtype())
            positions = torch.arange(lead.length, device=device)[None]
            out = self.model(inputs_embeds=embeds, position_ids=positions, use_cache=True, **extra)
            cache = output_cache(out)
            self.computed_tokens += lead.length
        for start in range(0, len(key), self.budget):
            chunk = torch.tensor([key[start : start + self.budget]], device=device)
            positions = torch.arange(lead.length + start, lead.length + start + chunk.shape[1], device=device)[None]
            out = self.model(
                input_ids=chunk, position_ids=positions, use_cache=True, **cache_kwargs(self.model, cache), **extra
            )
            cache = output_cache(out)
        self.computed_tokens += len(key)
        return cache

    def _dtype(self) -> Any:
        import torch

        return self.model.dtype if self.model.dtype.is_floating_point else torch.float32

    def _forest(
        self,
        trie: TokenTrie,
        sizes: list[int],
        roots: list[int],
        cache: Any,
        cache_len: int,
        R: int,
        predictors: dict[int, set[int]],
        picked: list[Any],
        where: dict[tuple[int, int], int],
    ) -> None:
        rows, big = pack_forest(sizes, roots, self.budget)
        for row in rows:
            nodes = [n for r in row for n in trie.dfs(r)]
            self._run(trie, nodes, cache, cache_len, R, predictors, picked, where, extend=False)
        for r in big:
            stem = [r]
            while len(trie.children[stem[-1]]) == 1 and len(stem) < self.budget:
                stem.append(next(iter(trie.children[stem[-1]].values())))
            grown = self._run(trie, stem, cache, cache_len, R, predictors, picked, where, extend=True)
            kids = list(trie.children[stem[-1]].values())
            try:
                if kids:
                    self._forest(trie, sizes, kids, grown, cache_len + len(stem), R, predictors, picked, where)
            finally:
                if cache is not None:
                    crop_to(cache, cache_len)

    def _run(
        self,
        trie: TokenTrie,
        nodes: list[int],
        cache: Any,
        cache_len: int,
        R: int,
        predictors: dict[int, set[int]],
        picked: list[Any],
        where: dict[tuple[int, int], int],
        *,
        extend: bool,
    ) -> Any:
        """One forward pass over ``nodes`` (a row); returns the cache it leaves.

        ``R`` is the position of the trie's depth 0 (after the lead and the root). The
        log-probabilities read in the row are appended to ``picked`` as one tensor; ``where``
        maps each (node, token) to its index in their concatenation."""
        import torch

        device = self.model.device
        dtype = self._dtype()
        local = {n: i for i, n in enumerate(nodes)}
        allowed = torch.from_numpy(tree_mask([local.get(trie.parent[n], -1) for n in nodes]))
        Q = len(nodes)
        mask = torch.full((Q, cache_len + Q), torch.finfo(dtype).min, dtype=dtype)
        mask[:, :cache_len] = 0
        mask[:, cache_len:].masked_fill_(allowed, 0)
        ids = torch.tensor([[trie.token[n] for n in nodes]], device=device)
        positions = torch.tensor([[R + trie.depth[n] for n in nodes]], device=device)
        keep = [i for i, n in enumerate(nodes) if n in predictors]
        kwargs: dict[str, Any] = dict(cache_kwargs(self.model, cache))
        if self.keep_arg:
            kwargs["logits_to_keep"] = torch.tensor(keep, device=device) if keep else 1
        try:
            out = self.model(
                input_ids=ids,
                attention_mask=mask[None, None].to(device),
                position_ids=positions,
                use_cache=extend or cache is not None,
                **kwargs,
            )
        finally:
            if cache is not None and not extend:
                crop_to(cache, cache_len)
        self.computed_tokens += Q
        if keep:
            logits = out.logits[0] if self.keep_arg else out.logits[0, keep]
            logp = torch.log_softmax(logits.float(), dim=-1)
            rows, toks = [], []
            base = sum(len(t) for t in picked)
            for k, i in enumerate(keep):
                node = nodes[i]
                for t in sorted(predictors[node]):
                    where[(node, t)] = base + len(rows)
                    rows.append(k)
                    toks.append(t)
            picked.append(logp[torch.tensor(rows, device=logp.device), torch.tensor(toks, device=logp.device)])
        return output_cache(out) if extend else cache


def _own_copy(cache: Any) -> Any:
    """A cache whose layers can be extended and cropped without touching ``cache``'s
    tensors (a shallow copy per layer: extending replaces tensors, never writes in them)."""
    import copy

    out = copy.copy(cache)
    if hasattr(cache, "layers"):
        out.layers = [copy.copy(layer) for layer in cache.layers]
    return out
