"""Trials as optprompt reads them: one typed record per Optuna trial, and the budget rules.

Every reader of a stored trial (the study loop, selection, ``show``, the report, the
conformance suite, plugins) goes through :class:`TrialRecord`; nothing else reads
Optuna's ``user_attrs``.
"""

from optprompt.trials.record import (
    FailureKind,
    FailureReason,
    Role,
    TrialRecord,
    encode,
    failure_reason,
    is_running,
    is_void,
    records,
    uses_budget,
    write,
)

__all__ = [
    "FailureKind",
    "FailureReason",
    "Role",
    "TrialRecord",
    "uses_budget",
    "encode",
    "failure_reason",
    "is_running",
    "is_void",
    "records",
    "write",
]
