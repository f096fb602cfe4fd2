"""Promotion: the first full-fidelity runs of a family that trains retrain its best
low-fidelity configurations, as successive halving promotes them.

Halving's first rung explores a training family at low fidelity (a part of train, one
epoch). Its results rank the family's configurations (method, learning rate, rank...);
a later rung's full run that drew a fresh configuration from the sampler would throw
that ranking away (with a handful of trials, TPE is still sampling at random). So the
family's next full-fidelity trial *promotes* the best low-fidelity trial not promoted
yet: the family's strategy proposes as usual, and :class:`PromotingSampler` answers
each of its ``suggest_*`` calls with the value the low-fidelity trial drew. The values
are recorded as the trial's own parameters (the sampler learns from the full run), and
the trial carries :data:`PROMOTED` (the number and parameters of the trial it promotes). Once every
low-fidelity trial is promoted, full runs are sampled as before.

Only what the sampler draws per parameter is replayed (independent sampling: TPE, the
default, and random); a sampler that draws whole configurations at once (relative
sampling) answers before a trial is proposed, and its values stand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optprompt_plugins.auto.schedule import LOW_FIDELITY

from optprompt.trials import TrialRecord

__all__ = ["PROMOTED", "PromotingSampler", "promote", "to_promote"]

#: The trial attribute of a full run that retrains a low-fidelity trial's configuration:
#: ``{"trial": N, "params": {...}}`` (the low-fidelity trial's number and parameters).
PROMOTED = "auto.promoted"


def to_promote(trials: Sequence[TrialRecord], family: str) -> TrialRecord | None:
    """The best finished low-fidelity trial of ``family`` on dev that no trial promoted
    yet (ties: the earlier one), or None."""
    done = {(t.attr(PROMOTED) or {}).get("trial") for t in trials if t.family == family}
    low = [
        t
        for t in trials
        if t.family == family
        and t.attr(LOW_FIDELITY)
        and t.is_complete
        and t.values is not None
        and t.params
        and t.number not in done
    ]
    return max(low, key=lambda t: (t.values[0], -t.number), default=None)  # type: ignore[index]


def promote(trial: optuna.Trial, source: TrialRecord) -> None:
    """Mark ``trial`` as retraining ``source``'s configuration (read by :class:`PromotingSampler`)."""
    trial.set_user_attr(PROMOTED, {"trial": source.number, "params": dict(source.params)})


def _holds(distribution: optuna.distributions.BaseDistribution, value: Any) -> bool:
    """Whether ``distribution`` can still draw ``value`` (the search space may have changed
    since the promoted trial drew it: a resumed study with edited options)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        return value in distribution.choices
    if isinstance(distribution, (FloatDistribution, IntDistribution)):
        return isinstance(value, (int, float)) and distribution.low <= value <= distribution.high
    return False


class PromotingSampler(optuna.samplers.BaseSampler):
    """Wraps a study's sampler: in a trial marked :data:`PROMOTED`, a parameter the promoted
    trial drew gets that value again (when the distribution still holds it); everything
    else is the wrapped sampler's."""

    def __init__(self, inner: optuna.samplers.BaseSampler) -> None:
        self.inner = inner

    def infer_relative_search_space(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial
    ) -> dict[str, optuna.distributions.BaseDistribution]:
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        search_space: dict[str, optuna.distributions.BaseDistribution],
    ) -> dict[str, Any]:
        return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        param_name: str,
        param_distribution: optuna.distributions.BaseDistribution,
    ) -> Any:
        params = (TrialRecord.from_frozen(trial).attr(PROMOTED) or {}).get("params") or {}
        if param_name in params and _holds(param_distribution, params[param_name]):
            return params[param_name]
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.inner.before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        state: optuna.trial.TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()
