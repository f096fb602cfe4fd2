"""Causal LM backend: log-likelihood of continuations, every distinct token computed once.

The default engine (``packed``, :mod:`optprompt.scoring.backends.packed`) puts a scoring
job's contexts and answers into one token trie: the shared prompt prefix runs once into a
key/value cache, per-example text and answers are packed into rows under a 4-D tree
attention mask. Models whose attention cannot take such masks use the padded path of
optprompt 0.x (``padded``, :mod:`optprompt.scoring.backends.padded`), said once in the log.
Generation reuses the cached prefix too, through optprompt's own decoding loop.
"""

from __future__ import annotations

import inspect
import logging
from collections import OrderedDict
from collections.abc import Sequence

from optprompt.errors import ConfigError
from optprompt.models.loading import LoadedModel
from optprompt.prompts.render import ScoreRequest
from optprompt.scoring.backends.base import GenerationSettings, LocalBackend
from optprompt.scoring.backends.decoding import Lead, decode
from optprompt.scoring.backends.engines import engine_setting
from optprompt.scoring.backends.packed import PackedScorer
from optprompt.scoring.backends.padded import PaddedScoring
from optprompt.scoring.backends.threads import configure_threads
from optprompt.scoring.backends.tokens import Tokens, cut_at_stop
from optprompt.scoring.backends.trie import shared_prefix

log = logging.getLogger(__name__)

#: Attention implementations that take an arbitrary 4-D float mask.
_MASKABLE = ("eager", "sdpa")

__all__ = ["CausalLMBackend", "naive_loglikelihoods", "Tokens", "cut_at_stop"]


def sliding_window(config: object) -> int | None:
    """The attention window of a model whose layers (some or all) attend to a sliding window
    of recent tokens (Gemma 2/3, Mistral), or None when every layer sees the whole sequence."""
    window = getattr(config, "sliding_window", None)
    if not window or getattr(config, "use_sliding_window", True) is False:
        return None
    types = getattr(config, "layer_types", None)
    if types is not None and "sliding_attention" not in types:
        return None
    return int(window)


