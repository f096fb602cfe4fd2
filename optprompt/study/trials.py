"""How trials count against a study's budget.

- complete: counts, unless it repeated an already scored candidate (no model time);
- pruned by the pruner: counts (part of dev was scored); rejected candidates do not
  (nothing was scored);
- failed with a reason (exception, timeout): counts;
- failed without a reason (its worker died; failed by the heartbeat check),
  interrupted by the user, abandoned while being reserved (the storage connection
  was lost before anything ran), or failed with a pruned or rejected reason (its
  worker died between storing the reason and the state): void: re-run on resume;
- running: reserved for the worker running it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optprompt.study import attrs

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

__all__ = ["is_void", "counts", "is_running"]

INTERRUPTED = "interrupted"
REJECTED = "rejected"
CONNECTION_LOST = "connection lost"
PRUNED = "pruned"
#: The role of a trial holding a candidate combined from the finalists at the end of a
#: study (a prompt ensemble): not part of the search's budget.
COMBINED = "combined"


def is_void(t: FrozenTrial) -> bool:
    """A trial that left nothing behind: its work is re-done."""
    from optuna.trial import TrialState

    if t.state != TrialState.FAIL:
        return False
    reason = t.user_attrs.get(attrs.FAIL_REASON)
    # A pruned or rejected reason on a failed trial: its process died while recording it
    # (the reason is stored first); re-run, as the uninterrupted study had it pruned.
    return reason is None or reason.startswith((INTERRUPTED, CONNECTION_LOST, REJECTED, PRUNED))


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
