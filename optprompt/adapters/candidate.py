"""Soft candidates: a discrete template plus the adapter trained on top of it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from optprompt.errors import ConfigError
from optprompt.prompts.candidate import PromptCandidate

#: The PEFT methods a soft candidate may train; the first three learn virtual tokens.
METHODS = ("prompt_tuning", "prefix_tuning", "p_tuning", "lora")
PROMPT_LEARNING = ("prompt_tuning", "prefix_tuning", "p_tuning")

__all__ = ["SoftCandidate", "adapter_summary"]


@dataclass(frozen=True)
class SoftCandidate(PromptCandidate):
    """A :class:`PromptCandidate` (the text around the input) with a PEFT adapter.

    Attributes:
        method: ``prompt_tuning``, ``prefix_tuning``, ``p_tuning`` or ``lora``.
        params: The adapter's and the training run's hyperparameters, as sorted
            ``(name, value)`` pairs (JSON values), e.g. ``num_virtual_tokens``, ``lr``,
            ``epochs``, ``init``. Part of the hash: two runs with the same template,
            method and hyperparameters (and study seed) train the same adapter.
    """

    kind: ClassVar[str] = "soft"

    method: str = "prompt_tuning"
    params: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.method not in METHODS:
            raise ConfigError(f"unknown adapter method {self.method!r}; known: {', '.join(METHODS)}")
        if self.calibration != "none":
            raise ConfigError("soft candidates are trained, not calibrated: calibration must be 'none'")
        if self.retrieval is not None:
            raise ConfigError("soft candidates train around fixed text: demonstrations cannot be retrieved per input")
        json.dumps(dict(self.params))  # params must be JSON values (TypeError otherwise)

    @classmethod
    def create(cls, prompt: PromptCandidate, method: str, params: dict[str, Any]) -> SoftCandidate:
        """The soft candidate training ``method`` with ``params`` around ``prompt``'s text."""
        return cls(
            **prompt.text_fields(),
            metadata=dict(prompt.metadata),
            method=method,
            params=tuple(sorted(params.items())),
        )

    @property
    def param_map(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def virtual_tokens(self) -> int:
        """Virtual tokens the adapter puts before the text (0 for LoRA)."""
        return int(self.param_map.get("num_virtual_tokens", 0)) if self.method != "lora" else 0

    @property
    def prompt(self) -> PromptCandidate:
        """The discrete part alone."""
        return PromptCandidate(**self.text_fields(), metadata=dict(self.metadata))

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["kind"] = self.kind
        d["params"] = dict(self.params)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SoftCandidate:
        data = {k: v for k, v in data.items() if k != "kind"}
        data["params"] = tuple(sorted(dict(data.get("params", {})).items()))
        return super().from_dict(data)  # type: ignore[return-value]


def adapter_summary(candidate: dict[str, Any]) -> str:
    """A soft candidate (as a dict) in a few words: method and searched hyperparameters."""
    p = candidate.get("params", {})
    parts = [candidate.get("method", "?")]
    if "num_virtual_tokens" in p:
        parts.append(f"{p['num_virtual_tokens']} tokens")
    if "init" in p:
        parts.append(f"init {p['init']}")
    if "lora_r" in p:
        parts.append(f"r {p['lora_r']}")
    parts.append(f"lr {p.get('lr', 0):.2g}")
    parts.append(f"{p.get('epochs', '?')} epochs")
    return ", ".join(parts)
