"""The pruner of trained runs inside ``auto``: each run judged against runs of its own fidelity."""

from __future__ import annotations

import optuna
from optprompt_plugins.auto.schedule import LOW_FIDELITY
from optprompt_plugins.auto.view import FidelityStudy

from optprompt.trials import TrialRecord

__all__ = ["SameFidelityPruner"]


class SameFidelityPruner(optuna.pruners.BasePruner):
    """A per-epoch pruner that compares a trained run with runs of its own fidelity only.

    A low-fidelity run (half of train, one epoch) and a full run report their dev score
    after epoch 1 under the same step, but the first saw a few optimisation steps and the
    second a full epoch: judged against the low-fidelity runs' epoch 1, a full run would be
    pruned on evidence that says nothing about it (measured on intent: two full LoRA runs
    pruned after epoch 1 of 12, where an unpruned one reaches 0.97 on test).
    """

    def __init__(self, inner: optuna.pruners.BasePruner) -> None:
        self.inner = inner

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        low = bool(TrialRecord.from_frozen(trial).attr(LOW_FIDELITY))
        return self.inner.prune(FidelityStudy(study, low, LOW_FIDELITY), trial)  # type: ignore[arg-type]
