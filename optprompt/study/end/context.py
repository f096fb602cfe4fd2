"""What the end of a study works with: its inputs (:class:`StudyEnd`), the study's trials read
once as typed records (:class:`EndTrials`), and what the steps found so far (:class:`EndState`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from optprompt.study.progress import EndProgress
from optprompt.trials import TrialRecord, records

if TYPE_CHECKING:
    import optuna

    from optprompt.config.spec import StudySpec
    from optprompt.kinds.base import Candidate, CandidateKind, KindContext
    from optprompt.kinds.registry import CandidateKinds
    from optprompt.models.loading import LoadedModel
    from optprompt.study.end.step import EndStep
    from optprompt.study.teacher_labels import TeacherLabels
    from optprompt.tasks.task import Example, Task

__all__ = ["StudyEnd", "EndTrials", "EndState", "Pick", "entry_of"]

T = TypeVar("T")


@dataclass(frozen=True)
class StudyEnd:
    """What the end of a study is given (it never sees the runner).

    Attributes:
        spec: The study.
        task: Its task (splits, metric).
        model: The task model (its reference, fingerprint, device and dtype are recorded).
        baseline: The baseline candidate (trial 0).
        kinds: The registered candidate kinds.
        kind_context: What kinds score with (the winner's test split is scored through it).
        strategy_options: The strategy's options as the study file gave them.
        strategy_summary: The strategy's own figures (:meth:`BaseStrategy.summary`).
        budget: The strategy's declared budget.
        started: ``time.perf_counter()`` when the study started (for the wall time).
        teacher: A teacher model's labels of train (it is scored on test too).
        holdout: Dev examples the search never scored; the winner is picked there
            (``selection``). Empty: the winner is the best on dev.
        notes: Warnings the study's set-up has for result.json (e.g. dev too small to hold out).
        progress: Shows which step of the end is running (off by default).
    """

    spec: StudySpec
    task: Task
    model: LoadedModel
    baseline: Candidate
    kinds: CandidateKinds
    kind_context: KindContext
    strategy_options: dict[str, Any]
    strategy_summary: dict[str, Any]
    budget: dict[str, int]
    started: float
    teacher: TeacherLabels | None = None
    holdout: Sequence[Example] = ()
    notes: Sequence[str] = ()
    progress: EndProgress = field(default_factory=lambda: EndProgress(enabled=False))

    def kind_of(self, candidate: Candidate) -> CandidateKind:
        return self.kinds.of(candidate)

    def candidate(self, record: TrialRecord) -> Candidate:
        """The candidate a trial scored, read back by its kind."""
        return self.kinds.from_dict(record.candidate or {})


@dataclass(frozen=True)
class EndTrials:
    """The study's trials, read once as typed records when the end starts.

    Attributes:
        all: Every trial, in order.
        complete: The complete ones.
        baseline: Trial 0's record.
    """

    all: tuple[TrialRecord, ...]
    complete: tuple[TrialRecord, ...]
    baseline: TrialRecord

    @classmethod
    def read(cls, study: optuna.Study) -> EndTrials:
        from optprompt.errors import OptpromptError

        every = tuple(records(study))
        complete = tuple(r for r in every if r.is_complete)
        baseline = next((r for r in complete if r.is_baseline), None)
        if baseline is None:
            raise OptpromptError(f"study {study.study_name!r}: the baseline trial has not completed; run it again")
        return cls(every, complete, baseline)

    def best_on_dev(self, among: Sequence[TrialRecord] | None = None) -> TrialRecord:
        """The complete trial with the highest dev score (the earliest among equal ones)."""
        return max(among if among is not None else self.complete, key=lambda r: (r.value, -r.number))

    def artifact_of(self, record: TrialRecord) -> str | None:
        """The file a kind kept for ``record``'s candidate (a repeat's is its original's)."""
        if record.artifact:
            return record.artifact
        if record.cached_from is None:
            return None
        return next((r.artifact for r in self.all if r.number == record.cached_from), None)


@dataclass(frozen=True)
class Pick:
    """The winner and how it was picked.

    Attributes:
        winner: The winning trial's record (the baseline's when nothing beat it).
        candidate: Its candidate.
        notes: Warnings picking it left for result.json (do no harm kept the baseline...).
    """

    winner: TrialRecord
    candidate: Any
    notes: tuple[str, ...] = ()

    @property
    def offsets(self) -> list[float] | None:
        return self.winner.offsets


@dataclass
class EndState:
    """What the end's steps found so far: each step's part under its class (read them with
    :meth:`part`), and the warnings for result.json in the order they were raised.

    ``study`` is the Optuna study, for steps that record in it (candidates combined from
    the finalists) or read what Optuna computes (the Pareto front)."""

    trials: EndTrials
    study: optuna.Study
    parts: dict[type, Any] = field(default_factory=dict)
    ran: list[tuple[EndStep[Any], Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def part(self, step: type[EndStep[T]]) -> T:
        """The part ``step`` returned (a :class:`KeyError` names a step that has not run)."""
        try:
            return self.parts[step]  # type: ignore[no-any-return]
        except KeyError:
            raise KeyError(f"the end step {step.__name__} has not run before the step that needs it") from None


def entry_of(
    end: StudyEnd, trials: EndTrials, record: TrialRecord, candidate: Candidate, test: Any = None
) -> dict[str, Any]:
    """A trial as result.json shows it (a :class:`~optprompt.results.ResultEntry`'s fields):
    dev figures, calibration offsets found on dev (on test: the test's), its test score and
    the file its kind kept."""
    values = record.values or ()
    entry: dict[str, Any] = {
        "trial": record.number,
        "objectives": dict(zip(end.spec.objectives, values)),
        **end.kind_of(candidate).describe(candidate, end.kind_context),
        "dev": {
            "value": record.value,
            "metric": end.task.metric,
            "metrics": record.metrics,
            "n": len(end.task.dev),
        },
        "calibration": {"method": _calibration(candidate), "offsets": record.offsets},
    }
    if test is not None:
        artifact = trials.artifact_of(record)
        entry["test"] = test.to_dict()
        entry["calibration"]["offsets"] = test.offsets
        if artifact:
            entry["artifact"] = artifact
    return entry


def _calibration(candidate: Candidate) -> str:
    """The candidate's calibration method ("none" for kinds without one)."""
    return str(candidate.to_dict().get("calibration", "none"))
