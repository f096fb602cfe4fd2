"""The padded scoring path (optprompt 0.x), kept as the fallback and the benchmark's baseline.

Every request of one candidate shares its prefix: its key/value cache is computed once and
expanded over each batch of suffixes. Suffixes are left-padded *after* the prefix, with an
attention mask that hides the padding and explicit position ids, so every row ends at the
same position and only the last position's logits are projected onto the vocabulary. That
position scores the first token of every answer; answers longer than one token then run
their own tokens against a copy of the cached context of their example.

It needs nothing but a 2-D attention mask, so it serves models whose attention cannot take
the packed engine's 4-D tree masks (see :mod:`optprompt.scoring.backends.packed`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

from optprompt.errors import CandidateRejected
from optprompt.prompts.render import ScoreRequest
from optprompt.scoring.backends.base import sorted_batches
from optprompt.scoring.backends.kv import cache_kwargs, output_cache

__all__ = ["PaddedScoring"]


@dataclass
class _Row:
    request: int
    ids: list[int]  # the example's suffix tokens
    conts: list[list[int]] = field(default_factory=list)


class PaddedScoring:
    """Mixin for :class:`~optprompt.scoring.backends.causal.CausalLMBackend`: the padded path."""

    def _padded_loglikelihoods(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:  # type: ignore[no-untyped-def]
        from collections import defaultdict

        results: list[list[float]] = [[0.0] * len(r.continuations) for r in requests]
        groups: dict[str, list[int]] = defaultdict(list)
        for i, r in enumerate(requests):
            groups[r.prefix].append(i)
        for prefix, idxs in groups.items():
            self._with_oom_backoff(self._score_group, prefix, [requests[i] for i in idxs], idxs, results)
        return results

    def _rows(
        self, reqs: Sequence[ScoreRequest], idxs: Sequence[int], p_ids: list[int]
    ) -> tuple[list[int], list[_Row]]:
        suffixes = [self.tokens.encode(r.suffix) for r in reqs]
        if any(not s for s in suffixes):
            # Something must predict the first answer token: move the prefix's last
            # token into every row.
            if not p_ids:
                raise CandidateRejected("an empty prompt cannot be scored")
            last = p_ids[-1]
            p_ids = p_ids[:-1]
            suffixes = [[last, *s] for s in suffixes]
        rows = [
            _Row(i, s, [self.tokens.continuation(c) for c in r.continuations]) for r, s, i in zip(reqs, suffixes, idxs)
        ]
        return p_ids, rows

    def _prefix_kv(self, p_ids: list[int]):  # type: ignore[no-untyped-def]
        import torch

        key = tuple(p_ids)
        if key in self._prefix_cache:
            self._prefix_cache.move_to_end(key)
            return self._prefix_cache[key]
        ids = torch.tensor([p_ids], device=self.device)
        out = self.model(input_ids=ids, use_cache=True, **({"logits_to_keep": 1} if self._keep_arg else {}))
        self.computed_tokens += len(p_ids)
        kv = output_cache(out)
        self._prefix_cache[key] = kv
        while len(self._prefix_cache) > 4:
            self._prefix_cache.popitem(last=False)
        return kv

    def _expanded(self, kv, n: int):  # type: ignore[no-untyped-def]
        cache = copy.deepcopy(kv)
        cache.batch_repeat_interleave(n)
        return cache

    def _forward(self, input_ids, mask, positions, cache, keep: int):  # type: ignore[no-untyped-def]
        import torch

        kwargs = cache_kwargs(self.model, cache)
        if self._keep_arg:
            kwargs["logits_to_keep"] = keep
        out = self.model(
            input_ids=input_ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=positions.to(self.device),
            use_cache=True,
            **kwargs,
        )
        logits = out.logits[:, -keep:, :].float()
        return torch.log_softmax(logits, dim=-1), output_cache(out)

    def _score_group(
        self, prefix: str, reqs: Sequence[ScoreRequest], idxs: Sequence[int], results: list[list[float]]
    ) -> None:
        import torch

        p_ids, rows = self._rows(reqs, idxs, self.tokens.prefix(prefix))
        P = len(p_ids)
        kv = self._prefix_kv(p_ids) if P else None
        for batch in sorted_batches(rows, lambda r: len(r.ids), self.batch_tokens, self.max_batch_rows):
            B = len(batch)
            L = max(len(r.ids) for r in batch)
            input_ids = torch.full((B, L), self.pad_id, dtype=torch.long)
            mask = torch.zeros((B, P + L), dtype=torch.long)
            mask[:, :P] = 1
            positions = torch.full((B, L), P, dtype=torch.long)
            for b, r in enumerate(batch):
                n = len(r.ids)
                input_ids[b, L - n :] = torch.tensor(r.ids)
                mask[b, P + L - n :] = 1
                positions[b, L - n :] = torch.arange(P, P + n)
            cache = self._expanded(kv, B) if kv is not None else None
            logprobs, context_kv = self._forward(input_ids, mask, positions, cache, keep=1)
            self.computed_tokens += sum(len(r.ids) for r in batch)
            last = logprobs[:, -1, :].cpu()
            for b, r in enumerate(batch):
                for j, c in enumerate(r.conts):
                    results[r.request][j] = float(last[b, c[0]])
            # Answers of more than one token: their remaining tokens, against the context.
            multi = [(b, j) for b, r in enumerate(batch) for j, c in enumerate(r.conts) if len(c) > 1]
            if multi:
                self._score_tails(batch, multi, context_kv, mask, P, results)

    def _score_tails(
        self,
        batch: list[_Row],
        multi: list[tuple[int, int]],
        context_kv,
        mask,  # type: ignore[no-untyped-def]
        P: int,
        results: list[list[float]],
    ) -> None:
        import torch

        width = mask.shape[1]
        per_chunk = max(1, min(self.max_batch_rows, self.batch_tokens // max(1, width)))
        for start in range(0, len(multi), per_chunk):
            chunk = multi[start : start + per_chunk]
            T = max(len(batch[b].conts[j]) - 1 for b, j in chunk)
            ids = torch.full((len(chunk), T), self.pad_id, dtype=torch.long)
            tail_mask = torch.zeros((len(chunk), T), dtype=torch.long)
            positions = torch.zeros((len(chunk), T), dtype=torch.long)
            for k, (b, j) in enumerate(chunk):
                c = batch[b].conts[j][:-1]
                ids[k, : len(c)] = torch.tensor(c)
                tail_mask[k, : len(c)] = 1
                start_pos = P + len(batch[b].ids)
                positions[k] = torch.arange(start_pos, start_pos + T)
            sel = torch.tensor([b for b, _ in chunk], device=self.device)
            cache = copy.deepcopy(context_kv)
            cache.batch_select_indices(sel)
            full_mask = torch.cat([mask[[b for b, _ in chunk]], tail_mask], dim=1)
            logprobs, _ = self._forward(ids, full_mask, positions, cache, keep=T)
            self.computed_tokens += int(tail_mask.sum())
            logprobs = logprobs.cpu()
            for k, (b, j) in enumerate(chunk):
                c = batch[b].conts[j]
                tail = sum(float(logprobs[k, t, c[t + 1]]) for t in range(len(c) - 1))
                results[batch[b].request][j] += tail
