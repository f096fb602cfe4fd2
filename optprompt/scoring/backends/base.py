"""The backend extension point: one interface over causal, seq2seq, masked and served LMs.

A backend scores :class:`ScoreRequest` continuations by log-likelihood and, where the
model family can, generates text (:class:`Backend`, the text-level contract). Backends
over weights in this process share :class:`LocalBackend` (devices, batches sized to
memory, out-of-memory retries); a model server's backend is a peer of theirs. Batching,
prefix reuse and device handling live in backends and nowhere else; the evaluator never
knows which family it talks to.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from optprompt.errors import OptpromptError
from optprompt.prompts.render import ScoreRequest

if TYPE_CHECKING:
    from optprompt.models.loading import LoadedModel

__all__ = ["Backend", "GenerationSettings", "LocalBackend", "is_oom", "sorted_batches"]


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings: greedy when ``temperature`` is 0, else seeded sampling."""

    max_new_tokens: int = 32
    stop: tuple[str, ...] = ("\n",)
    temperature: float = 0.0
    seed: int = 0

    def key(self) -> list[Any]:
        return [self.max_new_tokens, list(self.stop), self.temperature, self.seed if self.temperature > 0 else None]

    def sampling_kwargs(self) -> dict[str, Any]:
        if self.temperature <= 0:
            return {"do_sample": False, "num_beams": 1}
        return {"do_sample": True, "temperature": self.temperature, "top_k": 0, "top_p": 1.0, "num_beams": 1}


def is_oom(err: BaseException) -> bool:
    """True for a device out-of-memory error (CUDA or MPS)."""
    import torch

    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()


class Backend(abc.ABC):
    """The text-level contract every backend keeps, in-process or served: log-likelihoods
    of continuations after a prompt, and (where the model family can) generation.

    Subclasses set ``family`` (the registry name) and ``settings_key`` (what, besides the
    request, decides a score) and implement :meth:`loglikelihoods` and
    :meth:`naive_loglikelihoods`. Backends that run weights in this process derive from
    :class:`LocalBackend`; a model server's backend derives from this class directly.

    Args:
        batch_tokens: Upper bound on (rows x longest row) per forward pass or request.
        max_batch_rows: Rows per forward pass or request at most.
    """

    family: ClassVar[str]
    supports_chat: ClassVar[bool] = False
    #: The transformers Auto class that loads such models; None for backends that load
    #: no weights (a model server's).
    auto_class: ClassVar[str | None] = None

    def __init__(self, *, batch_tokens: int = 4096, max_batch_rows: int = 64) -> None:
        self.batch_tokens = batch_tokens
        self.max_batch_rows = max_batch_rows
        self.computed_tokens = 0  # tokens pushed through the model, for throughput figures

    @property
    @abc.abstractmethod
    def settings_key(self) -> list[Any]:
        """What, besides the request, determines a score (for the persistent cache)."""

    @abc.abstractmethod
    def loglikelihoods(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        """Summed log-probability of each continuation of each request."""

    @abc.abstractmethod
    def naive_loglikelihoods(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        """Reference implementation: one request and one answer at a time, no batching.

        The fast path must agree with it within 1e-4 (fp32); tests and benchmarks use it.
        """

    def generate(self, prompts: Sequence[str], settings: GenerationSettings) -> list[str]:
        """Greedy continuations of ``prompts`` (stopping at a stop string or the budget)."""
        raise OptpromptError(f"{self.family} models cannot generate text; use a causal or seq2seq model")


class LocalBackend(Backend):
    """A backend over a model loaded in this process: devices, key/value caches, batches
    sized to memory and out-of-memory retries live here.

    Subclasses set ``auto_class`` (the transformers Auto class that loads such models).

    Args:
        loaded: The model, tokenizer and device.
        batch_tokens: Upper bound on (rows x longest row) per forward pass; halved
            automatically after an out-of-memory error.
    """

    auto_class: ClassVar[str]

    def __init__(self, loaded: LoadedModel, *, batch_tokens: int = 4096, max_batch_rows: int = 64) -> None:
        super().__init__(batch_tokens=batch_tokens, max_batch_rows=max_batch_rows)
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.device = loaded.device

    @property
    def settings_key(self) -> list[Any]:
        """What, besides the request, determines a score (for the persistent cache)."""
        return [self.family, self.loaded.fingerprint, str(self.loaded.dtype)]

    def _generate_all(self, encoded: Sequence[list[int]], settings: GenerationSettings, cost: Any) -> list[str]:
        """Generate for every prompt (``encoded``: its token ids after any shared lead):
        the rows longest first (``cost(i)``: row ``i``'s prompt + budget tokens) through
        the subclass's ``_generate_rows``, which decodes them in one continuous batch of at
        most ``rows x longest cost <= batch_tokens`` rows (and ``max_batch_rows``); on out
        of memory the budget is halved and the rows start again. Texts in prompt order."""
        order = sorted(range(len(encoded)), key=cost, reverse=True)
        seqs = [encoded[i] for i in order]
        widest = max(1, cost(order[0]))

        def run() -> list[str]:
            slots = max(1, min(self.max_batch_rows, self.batch_tokens // widest))
            return self._generate_rows(seqs, settings, slots)  # type: ignore[attr-defined,no-any-return]

        texts = self._with_oom_backoff(run)
        out = [""] * len(encoded)
        for i, t in zip(order, texts):
            out[i] = t
        return out

    def _with_oom_backoff(self, fn, *args):  # type: ignore[no-untyped-def]
        """Run ``fn``; on out-of-memory halve the batch budget and retry (down to one row)."""
        import torch

        while True:
            try:
                return fn(*args)
            except (RuntimeError, torch.OutOfMemoryError) as e:
                if not is_oom(e) or self.batch_tokens <= 1:
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                self.batch_tokens = max(1, self.batch_tokens // 2)
                self.max_batch_rows = max(1, self.max_batch_rows // 2)


def sorted_batches(rows: list, length, batch_tokens: int, max_rows: int) -> list[list]:  # type: ignore[no-untyped-def]
    """Longest first, greedily packed so that rows x longest <= batch_tokens."""
    rows = sorted(rows, key=length, reverse=True)
    batches: list[list] = []
    cur: list = []
    for row in rows:
        width = length(cur[0]) if cur else length(row)
        if cur and ((len(cur) + 1) * width > batch_tokens or len(cur) >= max_rows):
            batches.append(cur)
            cur = []
        cur.append(row)
    if cur:
        batches.append(cur)
    return batches
