"""Text embeddings from a loaded model: mean-pooled last hidden states.

What :mod:`optprompt.prompts.retrieval` compares inputs and train examples with when a
candidate retrieves its demonstrations per input. Any model optprompt loads serves: a
decoder-only LM (its base model's last hidden states, no vocabulary projection), an
encoder-decoder (its encoder) or a masked LM.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from optprompt.scoring.backends.base import sorted_batches

if TYPE_CHECKING:
    import numpy as np

    from optprompt.models.loading import LoadedModel
    from optprompt.prompts.retrieval import Embedder

__all__ = ["ModelEmbedder", "make_embedder"]


def make_embedder(ref: Any, pooling: str, load: Callable[[Any], LoadedModel]) -> Embedder:
    """The one place embedders are built: a served reference (an http(s) URL, a mapping or a
    :class:`~optprompt.config.ServedModelSpec`) embeds through the server's ``/v1/embeddings``
    (:class:`~optprompt.scoring.served_embedding.ServedEmbedder`); any other reference is
    the model ``load`` gives, its hidden states pooled (:class:`ModelEmbedder`)."""
    from optprompt.models.served import is_served_ref, served_spec

    if is_served_ref(ref):
        from optprompt.scoring.served_embedding import ServedEmbedder

        return ServedEmbedder(served_spec(ref))
    return ModelEmbedder(load(ref), pooling=pooling)


class ModelEmbedder:
    """Embeds texts with ``loaded``: its last hidden states, averaged over the text's tokens
    (``mean``) or at its last token (``last``).

    Args:
        loaded: The model (weights untouched; no gradients).
        pooling: ``mean`` or ``last``.
        batch_tokens: Upper bound on rows x longest row per forward pass (pool embedding).
        max_rows: Most texts per forward pass.
    """

    def __init__(
        self, loaded: LoadedModel, *, pooling: str = "mean", batch_tokens: int = 8192, max_rows: int = 64
    ) -> None:
        from optprompt.errors import ConfigError
        from optprompt.prompts.retrieval import POOLINGS

        if pooling not in POOLINGS:
            raise ConfigError(f"pooling: {pooling!r} is not one of {', '.join(POOLINGS)}")
        self.pooling = pooling
        self.loaded = loaded
        self.ref = loaded.ref
        self.fingerprint = loaded.fingerprint
        self.batch_tokens = batch_tokens
        self.max_rows = max_rows
        config = loaded.model.config
        self._encoder = loaded.model.get_encoder() if getattr(config, "is_encoder_decoder", False) else None
        base = getattr(loaded.model, "base_model", None)
        self._base = base if base is not None and base is not loaded.model else None
        params = inspect.signature(self._base.forward).parameters if self._base is not None else {}
        self._base_kwargs = {"use_cache": False} if "use_cache" in params else {}
        self.dim = int(getattr(config, "d_model", None) or getattr(config, "hidden_size", 0) or 0)

    @property
    def reference(self) -> str:
        """What rebuilds this embedder (a card records it): the model's reference."""
        return str(self.ref)

    def _ids(self, text: str) -> list[int]:
        return list(self.loaded.tokenizer(text, add_special_tokens=True).input_ids) if text else []

    def _hidden(self, ids: Any, mask: Any) -> Any:
        if self._encoder is not None:
            return self._encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        if self._base is not None:
            out = self._base(input_ids=ids, attention_mask=mask, **self._base_kwargs)
            hidden = getattr(out, "last_hidden_state", None)
            if hidden is not None:
                return hidden
        return self.loaded.model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1]

    def _pooled(self, rows: list[list[int]]) -> np.ndarray:
        import numpy as np
        import torch

        width = max(len(r) for r in rows)
        pad = self.loaded.tokenizer.pad_token_id
        pad = pad if pad is not None else (self.loaded.tokenizer.eos_token_id or 0)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, r in enumerate(rows):
            ids[b, : len(r)] = torch.tensor(r)
            mask[b, : len(r)] = 1
        device = self.loaded.device
        with torch.inference_mode():
            hidden = self._hidden(ids.to(device), mask.to(device)).float()
            m = mask.to(device)[..., None].float()
            if self.pooling == "last":
                last = mask.sum(dim=1).to(device) - 1
                pooled = hidden[torch.arange(len(rows), device=device), last]
            else:
                pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
        return pooled.cpu().numpy().astype(np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One vector per text, in batches of similar lengths (an empty text: zeros)."""
        import numpy as np

        encoded = [self._ids(t) for t in texts]
        out: np.ndarray | None = None
        rows = [i for i, e in enumerate(encoded) if e]
        for batch in sorted_batches(rows, lambda i: len(encoded[i]), self.batch_tokens, self.max_rows):
            vectors = self._pooled([encoded[i] for i in batch])
            if out is None:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            out[batch] = vectors
        if out is None:
            out = np.zeros((len(texts), self.dim), dtype=np.float32)
        return out

    def embed_one(self, text: str) -> np.ndarray:
        """``text`` alone (no padding): the same vector in a study and in an exported card."""
        import numpy as np

        ids = self._ids(text)
        if not ids:
            return np.zeros(self.dim, dtype=np.float32)
        return self._pooled([ids])[0]
