"""Causal LM backend: log-likelihood of continuations with shared-prefix reuse.

Every request of one candidate shares its prefix (system turn, instruction,
demonstrations): its key/value cache is computed once and expanded over each batch of
suffixes. Suffixes are left-padded *after* the prefix, with an attention mask that hides
the padding and explicit position ids, so every row ends at the same position and only
the last position's logits are projected onto the vocabulary. That position scores the
first token of every answer; answers longer than one token then run only their own
tokens against the cached context of their example (one context forward per example,
however many answers it has).
"""

from __future__ import annotations

import copy
import inspect
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from optprompt.errors import CandidateRejected
from optprompt.models.loading import LoadedModel
from optprompt.prompts.render import ScoreRequest
from optprompt.scoring.backends.base import Backend, GenerationSettings, sorted_batches

__all__ = ["CausalLMBackend", "naive_loglikelihoods", "Tokens"]


class Tokens:
    """Tokenisation rules shared by the fast path and the naive reference."""

    def __init__(self, tokenizer) -> None:  # type: ignore[no-untyped-def]
        self.tok = tokenizer
        bos = tokenizer.bos_token_id
        adds_bos = bos is not None and tokenizer("a").input_ids[:1] == [bos]
        self.bos = [bos] if adds_bos else []
        self.bos_text = tokenizer.bos_token if adds_bos else None
        pad = tokenizer.pad_token_id
        #: Filler for padded positions (masked out): the pad token, else EOS, else 0.
        self.pad_id = pad if pad is not None else (tokenizer.eos_token_id or 0)

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


@dataclass
class _Row:
    request: int
    ids: list[int]  # the example's suffix tokens
    conts: list[list[int]] = field(default_factory=list)


class CausalLMBackend(Backend):
    """Decoder-only models (Llama, SmolLM2, GPT-2, Qwen...)."""

    family = "causal"
    auto_class = "AutoModelForCausalLM"
    supports_chat = True

    def __init__(self, loaded: LoadedModel, *, batch_tokens: int = 4096, max_batch_rows: int = 64) -> None:
        super().__init__(loaded, batch_tokens=batch_tokens, max_batch_rows=max_batch_rows)
        self.tokens = Tokens(loaded.tokenizer)
        params = inspect.signature(self.model.forward).parameters
        self._keep_arg = "logits_to_keep" in params
        self._prefix_cache: OrderedDict[tuple[int, ...], object] = OrderedDict()
        self.pad_id = self.tokens.pad_id

    # --- log-likelihoods ----------------------------------------------------------
    def loglikelihoods(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        import torch

        results: list[list[float]] = [[0.0] * len(r.continuations) for r in requests]
        groups: dict[str, list[int]] = defaultdict(list)
        for i, r in enumerate(requests):
            groups[r.prefix].append(i)
        with torch.inference_mode():
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
        kv = out.past_key_values
        self._prefix_cache[key] = kv
        while len(self._prefix_cache) > 4:
            self._prefix_cache.popitem(last=False)
        return kv

    def _expanded(self, kv, n: int):  # type: ignore[no-untyped-def]
        cache = copy.deepcopy(kv)
        cache.batch_repeat_interleave(n)
        return cache

    def _forward(self, input_ids, mask, positions, cache, keep: int):  # type: ignore[no-untyped-def]
        kwargs = {"past_key_values": cache} if cache is not None else {}
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
        return torch_log_softmax(logits), out.past_key_values

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

    def naive_loglikelihoods(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        """Reference: one full forward per (request, answer); see :func:`naive_loglikelihoods`."""
        return naive_loglikelihoods(self.loaded, requests)

    # --- generation ---------------------------------------------------------------
    def generate(self, prompts: Sequence[str], settings: GenerationSettings) -> list[str]:
        import torch

        encoded = [self.tokens.prefix(p) for p in prompts]
        budget = settings.max_new_tokens
        batches = sorted_batches(
            list(range(len(prompts))), lambda i: len(encoded[i]) + budget, self.batch_tokens, self.max_batch_rows
        )
        with torch.inference_mode():
            return self._generate_batches(encoded, batches, settings)

    def _generate_batch(self, seqs: list[list[int]], settings: GenerationSettings) -> list[str]:
        import torch

        if settings.temperature > 0:
            torch.manual_seed(settings.seed)
        L = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), L), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), L), dtype=torch.long)
        for b, s in enumerate(seqs):
            ids[b, L - len(s) :] = torch.tensor(s)
            mask[b, L - len(s) :] = 1
        gen = self.model.generate(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            max_new_tokens=settings.max_new_tokens,
            **settings.sampling_kwargs(),
            pad_token_id=self.pad_id,
            stop_strings=list(settings.stop) or None,
            tokenizer=self.tokenizer,
        )
        self.computed_tokens += int(mask.sum()) + gen.shape[0] * (gen.shape[1] - L)
        texts = self.tokenizer.batch_decode(gen[:, L:], skip_special_tokens=True)
        return [cut_at_stop(t, settings.stop) for t in texts]


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the first stop string."""
    cut = len(text)
    for s in stop:
        i = text.find(s)
        if s and i != -1:
            cut = min(cut, i)
    return text[:cut]


def torch_log_softmax(logits):  # type: ignore[no-untyped-def]
    import torch

    return torch.log_softmax(logits, dim=-1)


def naive_loglikelihoods(loaded: LoadedModel, requests: Sequence[ScoreRequest]) -> list[list[float]]:
    """Reference: one full forward per (request, continuation), no batching or reuse.

    Uses the same tokenisation as :class:`CausalLMBackend` (prefix, suffix and answer
    tokenised separately and concatenated), so the two must agree to float precision.
    """
    import torch

    tokens = Tokens(loaded.tokenizer)
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
