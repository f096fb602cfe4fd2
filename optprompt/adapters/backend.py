"""Scoring and generating with an adapted (PEFT) causal LM.

The trainer and the scorer share one function, :func:`choice_logliks`: the summed
log-probability of each answer of each example after its context, batched, with
gradients when training and without when scoring. So the objective the adapter is
trained on is exactly what the study ranks by.

Sequences are right-padded: PEFT puts virtual tokens (or prefix key/values) in front of
every row, and the model numbers positions from there, so right padding keeps every real
token at the position it has unpadded. Only the positions that predict answer tokens are
projected onto the vocabulary (``logits_to_keep``).

:class:`AdapterBackend` scores through the packed engine
(:mod:`optprompt.adapters.engine`: token trie, tree masks, the virtual tokens and shared
prompt cached once) wherever the model's attention takes 4-D masks; the padded
:func:`choice_logliks` is its reference and the fallback (``engine="padded"``, or
``OPTPROMPT_SCORING_ENGINE=padded``).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optprompt.adapters.methods import adapter_digest, merged_lora, peft_quiet
from optprompt.errors import CandidateRejected, ConfigError
from optprompt.prompts.render import ScoreRequest
from optprompt.scoring.backends.base import GenerationSettings, LocalBackend, sorted_batches
from optprompt.scoring.backends.causal import Tokens, cut_at_stop
from optprompt.scoring.backends.decoding import Lead, decode
from optprompt.scoring.backends.engines import engine_setting
from optprompt.scoring.backends.trie import shared_prefix

if TYPE_CHECKING:
    from peft import PeftModel

    from optprompt.models.loading import LoadedModel

__all__ = ["AdapterBackend", "Item", "choice_logliks", "encode_request", "adapter_digest"]


@dataclass(frozen=True)
class Item:
    """One example as token ids: its context and each answer's tokens."""

    context: list[int]
    choices: list[list[int]]

    @property
    def length(self) -> int:
        return len(self.context) + max((len(c) for c in self.choices), default=1) - 1


def encode_request(tokens: Tokens, request: ScoreRequest, continuations: Sequence[str] | None = None) -> Item:
    """Tokenise like the causal scorer: prefix (with BOS) and suffix separately, then answers."""
    context = tokens.prefix(request.prefix) + tokens.encode(request.suffix)
    if not context:
        raise CandidateRejected("an empty prompt cannot be scored")
    conts = request.continuations if continuations is None else continuations
    return Item(context, [tokens.continuation(c) for c in conts])


def choice_logliks(model: Any, items: Sequence[Item], pad_id: int, device: Any, *, keep_arg: bool = True) -> list:
    """Summed log-probability of every answer of every item, in one forward pass.

    Answers that share all but their last token share a row (single-token answers share
    the context's row). Returns one 1-D tensor per item (differentiable when grad is on).
    """
    import torch

    rows: list[list[int]] = []
    index: dict[tuple[int, tuple[int, ...]], int] = {}
    refs: list[tuple[int, int, int, list[int]]] = []  # item, row, first position, tokens
    for i, it in enumerate(items):
        for c in it.choices:
            key = (i, tuple(c[:-1]))
            if key not in index:
                index[key] = len(rows)
                rows.append(it.context + c[:-1])
            refs.append((i, index[key], len(it.context) - 1, c))
    width = max(len(r) for r in rows)
    first = min(len(it.context) for it in items) - 1
    keep = width - first
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, : len(r)] = torch.tensor(r)
        mask[b, : len(r)] = 1
    kwargs: dict[str, Any] = {"logits_to_keep": keep} if keep_arg else {}
    with peft_quiet():
        out = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False, **kwargs)
    logits = out.logits[:, -keep:, :]
    row_idx, pos_idx, tok_idx, owner = [], [], [], []
    for n, (_, row, start, toks) in enumerate(refs):
        for k, t in enumerate(toks):
            row_idx.append(row)
            pos_idx.append(start + k - first)
            tok_idx.append(t)
            owner.append(n)
    picked = logits[torch.tensor(row_idx), torch.tensor(pos_idx)].float()  # (tokens, vocab)
    logp = torch.log_softmax(picked, dim=-1).gather(1, torch.tensor(tok_idx, device=picked.device)[:, None])[:, 0]
    sums = torch.zeros(len(refs), dtype=logp.dtype, device=logp.device).index_add(
        0, torch.tensor(owner, device=logp.device), logp
    )
    out_items: list = []
    n = 0
    for it in items:
        out_items.append(sums[n : n + len(it.choices)])
        n += len(it.choices)
    return out_items


