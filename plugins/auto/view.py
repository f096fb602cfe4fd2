"""One family's view of a study: its trials only, its parameters under its own prefix; and
one fidelity's view, for the pruner of trained runs.

The families' strategies run unchanged inside ``auto``: each gets a trial whose
``suggest_*`` names are prefixed with the family (no clash between families' search
spaces) and whose ``study`` shows the baseline and that family's trials only (a strategy
rebuilding its state from the study sees its own history).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from optprompt.trials import TrialRecord

__all__ = ["FamilyTrial", "FamilyStudy", "FidelityStudy", "FilteredStudy"]


class FilteredStudy:
    """``study`` showing only the trials ``keep`` accepts (read through ``TrialRecord``);
    everything else is the study's own."""

    def __init__(self, study: Any, keep: Callable[[TrialRecord], bool]) -> None:
        self._study = study
        self._keep = keep

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[Any]:
        trials = self._study.get_trials(deepcopy=deepcopy, states=states)
        return [t for t in trials if self._keep(TrialRecord.from_frozen(t))]

    @property
    def trials(self) -> list[Any]:
        return self.get_trials()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)


class FamilyStudy(FilteredStudy):
    """``study`` seen by one family: the baseline and that family's trials."""

    def __init__(self, study: Any, family: str) -> None:
        super().__init__(study, lambda r: r.family == family or r.is_baseline)
        self.family = family


class FidelityStudy(FilteredStudy):
    """``study`` seen by a pruner judging a trained run: the runs of the same fidelity only
    (low-fidelity runs, marked with ``mark``, or the others)."""

    def __init__(self, study: Any, low: bool, mark: str) -> None:
        super().__init__(study, lambda r: bool(r.attr(mark)) == low)


class FamilyTrial:
    """``trial`` seen by one family."""

    def __init__(self, trial: Any, family: str) -> None:
        self._trial = trial
        self.family = family

    def _name(self, name: str) -> str:
        return f"{self.family}.{name}"

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._trial.suggest_categorical(self._name(name), choices)

    def suggest_int(self, name: str, *args: Any, **kwargs: Any) -> int:
        return self._trial.suggest_int(self._name(name), *args, **kwargs)

    def suggest_float(self, name: str, *args: Any, **kwargs: Any) -> float:
        return self._trial.suggest_float(self._name(name), *args, **kwargs)

    @property
    def study(self) -> FamilyStudy:
        return FamilyStudy(self._trial.study, self.family)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trial, name)
