"""Adapters through the packed engine: every PEFT method scored (and trained) on token tries.

An adapter changes either the weights or what sits in front of the text, never the text
itself, so the packed engine's trie, tree mask and cached root serve it unchanged:

- LoRA changes only weights: its layers stay injected in the base model (not merged, so
  the base weights are never modified and the scores are exact), and the base model with
  them runs the trie like any model.
- Prompt tuning and P-tuning put virtual token *embeddings* in front of the text: they run
  once into the cached root, ahead of the shared prompt text.
- Prefix tuning puts virtual *key/values* in front: they are the cached root's first
  entries.

Text positions follow the virtual tokens, as PEFT places them. Cached roots are keyed by
the adapter's content digest, so scoring after a training step never reads a stale root.
:meth:`PackedAdapter.choice_logliks` is the differentiable twin the trainer uses: one batch's
shared prompt runs once, with gradients, and the rest is packed without padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from optprompt.adapters.methods import peft_quiet
from optprompt.scoring.backends.decoding import Lead
from optprompt.scoring.backends.packed import PackedScorer

if TYPE_CHECKING:
    from peft import PeftModel

    from optprompt.adapters.backend import Item

__all__ = ["PackedAdapter", "adapter_lead", "packable", "virtual_tokens"]

#: Attention implementations that take an arbitrary 4-D float mask (as the causal backend).
_MASKABLE = ("eager", "sdpa")


def packable(model: Any) -> bool:
    """Whether ``model``'s attention takes the packed engine's 4-D tree masks."""
    attn = getattr(model.config, "_attn_implementation", None) or "eager"
    return attn in _MASKABLE


def virtual_tokens(peft_model: PeftModel) -> int:
    """Virtual positions the adapter puts in front of the text (0 for LoRA)."""
    config = peft_model.peft_config[peft_model.active_adapter]
    return int(getattr(config, "num_virtual_tokens", 0) or 0) if config.is_prompt_learning else 0


def adapter_lead(peft_model: PeftModel) -> Lead:
    """The adapter's virtual positions in front of the text: embeddings (prompt tuning,
    P-tuning), a key/value cache (prefix tuning), or nothing (LoRA). Differentiable when
    gradients are on."""
    import torch

    v = virtual_tokens(peft_model)
    if not v:
        return Lead()
    with peft_quiet():
        prompt = peft_model.get_prompt(batch_size=1)
    if isinstance(prompt, torch.Tensor):
        return Lead(length=v, embeds=prompt)
    return Lead(length=v, cache=prompt)


class PackedAdapter:
    """Scores (and, with gradients, trains) a PEFT model's adapter on the packed engine.

    Args:
        peft_model: The base model wrapped with its adapter.
        budget: Tokens per packed row.
        keep_arg: Whether the base model's forward takes ``logits_to_keep``.
    """

    def __init__(self, peft_model: PeftModel, *, budget: int, keep_arg: bool) -> None:
        self.peft_model = peft_model
        self.scorer = PackedScorer(peft_model.get_base_model(), budget=budget, keep_arg=keep_arg)
        self._digest: str | None = None

    @property
    def computed_tokens(self) -> int:
        return self.scorer.computed_tokens

    def _current(self) -> str:
        """The adapter's digest; cached roots computed with other weights are dropped."""
        from optprompt.adapters.methods import adapter_digest

        digest = adapter_digest(self.peft_model)
        if digest != self._digest:
            self.scorer.clear()
            self._digest = digest
        return digest

    def root_lead(self, tokens: tuple[int, ...]) -> Lead:
        """The virtual tokens then ``tokens`` as one cached lead (for decoding: every
        batch continues from it; callers copy it before extending it). No gradients."""
        lead = adapter_lead(self.peft_model)
        if not tokens and lead.cache is None and lead.embeds is None:
            return Lead()
        with peft_quiet():
            cache = self.scorer.root_cache(tokens, lead=lead, lead_key=self._current())
        return Lead(length=lead.length + len(tokens), cache=cache)

    def loglikelihoods(
        self, contexts: Sequence[list[int]], answers: Sequence[list[list[int]]], prefix_lengths: Sequence[int]
    ) -> list[list[float]]:
        """Summed log-probability of each answer after its context, no gradients; the
        root (virtual tokens, then the shared prompt) is cached while the adapter's
        weights stay the same."""
        digest = self._current()
        with peft_quiet():
            return self.scorer.score(
                contexts, answers, prefix_lengths, lead=adapter_lead(self.peft_model), lead_key=digest
            )

    def choice_logliks(self, items: Sequence[Item]) -> list[Any]:
        """Differentiable twin of :func:`~optprompt.adapters.backend.choice_logliks`: one
        1-D tensor of answer log-likelihoods per item. The items' shared leading tokens
        (with the virtual tokens) run once; everything else is packed without padding."""
        with peft_quiet():
            return self.scorer.score_tensors(
                [it.context for it in items], [it.choices for it in items], lead=adapter_lead(self.peft_model)
            )
