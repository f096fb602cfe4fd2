"""The strategy extension point: a small base class with a typed config."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from optprompt.errors import ConfigError
from optprompt.prompts.candidate import PromptCandidate
from optprompt.tasks.task import Task

if TYPE_CHECKING:
    import optuna

    from optprompt.config.spec import PruningSpec
    from optprompt.kinds.base import Candidate
    from optprompt.scoring.evaluate import Evaluation
    from optprompt.strategies.services import StrategyServices, TextGenerator

__all__ = [
    "BaseStrategy",
    "Fidelity",
    "StrategyConfig",
    "StrategyContext",
    "Budget",
    "BudgetSpec",
    "Family",
    "MINUTES_TRIAL_BOUND",
    "MAX_STARTUP_TRIALS",
    "startup_trials",
    "expected_trials",
]

#: ``trials`` when a budget in minutes is given and ``trials`` is not: an upper bound only.
MINUTES_TRIAL_BOUND = 1000
#: TPE's random start-up: a quarter of the trials the budget is expected to fit, at most this many.
MAX_STARTUP_TRIALS = 10


def startup_trials(expected: float) -> int:
    """Random start-up trials before TPE models the results: a quarter of ``expected``, 1 to 10."""
    return int(min(MAX_STARTUP_TRIALS, max(1, expected // 4)))


def expected_trials(study: optuna.Study, minutes: float) -> float | None:
    """How many trials a budget of ``minutes`` of trial time is expected to fit, from the mean
    time of the trials that counted so far (None before any finished). The durations are read
    from the storage, so a resumed or second worker's estimate agrees with the first run's."""
    from optprompt.trials import records

    seconds = [r.seconds for r in records(study) if r.is_finished and r.uses_budget and r.seconds]
    if not seconds:
        return None
    return minutes * 60 / (sum(seconds) / len(seconds))


def _minutes_tpe(minutes: float, seed: int | None) -> optuna.samplers.BaseSampler:
    """TPE whose start-up scales with a budget in minutes: before each trial it is set to a
    quarter of the trials the budget is expected to fit (:func:`expected_trials`), so a
    4-minute study that fits 16 trials explores randomly for 4 of them, not 10."""
    import optuna

    class MinutesTPESampler(optuna.samplers.TPESampler):
        def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            expected = expected_trials(study, minutes)
            # TPESampler reads its start-up count from this attribute at every sampling.
            self._n_startup_trials = MAX_STARTUP_TRIALS if expected is None else startup_trials(expected)
            super().before_trial(study, trial)

    return MinutesTPESampler(seed=seed, n_startup_trials=MAX_STARTUP_TRIALS)


class BudgetSpec(BaseModel):
    """What a study may spend: minutes of trial time, or scored trials.

    With ``minutes``, no trial starts once the finished trials' time reaches the budget, so
    the study ends at most one trial's time past it (per worker); ``trials`` then only
    bounds the count (it defaults to a large number)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    minutes: float | None = Field(None, gt=0, description="Minutes of trial time (scoring and training).")
    trials: int | None = Field(None, ge=1, description="Scored trials, the baseline included (as strategy.trials).")

    @model_validator(mode="after")
    def _one(self) -> BudgetSpec:
        if (self.minutes is None) == (self.trials is None):
            raise ValueError("give minutes or trials")
        return self


