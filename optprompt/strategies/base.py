"""The strategy extension point: a small base class with a typed config."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from optprompt.errors import ConfigError
from optprompt.prompts.candidate import PromptCandidate
from optprompt.tasks.task import Task

if TYPE_CHECKING:
    import optuna

    from optprompt.config.spec import PruningSpec
    from optprompt.models.loading import LoadedModel
    from optprompt.prompts.render import PromptRenderer
    from optprompt.scoring.evaluate import Evaluation, Evaluator
    from optprompt.strategies.services import StrategyServices, TextGenerator
    from optprompt.tasks.task import Example

__all__ = ["BaseStrategy", "StrategyConfig", "StrategyContext", "Budget", "TrialSession"]


class StrategyConfig(BaseModel):
    """Options every strategy has. Subclass it to add a strategy's own (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trials: int = Field(40, ge=1, description="Trials to run, the baseline (trial 0) included.")
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

    def generator(self, ref: str | None = None) -> TextGenerator:
        """A text generator (the task model unless ``ref`` names another)."""
        if self.services is None:
            raise ConfigError("this strategy needs a model to generate text, but none is available here")
        return self.services.generator(ref)


@dataclass(frozen=True)
class Budget:
    """What a strategy will spend, declared up front."""

    trials: int
    dev_scorings: int
    rewriter_calls: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"trials": self.trials, "dev_scorings": self.dev_scorings, "rewriter_calls": self.rewriter_calls}


@dataclass
class TrialSession:
    """What the study lends a strategy that scores its own candidates (:meth:`BaseStrategy.score`).

    Attributes:
        model: The task model (strategies that train adapters wrap it; they must leave
            its weights as they found them).
        renderer: Renders candidates and examples into the text that is scored.
        evaluator: The study's scorer (the plain model, behind the score cache).
        dev: The dev examples, in the study's seeded order (every candidate sees this order).
        pruning: The study's ``pruning`` settings.
        artifacts: A directory inside the study's output for files a strategy keeps
            (e.g. trained adapters); results refer to them relative to the output.
        output: The study's output directory.
        chat: Whether prompts are rendered through the model's chat template.
        study_name / seed: The study's name and seed.
        note: Shows a line of progress under the study's progress bar.
    """

    model: LoadedModel
    renderer: PromptRenderer
    evaluator: Evaluator
    dev: Sequence[Example]
    pruning: PruningSpec
    artifacts: Path
    output: Path
    chat: bool
    study_name: str
    seed: int
    note: Callable[[str], None] = lambda text: None

    def score(self, candidate: PromptCandidate, trial: optuna.Trial, *, prunable: bool = True) -> Evaluation:
        """Score ``candidate`` on dev the standard way (multi-fidelity pruning included)."""
        from optprompt.study.fidelity import score_with_pruning

        return score_with_pruning(self.evaluator, candidate, self.dev, trial, self.pruning, prunable=prunable)


class BaseStrategy(abc.ABC):
    """Proposes candidates, one per Optuna trial.

    Subclasses set ``name`` (the registry key), optionally ``config_class`` (a
    :class:`StrategyConfig` subclass), and implement :meth:`propose`. The study scores
    what they propose; a strategy never touches the model.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[StrategyConfig]] = StrategyConfig

    def __init__(self, config: StrategyConfig, context: StrategyContext) -> None:
        self.config = config
        self.context = context

    @classmethod
    def from_options(cls, options: dict[str, Any], context: StrategyContext) -> BaseStrategy:
        """Validate ``options`` (the YAML's strategy keys) and build the strategy."""
        from optprompt.config.loading import format_validation_error

        try:
            config = cls.config_class.model_validate(options)
        except ValidationError as e:
            raise ConfigError(
                format_validation_error(e, source=f"strategy {cls.name!r}", prefix="strategy", model=cls.config_class)
            ) from None
        return cls(config, context)

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
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(1, self.config.trials // 4)))

    @abc.abstractmethod
    def propose(self, trial: optuna.Trial) -> PromptCandidate:
        """Return the candidate for this trial, using ``trial.suggest_*`` for choices.

        Raise :class:`~optprompt.errors.CandidateRejected` for an invalid combination;
        the trial is then recorded as pruned with that reason.
        """

    def score(self, trial: optuna.Trial, candidate: PromptCandidate, session: TrialSession) -> Evaluation:
        """Score the candidate this strategy proposed, on ``session.dev``.

        The default scores it with the study's scorer. Strategies whose candidates need
        work first (training an adapter) override it, report intermediate values with
        ``trial.report`` and raise :class:`~optprompt.study.fidelity.Pruned` when
        ``trial.should_prune()``. Set ``evaluation.extra["dev_scored"]`` to the number
        of dev examples scored in all, and ``evaluation.extra["artifact"]`` to a file or
        directory kept for the candidate (relative to ``session.output``).
        """
        return session.score(candidate, trial)

    @contextlib.contextmanager
    def scorer(self, candidate: PromptCandidate, session: TrialSession) -> Iterator[Evaluator]:
        """An evaluator that scores ``candidate`` as :meth:`score` did (the study uses it
        for the winner's test split). The default is the study's scorer."""
        yield session.evaluator

    def create_pruner(self, pruning: PruningSpec, n_dev: int) -> optuna.pruners.BasePruner:
        """The study's Optuna pruner (from its ``pruning`` settings by default)."""
        from optprompt.study.fidelity import make_pruner

        return make_pruner(pruning, n_dev)

    def summary(self, study: optuna.Study) -> dict[str, Any]:
        """Strategy-specific figures for result.json (e.g. rejected rewrites). Optional."""
        return {}

    def observe(self, trial: optuna.Trial, candidate: PromptCandidate, evaluation: Evaluation) -> None:  # noqa: B027
        """Called after a proposed candidate was scored. Optional."""