class AdapterBackend(LocalBackend):
    """Scores and generates through a PEFT model (the base model plus its adapter).

    Args:
        loaded: The base model (its tokenizer, device, fingerprint).
        peft_model: The base model wrapped with the adapter.
        engine: ``auto`` (packed where the attention takes 4-D masks, else the padded
            :func:`choice_logliks`), ``packed`` or ``padded`` (padded); the environment
            variable ``OPTPROMPT_SCORING_ENGINE`` sets the default, as for prompts.
        pack_tokens: Tokens per packed row (default 384 on CPU, 2048 on GPU).
    """

    family = "causal"
    auto_class = "AutoModelForCausalLM"
    supports_chat = True

    def __init__(
        self,
        loaded: LoadedModel,
        peft_model: PeftModel,
        *,
        batch_tokens: int = 4096,
        max_batch_rows: int = 64,
        engine: str | None = None,
        pack_tokens: int | None = None,
    ) -> None:
        from optprompt.adapters.engine import PackedAdapter, packable, virtual_tokens

        super().__init__(loaded, batch_tokens=batch_tokens, max_batch_rows=max_batch_rows)
        self.model = peft_model
        self.tokens = Tokens(loaded.tokenizer)
        self.pad_id = self.tokens.pad_id
        self.keep_arg = "logits_to_keep" in inspect.signature(loaded.model.forward).parameters
        self.virtual_tokens = virtual_tokens(peft_model)
        engine = engine_setting(engine)
        if engine == "packed" and not packable(loaded.model):
            raise ConfigError("the packed scoring engine needs eager or sdpa attention")
        self.engine = "packed" if engine != "padded" and packable(loaded.model) else "padded"
        self.pack_tokens = pack_tokens or (2048 if self.device.type == "cuda" else 384)
        #: Decoding: prompt-lookup draft tokens per step (0: off), finished rows dropped,
        #: waiting rows joining the running batch as rows finish (continuous batching).
        self.lookup_tokens = 0
        self.compact = True
        self.continuous = True
        #: Decoding: fold LoRA's updates into the weights while generating (restored after).
        self.merge_lora = True
        self._gen_lead: Lead | None = None  # the cached root while generate() runs
        #: The packed engine over this adapter (also the trainer's differentiable scorer).
        self.packed = PackedAdapter(peft_model, budget=self.pack_tokens, keep_arg=self.keep_arg)

    @property
    def settings_key(self) -> list[Any]:
        return [*super().settings_key, "adapter", adapter_digest(self.model)]

    def items(self, requests: Sequence[ScoreRequest]) -> list[Item]:
        return [encode_request(self.tokens, r) for r in requests]

    def loglikelihoods(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        import torch

        if not requests:
            return []
        if self.engine == "packed":
            with torch.inference_mode():
                return self._with_oom_backoff(self._packed_loglikelihoods, requests)
        return self.padded_loglikelihoods(requests)

    def _packed_loglikelihoods(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        contexts, answers, prefix_lengths = self.tokens.requests(requests)
        self.packed.scorer.budget = max(1, min(self.pack_tokens, self.batch_tokens))
        before = self.packed.computed_tokens
        try:
            return self.packed.loglikelihoods(contexts, answers, prefix_lengths)
        finally:
            self.computed_tokens += self.packed.computed_tokens - before

    def padded_loglikelihoods(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        """The padded path (:func:`choice_logliks` over length-sorted batches): the
        packed engine's reference and fallback."""
        import torch

        items = self.items(requests)
        results: list[list[float]] = [[] for _ in items]
        v = self.virtual_tokens

        def run(batch: list[int]) -> None:
            sums = choice_logliks(
                self.model, [items[i] for i in batch], self.pad_id, self.device, keep_arg=self.keep_arg
            )
            for i, s in zip(batch, sums):
                results[i] = [float(x) for x in s.tolist()]
            self.computed_tokens += sum(items[i].length + v for i in batch)

        with torch.inference_mode():
            rows = list(range(len(items)))
            width = max(1, max((len(it.choices) for it in items), default=1))
            for batch in sorted_batches(
                rows, lambda i: (items[i].length + v) * width, self.batch_tokens, self.max_batch_rows
            ):
                self._with_oom_backoff(run, batch)
        return results

    def naive_loglikelihoods(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        """One full forward per (request, answer) through the PEFT model, every position projected."""
        import torch

        out: list[list[float]] = []
        with torch.inference_mode(), peft_quiet():
            for it in self.items(requests):
                scores = []
                for c in it.choices:
                    ids = torch.tensor([it.context + c], device=self.device)
                    logits = self.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0].float()
                    logits = logits[-(len(it.context) + len(c)) :]  # drop virtual-token positions
                    logp = torch.log_softmax(logits, dim=-1)
                    start = len(it.context) - 1
                    scores.append(float(sum(logp[start + k, t] for k, t in enumerate(c))))
                out.append(scores)
        return out

    def generate(self, prompts: Sequence[str], settings: GenerationSettings) -> list[str]:
        """Generate with the adapter: virtual tokens (or prefix key/values) in front of
        every prompt, LoRA's updates merged into the weights while it decodes
        (:func:`~optprompt.adapters.methods.merged_lora`; ``merge_lora = False`` keeps
        the separate LoRA layers).

        Decoding runs optprompt's own loop over the base model's forward pass
        (:func:`~optprompt.scoring.backends.decoding.decode`), not ``PeftModel.generate``,
        whose cache handling for prompt learning broke with transformers 5.24. On the
        packed engine the virtual tokens and the prompts' shared leading tokens run once
        into a cached root (kept while the adapter's weights stay the same) that every
        batch continues from.
        """
        import torch

        if not prompts:
            return []
        encoded = self.tokens.prompts(prompts)
        budget = settings.max_new_tokens
        with torch.inference_mode(), peft_quiet(), merged_lora(self.model) if self.merge_lora else nullcontext():
            shared = 0
            if self.engine == "packed":
                shared = shared_prefix(encoded, min(len(e) for e in encoded) - 1)
                before = self.packed.computed_tokens
                self._gen_lead = self.packed.root_lead(tuple(encoded[0][:shared]))
                self.computed_tokens += self.packed.computed_tokens - before
            rest = [e[shared:] for e in encoded]
            virtual = 0 if self.engine == "packed" else self.virtual_tokens
            try:
                return self._generate_all(rest, settings, lambda i: len(rest[i]) + budget + virtual)
            finally:
                self._gen_lead = None

    def _lead(self) -> Lead:
        """The adapter's virtual positions in front of the prompt (none for LoRA)."""
        from optprompt.adapters.engine import adapter_lead

        return adapter_lead(self.model)

    def _generate_rows(self, seqs: list[list[int]], settings: GenerationSettings, slots: int) -> list[str]:
        base = self.model.get_base_model()
        gen, computed = decode(
            base,
            self.tokenizer,
            seqs,
            settings,
            pad_id=self.pad_id,
            lead=self._gen_lead if self._gen_lead is not None else self._lead(),
            keep_arg=self.keep_arg,
            lookup=self.lookup_tokens,
            compact=self.compact,
            max_rows=slots,
            continuous=self.continuous,
        )
        self.computed_tokens += computed
        texts = self.tokenizer.batch_decode(gen, skip_special_tokens=True)
        return [cut_at_stop(t, settings.stop) for t in texts]
