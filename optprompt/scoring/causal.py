"""Log-likelihood scoring of continuations with a causal LM.

Every request of one candidate shares its prefix (system turn, instruction,
demonstrations): its key/value cache is computed once and expanded over each batch of
suffixes. Suffixes are left-padded *after* the prefix, with an attention mask that hides
the padding and explicit position ids, so every row's needed logits sit at the end and
only those are projected onto the vocabulary. When all of an example's answers are single
tokens, one row scores all of them; otherwise each answer gets its own row.
"""

from __future__ import annotations

import copy
import inspect
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from optprompt.errors import CandidateRejected
from optprompt.models.loading import LoadedModel
from optprompt.prompts.render import ScoreRequest

__all__ = ["CausalLMScorer", "naive_loglikelihoods"]


@dataclass
class _Row:
    request: int
    ids: list[int]
    # (continuation index, its token ids); a row scoring single-token answers holds all.
    targets: list[tuple[int, list[int]]]

    @property
    def n_keep(self) -> int:
        return max(len(t) for _, t in self.targets)


class _Tokens:
    """Tokenisation rules shared by the fast scorer and the naive reference."""

    def __init__(self, tokenizer) -> None:  # type: ignore[no-untyped-def]
        self.tok = tokenizer
        bos = tokenizer.bos_token_id
        adds_bos = bos is not None and tokenizer("a").input_ids[:1] == [bos]
        self.bos = [bos] if adds_bos else []
        self.bos_text = tokenizer.bos_token if adds_bos else None

    def encode(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False).input_ids if text else []

    def prefix(self, text: str) -> list[int]:
        ids = self.encode(text)
        if self.bos and not (self.bos_text and text.startswith(self.bos_text)):
            ids = self.bos + ids
        return ids

    def continuation(self, text: str) -> list[int]:
        ids = self.encode(text)
        if not ids:
            raise CandidateRejected(f"answer {text!r} tokenizes to nothing")
        return ids


