"""How ``auto`` spends one budget across families, rebuilt from the study's trials.

Two schedules, both replayed from the storage alone (trial durations, dev examples
scored, training figures), so a resumed study schedules exactly as an uninterrupted one
would from the same history:

- ``halving`` (the default): successive halving over families. The budget is cut into
  rungs; in each rung the surviving families share the rung's budget equally, cheapest
  first, and the rung ends when each of them has spent its share (or is stuck): a family
  whose trials run long does not eat the share of those after it. At the end of a rung only
  the best ``1/eta`` of them (by their best dev score so far) go on. With three families
  and ``eta: 2``: all three explore, the better two get twice as much each, then the best
  one gets the rest.
- ``shares``: a fixed cheapest-first order, each family its share of the budget; what a
  family leaves unspent rolls over to the next.

A family is out of new candidates (*stuck*) when its last three proposals were all
rejected or repeats; its budget then goes to the others.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from optprompt.trials import TrialRecord

__all__ = ["cost", "spent", "stuck", "next_family", "halving", "Halving", "LOW_FIDELITY", "TRAIN_COST"]

#: Dev-example equivalents of one train example in one epoch (forward and backward).
TRAIN_COST = 3


def cost(t: TrialRecord, unit: str) -> float:
    """What one finished trial spent, in ``unit`` (trials, minutes or dev_examples)."""
    if not t.is_finished:
        return 0.0
    if unit == "minutes":
        return (t.seconds or 0.0) / 60
    if unit == "trials":
        return 1.0 if t.uses_budget else 0.0
    return float(t.dev_scored + t.trained_examples * TRAIN_COST)


def spent(trials: Sequence[TrialRecord], unit: str, family: str | None = None) -> float:
    """Spent by ``family`` (every family when None; the baseline is not counted)."""
    return sum(cost(t, unit) for t in trials if t.family and (family is None or t.family == family))


def stuck(trials: Sequence[TrialRecord], family: str, window: int = 3) -> bool:
    """The family's last ``window`` finished proposals were all rejected or repeats."""
    mine = [t for t in trials if t.family == family and t.is_finished][-window:]
    if len(mine) < window:
        return False
    return all(t.is_repeat or t.is_rejected for t in mine)


def next_family(
    trials: Sequence[TrialRecord], families: Sequence[str], shares: dict[str, float], total: float, unit: str
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


@dataclass
class Halving:
    """Where successive halving stands: the rung, the families still in, and the family
    of the next trial (None when the budget is spent or every family is stuck)."""

    rung: int
    rungs: int
    survivors: list[str]
    eliminated: dict[str, int] = field(default_factory=dict)  # family -> rung it was dropped after
    next: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "halving",
            "rung": self.rung,
            "rungs": self.rungs,
            "survivors": list(self.survivors),
            "eliminated_after_rung": dict(self.eliminated),
        }


def _best(trials: Sequence[TrialRecord], family: str) -> float:
    values = [t.values[0] for t in trials if t.family == family and t.is_complete and t.values is not None]
    return max(values) if values else -math.inf


def _keep(history: Sequence[TrialRecord], survivors: list[str], families: Sequence[str], n: int) -> list[str]:
    """The best ``n`` survivors by best dev score in ``history``; ties go to the cheaper one."""
    ranked = sorted(survivors, key=lambda f: (-_best(history, f), families.index(f)))
    kept = set(ranked[:n])
    return [f for f in survivors if f in kept]


#: A family that trains is never dropped before this many of its trials finished: one
#: training run says little (a bad learning rate, an unlucky seed), two show a trend.
MIN_TRAINING_TRIALS = 2

#: The trial attribute ``auto`` sets on a trial it asked to train at low fidelity.
LOW_FIDELITY = "auto.low_fidelity"


def _protected(seen: Sequence[TrialRecord], family: str) -> bool:
    """A family that trains stays in while it has fewer than :data:`MIN_TRAINING_TRIALS`
    finished trials, or none at full fidelity: a low-fidelity run (a part of train, one
    epoch) ranks the family's own candidates, but its score is far below what the same
    candidate reaches trained in full (an adapter after 5 steps against one after 100), so
    it is no evidence against a family whose candidates are scored as they are."""
    mine = [t for t in seen if t.family == family and t.is_finished]
    return len(mine) < MIN_TRAINING_TRIALS or all(t.attr(LOW_FIDELITY) for t in mine)


def halving(
    trials: Sequence[TrialRecord],
    families: Sequence[str],
    total: float,
    unit: str,
    eta: int = 2,
    training: Sequence[str] = (),
) -> Halving:
    """Successive halving over ``families`` (cheapest first) with ``total`` budget in ``unit``.

    Each rung gets an equal part of what is left when it starts (a rung that ran over, a
    long training trial, leaves the later rungs less, but never skips one), shared equally
    by the families still in; it ends when every one of them has spent its share or is
    stuck, so a cheap family whose last trial ran long cannot end the rung before a dearer
    one (a family that trains, scheduled last) had its turn. A family in ``training`` (its
    candidates are trained) is not dropped before :data:`MIN_TRAINING_TRIALS` of its trials
    finished and one of them at full fidelity.
    """
    n = len(families)
    rungs = 1 + (math.ceil(math.log(n, eta) - 1e-9) if n > 1 else 0)
    mine = [t for t in trials if t.family in families]
    state = Halving(rung=0, rungs=rungs, survivors=list(families))
    cum = 0.0  # spent so far
    budget = total / rungs  # the current rung's
    in_rung: dict[str, float] = {}  # what each family spent in the current rung
    for i, t in enumerate(mine):
        c = cost(t, unit)
        cum += c
        in_rung[t.family] = in_rung.get(t.family, 0.0) + c
        share = budget / len(state.survivors)
        if state.rung < rungs - 1 and all(
            in_rung.get(f, 0.0) >= share or stuck(mine[: i + 1], f) for f in state.survivors
        ):
            # The rung is over: rank on everything finished so far.
            state.rung += 1
            keep = _keep(mine[: i + 1], state.survivors, families, max(1, math.ceil(n / eta**state.rung)))
            seen = mine[: i + 1]
            keep += [f for f in state.survivors if f in training and f not in keep and _protected(seen, f)]
            keep = [f for f in state.survivors if f in keep]
            for f in state.survivors:
                if f not in keep:
                    state.eliminated[f] = state.rung - 1
            state.survivors, in_rung = keep, {}
            budget = max(0.0, total - cum) / (rungs - state.rung)
    if cum >= total:
        return state
    share = budget / len(state.survivors) if state.rung < rungs - 1 else None
    open_ = [f for f in state.survivors if not stuck(trials, f)]
    for f in open_:
        if share is None or in_rung.get(f, 0.0) < share:
            state.next = f
            return state
    # Every survivor used its share of the rung (or is stuck): the one that spent least in
    # it goes on; when all are stuck, a dropped family that still has candidates does.
    if open_:
        state.next = min(open_, key=lambda f: (in_rung.get(f, 0.0), families.index(f)))
        return state
    dropped = sorted(state.eliminated, key=lambda f: (-state.eliminated[f], -_best(mine, f), families.index(f)))
    state.next = next((f for f in dropped if not stuck(trials, f)), None)  # the last dropped first
    return state
