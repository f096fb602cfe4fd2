"""Why a trial failed or was pruned, worded once for ``show``, the HTML report and result.json.

The study loop stores the reason as ``"<kind>: <detail>"`` in the trial attribute
:data:`optprompt.study.attrs.FAIL_REASON`. A trial whose process was killed stores
nothing (Optuna's heartbeat check or a resume fails it later); it reads
:data:`WORKER_DIED` everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from optprompt.study import attrs

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

__all__ = ["FailureReason", "WORKER_DIED", "failure_reason"]

#: The kind of a trial whose process died (killed, crashed, machine lost) before it recorded anything.
WORKER_DIED = "worker died"
_WORKER_DIED_DETAIL = "its process stopped before recording a result; the trial is re-run and does not count"
#: Stored without a colon by the study loop (Ctrl-C).
_INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class FailureReason:
    """A failed or pruned trial's reason.

    Attributes:
        kind: Short and stable (the key of ``failure_reasons`` in result.json): ``pruned``,
            ``rejected``, ``interrupted``, ``worker died``, ``TrialTimeout``, or the
            exception's class name.
        text: The whole reason as the leaderboard and the report show it (it starts
            with ``kind``).
    """

    kind: str
    text: str


def failure_reason(t: FrozenTrial) -> FailureReason | None:
    """The reason of a failed or pruned trial; None for a complete, running or waiting one."""
    from optuna.trial import TrialState

    if t.state not in (TrialState.FAIL, TrialState.PRUNED):
        return None
    stored = t.user_attrs.get(attrs.FAIL_REASON)
    if stored is None:
        if t.state == TrialState.FAIL:
            return FailureReason(WORKER_DIED, f"{WORKER_DIED}: {_WORKER_DIED_DETAIL}")
        return FailureReason("pruned", "pruned")  # pruned by Optuna itself (no optprompt message)
    stored = str(stored).strip()
    if stored.startswith(_INTERRUPTED):
        return FailureReason(_INTERRUPTED, stored)
    kind, sep, _ = stored.partition(":")
    return FailureReason(kind.strip() if sep else stored, stored)