class CausalLMScorer:
    """Scores :class:`ScoreRequest` continuations by summed log-probability.

    Args:
        loaded: The model, tokenizer and device.
        batch_tokens: Upper bound on (rows x longest row) per forward pass.
        max_batch_rows: Upper bound on rows per forward pass.
    """

    def __init__(self, loaded: LoadedModel, *, batch_tokens: int = 4096, max_batch_rows: int = 64) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.device = loaded.device
        self.batch_tokens = batch_tokens
        self.max_batch_rows = max_batch_rows
        self.tokens = _Tokens(loaded.tokenizer)
        params = inspect.signature(self.model.forward).parameters
        self._keep_arg = "logits_to_keep" in params
        self._prefix_cache: OrderedDict[tuple[int, ...], object] = OrderedDict()
        pad = loaded.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (loaded.tokenizer.eos_token_id or 0)
        self.computed_tokens = 0  # tokens pushed through the model, for throughput figures

    # ------------------------------------------------------------------------------
    def loglikelihoods(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        """Summed log-probability of each continuation of each request."""
        import torch

        results: list[list[float]] = [[0.0] * len(r.continuations) for r in requests]
        groups: dict[str, list[int]] = defaultdict(list)
        for i, r in enumerate(requests):
            groups[r.prefix].append(i)
        with torch.inference_mode():
            for prefix, idxs in groups.items():
                self._score_group(prefix, [requests[i] for i in idxs], idxs, results)
        return results

    def _rows(self, reqs: Sequence[ScoreRequest], idxs: Sequence[int], p_ids: list[int]) -> tuple[list[int], list[_Row]]:
        suffixes = [self.tokens.encode(r.suffix) for r in reqs]
        if any(not s for s in suffixes):
            # Something must predict the first answer token: move the prefix's last token
            # into every row.
            if not p_ids:
                raise CandidateRejected("an empty prompt cannot be scored")
            last = p_ids[-1]
            p_ids = p_ids[:-1]
            suffixes = [[last, *s] for s in suffixes]
        rows = []
        for r, s_ids, i in zip(reqs, suffixes, idxs):
            conts = [self.tokens.continuation(c) for c in r.continuations]
            if all(len(c) == 1 for c in conts):
                rows.append(_Row(i, s_ids, list(enumerate(conts))))
            else:
                for j, c in enumerate(conts):
                    rows.append(_Row(i, s_ids + c[:-1], [(j, c)]))
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
        kv = out.past_key_values
        self._prefix_cache[key] = kv
        while len(self._prefix_cache) > 4:
            self._prefix_cache.popitem(last=False)
        return kv

    def _batches(self, rows: list[_Row]) -> list[list[_Row]]:
        rows = sorted(rows, key=lambda r: len(r.ids), reverse=True)
        batches: list[list[_Row]] = []
        cur: list[_Row] = []
        for row in rows:
            width = len(cur[0].ids) if cur else len(row.ids)
            if cur and ((len(cur) + 1) * width > self.batch_tokens or len(cur) >= self.max_batch_rows):
                batches.append(cur)
                cur = []
            cur.append(row)
        if cur:
            batches.append(cur)
        return batches

    def _score_group(self, prefix: str, reqs: Sequence[ScoreRequest], idxs: Sequence[int],
                     results: list[list[float]]) -> None:
        import torch

        p_ids, rows = self._rows(reqs, idxs, self.tokens.prefix(prefix))
        P = len(p_ids)
        kv = self._prefix_kv(p_ids) if P else None
        for batch in self._batches(rows):
            B = len(batch)
            L = max(len(r.ids) for r in batch)
            K = max(r.n_keep for r in batch)
            input_ids = torch.full((B, L), self.pad_id, dtype=torch.long)
            mask = torch.zeros((B, P + L), dtype=torch.long)
            mask[:, :P] = 1
            positions = torch.full((B, L), P, dtype=torch.long)
            for b, r in enumerate(batch):
                n = len(r.ids)
                input_ids[b, L - n:] = torch.tensor(r.ids)
                mask[b, P + L - n:] = 1
                positions[b, L - n:] = torch.arange(P, P + n)
            kwargs = {}
            if kv is not None:
                cache = copy.deepcopy(kv)
                cache.batch_repeat_interleave(B)
                kwargs["past_key_values"] = cache
            if self._keep_arg:
                kwargs["logits_to_keep"] = K
            out = self.model(
                input_ids=input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions.to(self.device),
                use_cache=kv is not None,
                **kwargs,
            )
            self.computed_tokens += sum(len(r.ids) for r in batch)
            logits = out.logits[:, -K:, :].float()
            logprobs = torch.log_softmax(logits, dim=-1).cpu()
            for b, r in enumerate(batch):
                for j, toks in r.targets:
                    if r.n_keep == 1:  # all answers single-token: read the last position
                        results[r.request][j] = float(logprobs[b, K - 1, toks[0]])
                    else:
                        n = len(toks)
                        pos = torch.arange(K - n, K)
                        results[r.request][j] = float(logprobs[b, pos, torch.tensor(toks)].sum())


def naive_loglikelihoods(loaded: LoadedModel, requests: Sequence[ScoreRequest]) -> list[list[float]]:
    """Reference: one full forward per (request, continuation), no batching or reuse.

    Uses the same tokenisation as :class:`CausalLMScorer` (prefix, suffix and answer
    tokenised separately and concatenated), so the two must agree to float precision.
    """
    import torch

    tokens = _Tokens(loaded.tokenizer)
    out: list[list[float]] = []
    with torch.inference_mode():
        for r in requests:
            p_ids = tokens.prefix(r.prefix)
            s_ids = tokens.encode(r.suffix)
            row = []
            for c in r.continuations:
                c_ids = tokens.continuation(c)
                ids = torch.tensor([p_ids + s_ids + c_ids], device=loaded.device)
                logits = loaded.model(input_ids=ids).logits[0].float()
                lp = torch.log_softmax(logits, dim=-1)
                start = len(p_ids) + len(s_ids)
                row.append(float(sum(lp[start - 1 + t, c_ids[t]] for t in range(len(c_ids)))))
            out.append(row)
    return out
