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
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

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
        self._roots: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self.computed_tokens = 0

    # --- public -------------------------------------------------------------------
    def score(
        self, contexts: Sequence[list[int]], answers: Sequence[list[list[int]]], prefix_lengths: Sequence[int]
    ) -> list[list[float]]:
        """Summed log-probability of each answer after its context (token ids)."""
        R = common_root(contexts, prefix_lengths)
        cache = self.root_cache(tuple(contexts[0][:R])) if R else None
        job = build_trie(contexts, answers, R)
        values: dict[tuple[int, int], float] = {}
        predictors = job.predictors
        sizes = job.trie.subtree_sizes()
        try:
            self._forest(job.trie, sizes, list(job.trie.roots.values()), cache, R, R, predictors, values)
        finally:
            if cache is not None:
                crop_to(cache, R)
        return [[sum(values[p] for p in pairs) for pairs in per_request] for per_request in job.reads]

    # --- internals ----------------------------------------------------------------
    def root_cache(self, key: tuple[int, ...]) -> Any:
        """The key/value cache of ``key`` (one row), computed once and kept (LRU). Callers
        must leave it as they found it (crop back, or copy before extending)."""
        if key in self._roots:
            self._roots.move_to_end(key)
            return self._roots[key]
        import torch

        cache = None
        for start in range(0, len(key), self.budget):
            chunk = torch.tensor([key[start : start + self.budget]], device=self.model.device)
            positions = torch.arange(start, start + chunk.shape[1], device=chunk.device)[None]
            extra = {"logits_to_keep": 1} if self.keep_arg else {}
            out = self.model(
                input_ids=chunk, position_ids=positions, use_cache=True, **cache_kwargs(self.model, cache), **extra
            )
            cache = output_cache(out)
        self.computed_tokens += len(key)
        self._roots[key] = cache
        while len(self._roots) > self.max_roots:
            self._roots.popitem(last=False)
        return cache

    def _forest(
        self,
        trie: TokenTrie,
        sizes: list[int],
        roots: list[int],
        cache: Any,
        cache_len: int,
        R: int,
        predictors: dict[int, set[int]],
        values: dict[tuple[int, int], float],
    ) -> None:
        rows, big = pack_forest(sizes, roots, self.budget)
        for row in rows:
            nodes = [n for r in row for n in trie.dfs(r)]
            self._run(trie, nodes, cache, cache_len, R, predictors, values, extend=False)
        for r in big:
            stem = [r]
            while len(trie.children[stem[-1]]) == 1 and len(stem) < self.budget:
                stem.append(next(iter(trie.children[stem[-1]].values())))
            grown = self._run(trie, stem, cache, cache_len, R, predictors, values, extend=True)
            kids = list(trie.children[stem[-1]].values())
            try:
                if kids:
                    self._forest(trie, sizes, kids, grown, cache_len + len(stem), R, predictors, values)
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
        values: dict[tuple[int, int], float],
        *,
        extend: bool,
    ) -> Any:
        """One forward pass over ``nodes`` (a row); returns the cache it leaves."""
        import torch

        device = self.model.device
        dtype = self.model.dtype if self.model.dtype.is_floating_point else torch.float32
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
            for k, i in enumerate(keep):
                node = nodes[i]
                toks = sorted(predictors[node])
                picked = logp[k, toks].tolist()
                for t, v in zip(toks, picked):
                    values[(node, t)] = v
        return output_cache(out) if extend else cache
