"""The ``auto`` strategy: every family of strategies (template search, evolution and soft
prompts / LoRA built in) in one study.

The families are the registered strategies that declare the
:class:`~optprompt.strategies.Family` capability, cheapest first; a third-party strategy
that declares it joins them. Every trial belongs to one family
(:attr:`optprompt.trials.TrialRecord.family`); the family's own strategy, taken from the
strategy registry, proposes it through a view of the trial that keeps the families'
parameters and histories apart (:mod:`.view`). :mod:`.schedule` spreads one compute budget
over the families by successive halving (or fixed shares), cheapest first. Families are
wired by the capabilities their strategies declare, never by name: a family that
``trains`` supplies the per-epoch pruner, and one that ``accepts_template`` trains around the
best prompt the families that do not train have found so far.
The study's end scores each family's best on test against the baseline
(``result.json["families"]``); the winner is exported in its own kind's format.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from optprompt_plugins.auto.config import AutoConfig, auto_config, families_of
from optprompt_plugins.auto.promotion import PROMOTED, PromotingSampler, promote, to_promote
from optprompt_plugins.auto.schedule import LOW_FIDELITY, halving, next_family, spent
from optprompt_plugins.auto.view import FamilyStudy, FamilyTrial

from optprompt.errors import CandidateRejected, ConfigError
from optprompt.prompts import PromptCandidate
from optprompt.strategies import BaseStrategy, Budget, Fidelity, StrategyConfig, StrategyContext
from optprompt.trials import TrialRecord, records, write

if TYPE_CHECKING:
    import optuna

    from optprompt.config import PruningSpec

__all__ = ["Auto"]


logger = logging.getLogger("optprompt")


class Auto(BaseStrategy):
    """Every family (template search, evolution, soft prompts / LoRA...) under one compute budget.

    Its options have one key per registered strategy that declares the ``family``
    capability (:class:`~optprompt.strategies.Family`): that strategy's options, or
    ``false`` to leave the family out.
    """

    name = "auto"
    config_class = AutoConfig
    config: AutoConfig

    @classmethod
    def config_class_for(cls, strategies: Sequence[type[BaseStrategy]]) -> type[StrategyConfig]:
        """:class:`AutoConfig` with a key per strategy of ``strategies`` that declares ``family``."""
        return auto_config(families_of(strategies))

    def __init__(self, config: AutoConfig, context: StrategyContext) -> None:
        super().__init__(config, context)
        self.families: dict[str, BaseStrategy] = {}
        skipped = []
        for family in config.enabled():
            cls = context.strategy_class(family)
            if cls.trains and not context.can_train:
                skipped.append(family)
                continue
            options = config.options(family)
            if not cls.sets_own_trials:
                options.setdefault("trials", config.trials)
            self.families[family] = cls.from_options(options, context)
        if skipped:
            message = (
                f"auto: {', '.join(skipped)} skipped: they train on the model's weights and the model is served "
                "without a local copy (model: {url: ..., weights: DIR})"
            )
            if not self.families:
                raise ConfigError(message + "; no family is left to search with")
            logger.warning("%s", message)

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

    def _training(self) -> list[str]:
        """The families whose candidates are trained (their strategies declare ``trains``)."""
        return [name for name, strategy in self.families.items() if strategy.trains]

    def finished(self, study: optuna.Study) -> bool:
        return self._next_family(records(study)) is None

    def _next_family(self, trials: list[TrialRecord]) -> str | None:
        families, total, unit = list(self.families), self._total(), self.config.budget.unit
        if self.config.schedule == "shares":
            return next_family(trials, families, self.config.shares, total, unit)
        return halving(trials, families, total, unit, self.config.eta, self._training()).next

    def create_sampler(self) -> optuna.samplers.BaseSampler:
        """The study's sampler, wrapped so a full run can retrain a low-fidelity trial's
        configuration (:mod:`.promotion`)."""
        return PromotingSampler(super().create_sampler())

    def create_pruner(self, pruning: PruningSpec, n_dev: int) -> optuna.pruners.BasePruner:
        """The per-epoch pruner of the first family that trains, when one is on, judging a
        run against runs of its own fidelity only; else the study's."""
        training = next((s for s in self.families.values() if s.trains), None)
        if training is not None:
            from optprompt_plugins.auto.pruning import SameFidelityPruner

            return SameFidelityPruner(training.create_pruner(pruning, n_dev))
        return super().create_pruner(pruning, n_dev)

    # --- proposing --------------------------------------------------------------------
    def propose(self, trial: optuna.Trial) -> Any:
        seen = records(trial.study)
        family = self._next_family(seen)
        if family is None:
            raise CandidateRejected("the compute budget is spent")
        write(trial, family=family)
        strategy = self.families[family]
        if strategy.accepts_fidelity:
            fidelity = self._fidelity(seen)
            strategy.use_fidelity(fidelity)
            if fidelity is not None:
                trial.set_user_attr(LOW_FIDELITY, True)
            else:  # a full run: first the family's best low-fidelity configurations, then fresh ones
                source = to_promote(seen, family)
                if source is not None:
                    promote(trial, source)
        if strategy.accepts_template and self.config.soft_from_best:
            best = self._best_discrete(trial.study)
            if best is not None:
                record, prompt = best
                strategy.use_template(prompt, trial=record.number, dev=record.value)
        return strategy.propose(FamilyTrial(trial, family))

    def _fidelity(self, trials: list[TrialRecord]) -> Fidelity | None:
        """The first rung of halving explores at low fidelity (``low_fidelity``); later rungs,
        and the ``shares`` schedule, train at full fidelity."""
        low = self.config.low_fidelity
        if not low or self.config.schedule != "halving":
            return None
        state = halving(
            trials, list(self.families), self._total(), self.config.budget.unit, self.config.eta, self._training()
        )
        return Fidelity(train=low.train, epochs=low.epochs) if state.rung == 0 and state.rungs > 1 else None

    def _best_discrete(self, study: Any) -> tuple[TrialRecord, PromptCandidate] | None:
        """The best prompt on dev so far among the baseline and the families that do not
        train, with its trial (its candidate as scored: its hash names it)."""
        discrete = {name for name, s in self.families.items() if not s.trains}
        best: TrialRecord | None = None
        for t in records(study):
            if not t.is_complete or not (t.family in discrete or t.is_baseline) or t.values is None:
                continue
            if best is None or (t.values[0], -t.number) > (best.values[0], -best.number):
                best = t
        if best is None or best.candidate is None:
            return None
        return best, PromptCandidate.from_dict(best.candidate)

    def observe(self, trial: optuna.Trial, candidate: Any, evaluation: Any) -> None:
        family = TrialRecord.from_frozen(trial).family
        if family in self.families:
            self.families[family].observe(FamilyTrial(trial, family), candidate, evaluation)

    # --- reporting --------------------------------------------------------------------
    def summary(self, study: optuna.Study) -> dict[str, Any]:
        trials = records(study)
        unit = self.config.budget.unit
        if self.config.schedule == "halving":
            schedule = halving(
                trials, list(self.families), self._total(), unit, self.config.eta, self._training()
            ).to_dict()
        else:
            schedule = {"kind": "shares", "shares": dict(self.config.shares)}
        promoted = {t.number: t.attr(PROMOTED)["trial"] for t in trials if t.attr(PROMOTED)}
        if promoted:
            schedule["promoted"] = promoted  # full-run trial -> the low-fidelity trial it retrained
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
