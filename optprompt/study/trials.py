"""How trials count against a study's budget.

- complete: counts, unless it repeated an already scored candidate (no model time);
- pruned by the pruner: counts (part of dev was scored); rejected candidates do not
  (nothing was scored);
- failed with a reason (exception, timeout): counts;
- failed without a reason (its worker died; failed by the heartbeat check),
  interrupted by the user, or abandoned while being reserved (the storage connection
  was lost before anything ran): void: re-run on resume;
- running: reserved for the worker running it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from optprompt.study import attrs

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

__all__ = ["is_void", "counts", "is_running", "exhausted", "exhausted_note", "proposals", "PROPOSALS_PER_BUDGET"]

INTERRUPTED = "interrupted"
REJECTED = "rejected"
CONNECTION_LOST = "connection lost"
#: The role of a trial holding a candidate combined from the finalists at the end of a
#: study (a prompt ensemble): not part of the search's budget.
COMBINED = "combined"
#: A study whose strategy keeps proposing candidates already scored (a small search space,
#: exhausted) stops after this many proposals per unit of budget, with fewer trials counted.
PROPOSALS_PER_BUDGET = 3


def is_void(t: FrozenTrial) -> bool:
    """A trial that left nothing behind: its work is re-done."""
    from optuna.trial import TrialState

    if t.state != TrialState.FAIL:
        return False
    reason = t.user_attrs.get(attrs.FAIL_REASON)
    return reason is None or reason.startswith((INTERRUPTED, CONNECTION_LOST))


def counts(t: FrozenTrial) -> bool:
    """Does this finished trial use up one unit of the budget?"""
    from optuna.trial import TrialState

    if t.state == TrialState.COMPLETE:
        # A repeat costs no model time; a candidate combined from the finalists at the end
        # (a prompt ensemble) is not part of the search's budget.
        return attrs.CACHED_FROM not in t.user_attrs and t.user_attrs.get(attrs.ROLE) != COMBINED
    if t.state == TrialState.PRUNED:
        return not t.user_attrs.get(attrs.FAIL_REASON, "").startswith(REJECTED)
    if t.state == TrialState.FAIL:
        return not is_void(t)
    return False


def is_running(t: FrozenTrial) -> bool:
    from optuna.trial import TrialState

    return t.state == TrialState.RUNNING


def proposals(trials: Iterable[FrozenTrial]) -> int:
    """Proposals made so far: finished trials that were not voided (void ones are re-done)."""
    return sum(t.state.is_finished() and not is_void(t) for t in trials)


def exhausted(trials: Iterable[FrozenTrial], budget: int) -> bool:
    """Did the study run out of new candidates before ``budget`` trials counted?

    True once ``PROPOSALS_PER_BUDGET * budget`` proposals were made with fewer than
    ``budget`` of them counted: the strategy only repeats itself.
    """
    trials = list(trials)
    return sum(counts(t) for t in trials) < budget and proposals(trials) >= budget * PROPOSALS_PER_BUDGET


def exhausted_note(trials: Iterable[FrozenTrial], budget: int) -> str:
    """The line result.json and the summary give for an exhausted search space."""
    trials = list(trials)
    counted = sum(counts(t) for t in trials)
    return (
        f"search space exhausted: after {proposals(trials)} proposals the strategy had found only {counted} distinct "
        f"candidates of the {budget} budgeted (baseline included) and kept repeating scored ones, so the study "
        "ended early"
    )
