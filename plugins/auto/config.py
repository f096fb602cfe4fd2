"""The ``auto`` strategy's options (YAML ``strategy:`` keys).

Its families are not named here: every registered strategy that declares the
:class:`~optprompt.strategies.Family` capability is one, and its name is a key of the
options (its strategy's options, or ``false``). :func:`auto_config` builds the options'
class for the strategies registered in a study.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from optprompt.strategies import BaseStrategy, Family, StrategyConfig

__all__ = ["AutoConfig", "ComputeBudget", "auto_config", "families_of"]


def families_of(strategies: Sequence[type[BaseStrategy]]) -> dict[str, Family]:
    """The strategies that declare :class:`Family`, by name, cheapest first (ties by name)."""
    found = {cls.name: cls.family for cls in strategies if isinstance(getattr(cls, "family", None), Family)}
    return {name: found[name] for name in sorted(found, key=lambda n: (found[n].cost, n))}


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


class LowFidelity(BaseModel):
    """The first rung's fidelity for families that train (``low_fidelity``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    train: float = Field(0.5, gt=0.0, le=1.0, description="Share of the train split a first-rung run learns from.")
    epochs: int = Field(1, ge=1, le=100, description="Epochs of a first-rung run.")


class AutoConfig(StrategyConfig):
    """Families of candidates under one budget. A family is its strategy's options (a
    mapping, ``{}`` for the defaults) or ``false`` (off); the keys of the families are the
    names of the registered strategies that declare the ``family`` capability (built in:
    ``template_search``, ``evolution``, ``soft_prompt``). Built for a study's strategies
    by :func:`auto_config`."""

    #: The families' names, cheapest first (set by :func:`auto_config`).
    families: ClassVar[tuple[str, ...]] = ()
    #: The shares of ``schedule: shares`` when none are given (set by :func:`auto_config`).
    default_shares: ClassVar[dict[str, float]] = {}

    trials: int = Field(40, ge=2, description="Upper bound on trials, the baseline included.")
    budget: ComputeBudget = Field(default_factory=ComputeBudget, description="The compute budget of the study.")
    schedule: Literal["halving", "shares"] = Field(
        "halving",
        description="How the budget is spread: successive halving over the families (the better ones go on), "
        "or fixed shares, cheapest family first.",
    )
    eta: int = Field(2, ge=2, description="halving: after each rung only the best 1/eta of the families go on.")
    shares: dict[str, float] = Field(
        default_factory=dict,
        description="schedule: shares: share of the budget per family; what a family leaves unspent goes to the next.",
    )
    low_fidelity: LowFidelity | None = Field(
        default_factory=lambda: LowFidelity(),
        description="halving: in the first rung, families that train (and accept it) run on a part of train for "
        "few epochs, so more of their candidates are explored; survivors train at full fidelity. false: off.",
    )

    @field_validator("low_fidelity", mode="before")
    @classmethod
    def _off(cls, value: Any) -> Any:
        """``false`` turns it off (None); ``true`` takes the defaults."""
        if value is False:
            return None
        return {} if value is True else value

    soft_from_best: bool = Field(
        True,
        description="Families that train around a given prompt (soft prompts) start from the best discrete prompt "
        "found so far (else the baseline).",
    )

    @model_validator(mode="after")
    def _families(self) -> AutoConfig:
        unknown = sorted(set(self.shares) - set(self.families))
        if unknown:
            raise ValueError(f"shares: unknown families {unknown}; known: {', '.join(self.families)}")
        if any(v < 0 for v in self.shares.values()):
            raise ValueError("shares must not be negative")
        if self.schedule == "halving" and "shares" in self.model_fields_set and self.shares != self.default_shares:
            raise ValueError("shares apply to 'schedule: shares'; successive halving ('schedule: halving') has none")
        for name in self.families:
            if getattr(self, name) is True:
                object.__setattr__(self, name, {})
        if not self.enabled():
            raise ValueError("every family is off; turn at least one on")
        return self

    def enabled(self) -> list[str]:
        """The families that are on, cheapest first."""
        return [f for f in self.families if getattr(self, f) is not False]

    def options(self, family: str) -> dict[str, Any]:
        value = getattr(self, family)
        return dict(value) if isinstance(value, dict) else {}


def auto_config(families: Mapping[str, Family]) -> type[AutoConfig]:
    """:class:`AutoConfig` with one key per family (``families`` cheapest first, as
    :func:`families_of` orders them), each on by default, and default shares in proportion
    to the families' declared ``share``."""
    total = sum(f.share for f in families.values())
    shares = {name: (f.share / total if total else 0.0) for name, f in families.items()}
    fields: dict[str, Any] = {
        name: (
            dict[str, Any] | bool,
            Field(default_factory=dict, description=f"{name}: its strategy's options, or false (off)."),
        )
        for name in families
    }
    fields["shares"] = (
        dict[str, float],
        Field(
            default_factory=lambda: dict(shares),
            description=AutoConfig.model_fields["shares"].description,
        ),
    )
    model = create_model("AutoConfig", __base__=AutoConfig, __module__=__name__, **fields)
    model.families = tuple(families)
    model.default_shares = shares
    return model
