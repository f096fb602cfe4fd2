"""What every row shares in front of its prompt, and where a row ends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Lead", "eos_ids"]


@dataclass(frozen=True)
class Lead:
    """What comes before every row's prompt.

    Attributes:
        length: Positions it occupies (the first prompt token sits at this position).
        cache: A key/value cache for those positions, for one row (expanded per batch).
        embeds: Input embeddings for those positions, shape ``(1, length, hidden)``,
            run through the model with the prompts in the first step.
    """

    length: int = 0
    cache: Any = None
    embeds: Any = None

    def __post_init__(self) -> None:
        if self.cache is not None and self.embeds is not None:
            raise ValueError("a lead is either a cache or embeddings, not both")


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """End-of-sequence token ids: the model's generation config, else the tokenizer's."""
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if ids is None:
        ids = tokenizer.eos_token_id
    if ids is None:
        return set()
    return {int(i) for i in ids} if isinstance(ids, (list, tuple)) else {int(ids)}
