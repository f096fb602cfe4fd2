"""How ``auto`` spends one budget across families, rebuilt from the study's trials.

Families go cheapest first (template search, evolution, soft prompts). Each has a share
of the budget; what a family leaves unspent (it ran out of new candidates, or finished
under its share) rolls over to the next. A family is out of new candidates when its last
three proposals were all rejected or repeats. Spending is measured from the storage (trial
durations, dev examples scored, training figures), so a resumed study schedules exactly
as an uninterrupted one would from the same history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optprompt.adapters import TRAINING_ATTR
from optprompt.study.attrs import CACHED_FROM, DEV_SCORED, FAIL_REASON, FAMILY

__all__ = ["cost", "spent", "stuck", "next_family", "TRAIN_COST"]

#: Dev-example equivalents of one train example in one epoch (forward and backward).
TRAIN_COST = 3


def _finished(t: Any) -> bool:
    return t.state.is_finished()


def cost(t: Any, unit: str) -> float:
    """What one finished trial spent, in ``unit`` (trials, minutes or dev_examples)."""
    if not _finished(t):
        return 0.0
    if unit == "minutes":
        if t.datetime_start is None or t.datetime_complete is None:
            return 0.0
        return (t.datetime_complete - t.datetime_start).total_seconds() / 60
    reason = str(t.user_attrs.get(FAIL_REASON, ""))
    repeat = CACHED_FROM in t.user_attrs
    if unit == "trials":
        return 0.0 if repeat or reason.startswith("rejected") or reason.startswith("interrupted") else 1.0
    training = t.user_attrs.get(TRAINING_ATTR) or {}
    trained = training.get("train_examples", 0) * training.get("epochs_run", 0) * TRAIN_COST
    return float(t.user_attrs.get(DEV_SCORED, 0) + trained)


def spent(trials: Sequence[Any], unit: str, family: str | None = None) -> float:
    """Spent by ``family`` (every family when None; the baseline is not counted)."""
    return sum(
        cost(t, unit)
        for t in trials
        if t.user_attrs.get(FAMILY) and (family is None or t.user_attrs.get(FAMILY) == family)
    )


def stuck(trials: Sequence[Any], family: str, window: int = 3) -> bool:
    """The family's last ``window`` finished proposals were all rejected or repeats."""
    mine = [t for t in trials if t.user_attrs.get(FAMILY) == family and _finished(t)][-window:]
    if len(mine) < window:
        return False
    return all(
        CACHED_FROM in t.user_attrs or str(t.user_attrs.get(FAIL_REASON, "")).startswith("rejected") for t in mine
    )


def next_family(
    trials: Sequence[Any], families: Sequence[str], shares: dict[str, float], total: float, unit: str
) -> str | None:
    """The family of the next trial, or None when the budget is spent or every family is stuck."""
    weights = {f: max(0.0, shares.get(f, 0.0)) for f in families}
    norm = sum(weights.values()) or float(len(families))
    allowed = used = 0.0
    for f in families:
        allowed += total * (weights[f] or (0.0 if sum(weights.values()) else 1.0)) / norm
        used += spent(trials, unit, f)
        if not stuck(trials, f) and used < allowed:
            return f
    if spent(trials, unit) >= total:
        return None
    # Every share is used but the budget is not (rounding, a last family stuck early):
    # the most expensive family that still has candidates takes the rest.
    return next((f for f in reversed(families) if not stuck(trials, f)), None)