class StrategyConfig(BaseModel):
    """Options every strategy has. Subclass it to add a strategy's own (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trials: int = Field(40, ge=1, description="Trials to run, the baseline (trial 0) included.")
    budget: BudgetSpec | None = Field(
        None,
        description="The study's budget: {minutes: M} (trial time; trials then only bounds the count) or {trials: N}.",
    )

    @model_validator(mode="before")
    @classmethod
    def _budget_sets_trials(cls, data: Any) -> Any:
        """``budget: {trials: N}`` is ``trials: N``; with ``budget: {minutes: M}`` an unset
        ``trials`` becomes :data:`MINUTES_TRIAL_BOUND`."""
        budget = data.get("budget") if isinstance(data, dict) else None
        if not isinstance(budget, dict) or cls.model_fields["budget"].annotation != (BudgetSpec | None):
            return data  # absent, or a strategy with a budget of its own kind (auto)
        if budget.get("trials") is not None:
            if "trials" in data and data["trials"] != budget["trials"]:
                raise ValueError(f"trials: {data['trials']} and budget.trials: {budget['trials']} disagree; give one")
            return {**data, "trials": budget["trials"]}
        if budget.get("minutes") is not None and "trials" not in data:
            return {**data, "trials": MINUTES_TRIAL_BOUND}
        return data

    @property
    def minutes(self) -> float | None:
        """The budget in minutes of trial time, if the study has one."""
        return getattr(self.budget, "minutes", None)

    sampler: Literal["auto", "tpe", "random", "nsga2"] = Field(
        "auto", description="Optuna sampler; auto: TPE, or NSGA-II for multi-objective studies."
    )


@dataclass(frozen=True)
class StrategyContext:
    """What a strategy may see: the task (its train split for demonstrations), seed,
    baseline, and services (text generation for LLM rewriting; None outside a study)."""

    task: Task
    seed: int
    baseline: PromptCandidate
    services: StrategyServices | None = None
    objectives: tuple[str, ...] = ("score",)
    #: The registered strategies by name (a strategy composing others, like ``auto``, builds
    #: them from here); None outside a study.
    strategies: Callable[[str], type[BaseStrategy]] | None = None
    #: The names of the registered strategies (a strategy composing others finds those that
    #: declare a capability among them); empty outside a study.
    strategy_names: tuple[str, ...] = ()
    #: Whether candidates can be trained on the study's model: False for a served model
    #: without a local copy of its weights (families that train are then refused or skipped).
    can_train: bool = True
    #: Whether the task model embeds texts in-process: False for a served model (per-input
    #: demonstrations then compare words, or embed with a model the strategy names).
    can_embed: bool = True

    def strategy_class(self, name: str) -> type[BaseStrategy]:
        """The registered strategy ``name`` (for a strategy that composes others)."""
        if self.strategies is None:
            raise ConfigError(f"strategy {name!r} is needed here, but no strategy registry was passed down")
        return self.strategies(name)

    def strategy_classes(self) -> list[type[BaseStrategy]]:
        """Every registered strategy, by name (empty outside a study)."""
        if self.strategies is None:
            return []
        return [self.strategy_class(name) for name in self.strategy_names]

    def generator(self, ref: str | None = None) -> TextGenerator:
        """A text generator (the task model unless ``ref`` names another)."""
        if self.services is None:
            raise ConfigError("this strategy needs a model to generate text, but none is available here")
        return self.services.generator(ref)


@dataclass(frozen=True)
class Family:
    """Capability: the strategy can run as one *family* of a strategy that composes others
    (``auto``). Declared as ``family = Family(...)`` on the strategy class; every registered
    strategy that declares it is one of the composing strategy's families, under its own
    name, with its options as the value of that name's key.

    Attributes:
        cost: What one of its trials costs next to the other families' (a rank: 1 scores
            candidates, like template search; 2 also generates text, like evolution; 3
            trains, like soft prompts). Families run cheapest first, ties by name.
        share: Its weight in the budget's split by fixed shares, when a study gives none
            (the built-ins: 1, 1 and 2: a quarter, a quarter, a half).
    """

    cost: int = 1
    share: float = 1.0

    def __post_init__(self) -> None:
        if self.share < 0:
            raise ValueError(f"Family.share must not be negative, got {self.share}")


@dataclass(frozen=True)
class Fidelity:
    """A lower fidelity for trained candidates (:attr:`BaseStrategy.accepts_fidelity`).

    Attributes:
        train: The share of the train split a run learns from (0 < train <= 1).
        epochs: Epochs of a run (not raised to a minimum number of steps).
    """

    train: float = 0.5
    epochs: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.train <= 1:
            raise ValueError(f"Fidelity.train is a share of the train split in (0, 1], got {self.train}")
        if self.epochs < 1:
            raise ValueError(f"Fidelity.epochs must be at least 1, got {self.epochs}")


@dataclass(frozen=True)
class Budget:
    """What a strategy will spend, declared up front."""

    trials: int
    dev_scorings: int
    rewriter_calls: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"trials": self.trials, "dev_scorings": self.dev_scorings, "rewriter_calls": self.rewriter_calls}


class BaseStrategy(abc.ABC):
    """Proposes candidates, one per Optuna trial.

    Subclasses set ``name`` (the registry key), optionally ``config_class`` (a
    :class:`StrategyConfig` subclass), and implement :meth:`propose`. A strategy only
    proposes: the study scores what it proposes through the candidate's kind
    (:class:`~optprompt.kinds.CandidateKind`), which also trains it when it needs
    training; a strategy never touches the model.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[StrategyConfig]] = StrategyConfig
    #: Capability: its candidates are trained (costly trials, judged per epoch). A strategy
    #: composing others (``auto``) runs the ones that train after the ones that do not, and
    #: uses their pruner.
    trains: ClassVar[bool] = False
    #: Capability: it builds its candidates around a discrete prompt that another strategy
    #: found (:meth:`use_template`); ``auto`` hands it the best prompt so far.
    accepts_template: ClassVar[bool] = False
    #: Capability: its trials can run at a lower fidelity on request (:meth:`use_fidelity`: a
    #: part of train, fewer epochs), so a composing strategy (``auto``) can explore more of
    #: them in its first rung and train at full fidelity only what survives.
    accepts_fidelity: ClassVar[bool] = False
    #: Capability: its number of trials follows from its own options (evolution: population x
    #: generations), so a composing strategy does not hand its own trial count down.
    sets_own_trials: ClassVar[bool] = False
    #: Capability: it runs as one family of a composing strategy (``auto``); see :class:`Family`.
    family: ClassVar[Family | None] = None

    def __init__(self, config: StrategyConfig, context: StrategyContext) -> None:
        self.config = config
        self.context = context

    @classmethod
    def from_options(cls, options: dict[str, Any], context: StrategyContext) -> BaseStrategy:
        """Validate ``options`` (the YAML's strategy keys) and build the strategy."""
        from optprompt.config.loading import format_validation_error

        config_class = cls.config_class_for(context.strategy_classes())
        try:
            config = config_class.model_validate(options)
        except ValidationError as e:
            raise ConfigError(
                format_validation_error(e, source=f"strategy {cls.name!r}", prefix="strategy", model=config_class)
            ) from None
        return cls(config, context)

    @classmethod
    def config_class_for(cls, strategies: Sequence[type[BaseStrategy]]) -> type[StrategyConfig]:
        """The class the options are validated into where ``strategies`` are registered:
        ``config_class``, unless the strategy's keys depend on the others (``auto`` has one
        key per strategy that declares :class:`Family`)."""
        return cls.config_class

    def budget(self) -> Budget:
        """Trials and dev scorings this strategy will use (one scoring per trial by default)."""
        return Budget(trials=self.config.trials, dev_scorings=self.config.trials)

    def create_sampler(self) -> optuna.samplers.BaseSampler:
        """The Optuna sampler, seeded with the study's seed."""
        import optuna

        seed = self.context.seed
        sampler = self.config.sampler
        if sampler == "auto":
            sampler = "nsga2" if len(self.context.objectives) > 1 else "tpe"
        if sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if sampler == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(50, self.config.trials // 4)))
        if self.config.minutes is not None:
            return _minutes_tpe(self.config.minutes, seed)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials(self.config.trials))

    @abc.abstractmethod
    def propose(self, trial: optuna.Trial) -> Candidate:
        """Return the candidate for this trial, using ``trial.suggest_*`` for choices.

        Raise :class:`~optprompt.errors.CandidateRejected` for an invalid combination;
        the trial is then recorded as pruned with that reason.
        """

    def create_pruner(self, pruning: PruningSpec, n_dev: int) -> optuna.pruners.BasePruner:
        """The study's Optuna pruner (from its ``pruning`` settings by default)."""
        from optprompt.kinds.fidelity import make_pruner

        return make_pruner(pruning, n_dev)

    def finished(self, study: optuna.Study) -> bool:
        """Whether the strategy has spent its own budget (e.g. minutes) before ``trials``
        trials count; the study then ends. Decide from ``study`` (its trials' durations,
        attributes), so a resumed run agrees. Optional: never, by default."""
        return False

    def summary(self, study: optuna.Study) -> dict[str, Any]:
        """Strategy-specific figures for result.json (e.g. rejected rewrites). Optional."""
        return {}

    def observe(self, trial: optuna.Trial, candidate: Candidate, evaluation: Evaluation) -> None:  # noqa: B027
        """Called after a proposed candidate was scored. Optional."""

    def use_fidelity(self, fidelity: Fidelity | None) -> None:
        """Propose the next candidates at ``fidelity`` (None: the strategy's own settings);
        strategies with ``accepts_fidelity``."""
        raise ConfigError(f"strategy {self.name!r} has no lower fidelity to run its trials at")

    def use_template(self, template: PromptCandidate, **where: Any) -> None:
        """Build the next candidates around ``template`` (strategies with ``accepts_template``);
        ``where`` says where it was found (``trial=N, dev=value`` in this study)."""
        raise ConfigError(f"strategy {self.name!r} does not build its candidates around a given prompt")
