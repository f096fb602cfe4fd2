"""The ``auto`` strategy: template search, evolution and soft prompts / LoRA in one study.

Every trial belongs to one family (:data:`optprompt.study.attrs.FAMILY`); the family's own
strategy proposes it, through a view of the trial that keeps the families' parameters and
histories apart (:mod:`.view`). :mod:`.schedule` spreads one compute budget over the
families by successive halving (or fixed shares), cheapest first; soft prompts train around
the best discrete prompt found so far.
The study's end scores each family's best on test against the baseline
(``result.json["families"]``); the winner is exported in its own kind's format.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import TYPE_CHECKING, Any

from optprompt_plugins.auto.config import AutoConfig
from optprompt_plugins.auto.schedule import halving, next_family, spent
from optprompt_plugins.auto.view import FamilyStudy, FamilyTrial
from optprompt_plugins.evolution import Evolution
from optprompt_plugins.evolution.strategy import ExperimentalWarning
from optprompt_plugins.soft_prompt import SoftPrompt
from optprompt_plugins.template_search import TemplateSearch

from optprompt.errors import CandidateRejected
from optprompt.prompts import PromptCandidate
from optprompt.strategies import BaseStrategy, Budget, StrategyContext
from optprompt.study.attrs import CANDIDATE, FAMILY, ROLE

if TYPE_CHECKING:
    import optuna

    from optprompt.config import PruningSpec

__all__ = ["Auto"]

_STRATEGIES: dict[str, type[BaseStrategy]] = {
    "template_search": TemplateSearch,
    "evolution": Evolution,
    "soft_prompt": SoftPrompt,
}
_DISCRETE = ("template_search", "evolution")


class Auto(BaseStrategy):
    """Template search, evolution and soft prompts / LoRA under one compute budget (experimental)."""

    name = "auto"
    config_class = AutoConfig
    config: AutoConfig

    def __init__(self, config: AutoConfig, context: StrategyContext) -> None:
        super().__init__(config, context)
        warnings.warn(
            "strategy 'auto' is experimental: its options and stored attributes may change",
            ExperimentalWarning,
            stacklevel=2,
        )
        self.families: dict[str, BaseStrategy] = {}
        for family in config.enabled():
            options = config.options(family)
            if family != "evolution":  # evolution derives its trials from its population
                options.setdefault("trials", config.trials)
            self.families[family] = _STRATEGIES[family].from_options(options, context)

    # --- budget -----------------------------------------------------------------------
    def _total(self) -> float:
        b = self.config.budget
        return b.minutes if b.minutes is not None else b.dev_examples or float(self.config.trials - 1)

    def budget(self) -> Budget:
        """``trials`` is an upper bound; dev scorings and rewriter calls are the most the
        families could use within it."""
        per_trial = max(s.budget().dev_scorings / max(1, s.budget().trials) for s in self.families.values())
        rewrites = sum(s.budget().rewriter_calls for s in self.families.values())
        return Budget(
            trials=self.config.trials, dev_scorings=int(per_trial * self.config.trials) + 1, rewriter_calls=rewrites
        )

    def finished(self, study: optuna.Study) -> bool:
        return self._next_family(study.get_trials(deepcopy=False)) is None

    def _next_family(self, trials: list[Any]) -> str | None:
        families, total, unit = list(self.families), self._total(), self.config.budget.unit
        if self.config.schedule == "shares":
            return next_family(trials, families, self.config.shares, total, unit)
        return halving(trials, families, total, unit, self.config.eta).next

    def create_pruner(self, pruning: PruningSpec, n_dev: int) -> optuna.pruners.BasePruner:
        """The soft-prompt family's per-epoch pruner when it is on, else the study's."""
        if "soft_prompt" in self.families:
            return self.families["soft_prompt"].create_pruner(pruning, n_dev)
        return super().create_pruner(pruning, n_dev)

    # --- proposing --------------------------------------------------------------------
    def propose(self, trial: optuna.Trial) -> Any:
        family = self._next_family(trial.study.get_trials(deepcopy=False))
        if family is None:
            raise CandidateRejected("the compute budget is spent")
        trial.set_user_attr(FAMILY, family)
        strategy = self.families[family]
        if family == "soft_prompt" and self.config.soft_from_best:
            best = self._best_discrete(trial.study)
            if best is not None:
                strategy.template = PromptCandidate(**best.text_fields())  # type: ignore[attr-defined]
        return strategy.propose(FamilyTrial(trial, family))

    def _best_discrete(self, study: Any) -> PromptCandidate | None:
        """The best prompt on dev so far among the baseline and the discrete families."""
        best: tuple[float, int] | None = None
        found = None
        for t in study.get_trials(deepcopy=False):
            family = t.user_attrs.get(FAMILY)
            if t.state.name != "COMPLETE" or not (family in _DISCRETE or t.user_attrs.get(ROLE) == "baseline"):
                continue
            key = (t.values[0], -t.number)
            if best is None or key > best:
                best, found = key, t.user_attrs.get(CANDIDATE)
        if found is None:
            return None
        cand = PromptCandidate.from_dict(found)
        return dataclasses.replace(cand, calibration="none", metadata={})

    def observe(self, trial: optuna.Trial, candidate: Any, evaluation: Any) -> None:
        family = trial.user_attrs.get(FAMILY)
        if family in self.families:
            self.families[family].observe(FamilyTrial(trial, family), candidate, evaluation)

    # --- reporting --------------------------------------------------------------------
    def summary(self, study: optuna.Study) -> dict[str, Any]:
        trials = study.get_trials(deepcopy=False)
        unit = self.config.budget.unit
        if self.config.schedule == "halving":
            schedule = halving(trials, list(self.families), self._total(), unit, self.config.eta).to_dict()
        else:
            schedule = {"kind": "shares", "shares": dict(self.config.shares)}
        return {
            "budget": {"unit": unit, "total": self._total(), "spent": round(spent(trials, unit), 3)},
            "schedule": schedule,
            "families": {
                family: {
                    "spent": round(spent(trials, unit, family), 3),
                    "summary": strategy.summary(FamilyStudy(study, family)),  # type: ignore[arg-type]
                }
                for family, strategy in self.families.items()
            },
        }