class CausalLMBackend(PaddedScoring, LocalBackend):
    """Decoder-only models (Llama, SmolLM2, GPT-2, Qwen...).

    Args:
        engine: ``auto`` (packed where the model's attention takes 4-D masks, else
            padded), ``packed`` or ``padded``; the environment variable
            ``OPTPROMPT_SCORING_ENGINE`` sets the default.
        pack_tokens: Tokens per packed row (default 384 on CPU, 2048 on GPU); the
            attention work of a row grows with its square, its matmuls with its length.
    """

    family = "causal"
    auto_class = "AutoModelForCausalLM"
    supports_chat = True

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        batch_tokens: int = 4096,
        max_batch_rows: int = 64,
        engine: str | None = None,
        pack_tokens: int | None = None,
    ) -> None:
        super().__init__(loaded, batch_tokens=batch_tokens, max_batch_rows=max_batch_rows)
        if self.device.type == "cpu":
            configure_threads()
        self.tokens = Tokens(loaded.tokenizer)
        params = inspect.signature(self.model.forward).parameters
        self._keep_arg = "logits_to_keep" in params
        self._prefix_cache: OrderedDict[tuple[int, ...], object] = OrderedDict()
        self.pad_id = self.tokens.pad_id
        self.engine = self._choose_engine(engine_setting(engine))
        self.pack_tokens = pack_tokens or (2048 if self.device.type == "cuda" else 384)
        self._packed = PackedScorer(self.model, budget=self.pack_tokens, keep_arg=self._keep_arg)
        self._window = sliding_window(self.model.config)
        self._said_window = False
        self._lead = Lead()  # the cached prompt prefix while generate() runs
        #: Decoding: prompt-lookup draft tokens per step (0: off) and whether finished
        #: rows leave the batch (see :func:`~optprompt.scoring.backends.decoding.decode`).
        self.lookup_tokens = 0
        self.compact = True
        #: Waiting rows join the running batch as rows finish (continuous batching).
        self.continuous = True

    def _choose_engine(self, engine: str) -> str:
        attn = getattr(self.model.config, "_attn_implementation", None) or "eager"
        if engine == "padded":
            return engine
        if attn not in _MASKABLE:
            if engine == "packed":
                raise ConfigError(f"the packed scoring engine needs eager or sdpa attention, the model uses {attn!r}")
            log.warning("%s attention cannot take tree masks: scoring with the padded engine", attn)
            return "padded"
        return "packed"

    # --- log-likelihoods ----------------------------------------------------------
    def loglikelihoods(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        import torch

        if not requests:
            return []
        with torch.inference_mode():
            if self.engine == "padded":
                return self._padded_loglikelihoods(requests)
            return self._with_oom_backoff(self._packed_loglikelihoods, requests)

    def _packed_loglikelihoods(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        contexts, answers, prefix_lengths = self.tokens.requests(requests)
        if self._beyond_window(contexts, answers):
            return self._padded_loglikelihoods(requests)
        return self._packed_score(contexts, answers, prefix_lengths)

    def _beyond_window(self, contexts: Sequence[list[int]], answers: Sequence[list[list[int]]]) -> bool:
        """Whether a sequence is longer than the model's sliding attention window: the packed
        engine's tree masks and cropped caches assume every layer sees the whole sequence, so
        such requests are scored with the padded engine (said once in the log)."""
        if self._window is None:
            return False
        longest = max(len(c) + max((len(a) for a in ans), default=0) for c, ans in zip(contexts, answers))
        if longest <= self._window:
            return False
        if not self._said_window:
            log.warning(
                "sequences of %d tokens are longer than the model's sliding attention window (%d): scored with "
                "the padded engine",
                longest,
                self._window,
            )
            self._said_window = True
        return True

    def _packed_score(
        self, contexts: Sequence[list[int]], answers: Sequence[list[list[int]]], prefix_lengths: Sequence[int]
    ) -> list[list[float]]:
        self._packed.budget = max(1, min(self.pack_tokens, self.batch_tokens))
        before = self._packed.computed_tokens
        try:
            return self._packed.score(contexts, answers, prefix_lengths)
        finally:
            self.computed_tokens += self._packed.computed_tokens - before

    def token_loglikelihoods(
        self, contexts: Sequence[list[int]], answers: Sequence[list[list[int]]]
    ) -> list[list[float]] | None:
        """Summed log-probability of each token continuation after its token context (ids
        as given: no BOS is added), through the packed engine: the contexts' shared leading
        tokens run once, every distinct (context, continuation) token once. None where the
        model is scored with the padded engine."""
        import torch

        if self.engine != "packed" or self._beyond_window(contexts, answers):
            return None
        if not contexts:
            return []
        with torch.inference_mode():
            return self._with_oom_backoff(self._packed_score, contexts, answers, [len(c) - 1 for c in contexts])

    def naive_loglikelihoods(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        """Reference: one full forward per (request, answer); see :func:`naive_loglikelihoods`."""
        return naive_loglikelihoods(self.loaded, requests)

    # --- generation ---------------------------------------------------------------
    def generate(self, prompts: Sequence[str], settings: GenerationSettings) -> list[str]:
        """Greedy (or seeded sampled) continuations; the prompts' shared leading tokens run
        once into a cached prefix that every batch continues from."""
        import torch

        if not prompts:
            return []
        encoded = self.tokens.prompts(prompts)
        budget = settings.max_new_tokens
        with torch.inference_mode():
            shared = shared_prefix(encoded, min(len(e) for e in encoded) - 1)
            before = self._packed.computed_tokens
            cache = self._packed.root_cache(tuple(encoded[0][:shared])) if shared else None
            self.computed_tokens += self._packed.computed_tokens - before
            self._lead = Lead(length=shared, cache=cache)
            rest = [e[shared:] for e in encoded]
            try:
                return self._generate_all(rest, settings, lambda i: len(rest[i]) + budget)
            finally:
                self._lead = Lead()

    def _generate_rows(self, seqs: list[list[int]], settings: GenerationSettings, slots: int) -> list[str]:
        gen, computed = decode(
            self.model,
            self.tokenizer,
            seqs,
            settings,
            pad_id=self.pad_id,
            lead=self._lead,
            keep_arg=self._keep_arg,
            lookup=self.lookup_tokens,
            compact=self.compact,
            max_rows=slots,
            continuous=self.continuous,
        )
        self.computed_tokens += computed
        texts = self.tokenizer.batch_decode(gen, skip_special_tokens=True)
        return [cut_at_stop(t, settings.stop) for t in texts]


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
