"""The ``auto`` strategy's options (YAML ``strategy:`` keys)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from optprompt.strategies import StrategyConfig

__all__ = ["AutoConfig", "ComputeBudget", "FAMILIES"]

#: The families ``auto`` spans, cheapest first: the order they get their share in.
FAMILIES = ("template_search", "evolution", "soft_prompt")


class ComputeBudget(BaseModel):
    """One compute budget for every family: minutes of trial time, or dev-example
    equivalents (a dev example scored = 1; a train example in a training epoch = 3, a
    forward and a backward pass). Neither: ``trials`` alone bounds the study."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    minutes: float | None = Field(None, gt=0, description="Minutes of trial time (scoring and training).")
    dev_examples: int | None = Field(None, gt=0, description="Dev-example equivalents.")

    @model_validator(mode="after")
    def _one(self) -> ComputeBudget:
        if self.minutes is not None and self.dev_examples is not None:
            raise ValueError("give minutes or dev_examples, not both")
        return self

    @property
    def unit(self) -> str:
        return "minutes" if self.minutes is not None else "dev_examples" if self.dev_examples else "trials"


class AutoConfig(StrategyConfig):
    """Families of candidates under one budget. A family is its strategy's options (a
    mapping, ``{}`` for the defaults) or ``false`` (off)."""

    trials: int = Field(40, ge=2, description="Upper bound on trials, the baseline included.")
    budget: ComputeBudget = Field(default_factory=ComputeBudget, description="The compute budget of the study.")
    template_search: dict[str, Any] | bool = Field(default_factory=dict, description="Template search options.")
    evolution: dict[str, Any] | bool = Field(default_factory=dict, description="Evolution options.")
    soft_prompt: dict[str, Any] | bool = Field(default_factory=dict, description="Soft prompt / LoRA options.")
    schedule: Literal["halving", "shares"] = Field(
        "halving",
        description="How the budget is spread: successive halving over the families (the better ones go on), "
        "or fixed shares, cheapest family first.",
    )
    eta: int = Field(2, ge=2, description="halving: after each rung only the best 1/eta of the families go on.")
    shares: dict[str, float] = Field(
        default_factory=lambda: {"template_search": 0.25, "evolution": 0.25, "soft_prompt": 0.5},
        description="schedule: shares: share of the budget per family; what a family leaves unspent goes to the next.",
    )
    soft_from_best: bool = Field(
        True, description="Soft prompts train around the best discrete prompt found so far (else the baseline)."
    )

    @model_validator(mode="after")
    def _families(self) -> AutoConfig:
        unknown = sorted(set(self.shares) - set(FAMILIES))
        if unknown:
            raise ValueError(f"shares: unknown families {unknown}; known: {', '.join(FAMILIES)}")
        if any(v < 0 for v in self.shares.values()):
            raise ValueError("shares must not be negative")
        default_shares = type(self).model_fields["shares"].default_factory()  # type: ignore[misc]
        if self.schedule == "halving" and "shares" in self.model_fields_set and self.shares != default_shares:
            raise ValueError("shares apply to 'schedule: shares'; successive halving ('schedule: halving') has none")
        for name in FAMILIES:
            if getattr(self, name) is True:
                object.__setattr__(self, name, {})
        if not self.enabled():
            raise ValueError("every family is off; turn at least one on")
        return self

    def enabled(self) -> list[str]:
        """The families that are on, cheapest first."""
        return [f for f in FAMILIES if getattr(self, f) is not False]

    def options(self, family: str) -> dict[str, Any]:
        value = getattr(self, family)
        return dict(value) if isinstance(value, dict) else {}
