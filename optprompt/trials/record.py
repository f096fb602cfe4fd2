"""One typed record per stored trial, and the rules of how trials count against a budget.

- complete: counts, unless it repeated an already scored candidate (no model time) or holds
  a candidate combined from the finalists at the end (a prompt ensemble);
- pruned by the pruner: counts (part of dev was scored); rejected candidates do not
  (nothing was scored);
- failed with a reason (exception, timeout): counts;
- failed without a reason (its worker died; failed by the heartbeat check), interrupted by
  the user, abandoned while being reserved (the storage connection was lost before
  anything ran), or failed with a pruned or rejected reason (its worker died between
  storing the reason and the state): void, re-run on resume;
- running: reserved for the worker running it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any

from optprompt.trials import keys

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "Role",
    "FailureKind",
    "FailureReason",
    "TrialRecord",
    "records",
    "failure_reason",
    "is_void",
    "uses_budget",
    "is_running",
    "encode",
    "write",
]


class Role(StrEnum):
    """What a trial is for, beyond the search's own proposals."""

    BASELINE = "baseline"  # trial 0: the starting prompt
    COMBINED = "combined"  # a candidate combined from the finalists at the end (not budgeted)


class FailureKind(StrEnum):
    """Why a trial did not complete. Stored at the start of the reason text (``"kind: detail"``)."""

    INTERRUPTED = "interrupted"  # Ctrl-C / SIGTERM: void
    CONNECTION_LOST = "connection lost"  # the storage dropped while reserving it: void
    WORKER_DIED = "worker died"  # no reason stored: its process stopped; void
    SERVER_LOST = "server lost"  # the model server stopped answering: void, and the study stops
    REJECTED = "rejected"  # the candidate could not be scored (nothing ran): not budgeted
    PRUNED = "pruned"  # stopped early by the pruner: budgeted
    ERROR = "error"  # an exception (the reason's kind is its class name): budgeted

    @property
    def void(self) -> bool:
        """Whether a trial that failed this way left nothing behind and is re-run."""
        return self in (
            FailureKind.INTERRUPTED,
            FailureKind.CONNECTION_LOST,
            FailureKind.WORKER_DIED,
            FailureKind.SERVER_LOST,
        )


_WORKER_DIED_DETAIL = "its process stopped before recording a result; the trial is re-run and does not count"


@dataclass(frozen=True)
class FailureReason:
    """A failed or pruned trial's reason.

    Attributes:
        kind: The category of failure.
        label: Short and stable (the key of ``failure_reasons`` in result.json): ``pruned``,
            ``rejected``, ``interrupted``, ``worker died``, ``connection lost``, ``TrialTimeout``,
            or the exception's class name.
        text: The whole reason as the leaderboard and the report show it (it starts with ``label``).
    """

    kind: FailureKind
    label: str
    text: str


def _parse_reason(state_failed: bool, stored: Any) -> FailureReason:
    if stored is None:
        if state_failed:
            return FailureReason(
                FailureKind.WORKER_DIED, FailureKind.WORKER_DIED.value, f"worker died: {_WORKER_DIED_DETAIL}"
            )
        return FailureReason(FailureKind.PRUNED, "pruned", "pruned")  # pruned by Optuna itself
    text = str(stored).strip()
    for kind in (
        FailureKind.INTERRUPTED,
        FailureKind.CONNECTION_LOST,
        FailureKind.SERVER_LOST,
        FailureKind.REJECTED,
        FailureKind.PRUNED,
    ):
        if text.startswith(kind.value):
            return FailureReason(kind, kind.value, text)
    head, sep, _ = text.partition(":")
    return FailureReason(FailureKind.ERROR, head.strip() if sep else text, text)


@dataclass(frozen=True)
class TrialRecord:
    """A stored trial as optprompt reads it.

    Attributes:
        number: The trial's number in the study.
        state: Optuna's state.
        values: The objective values of a complete trial (``values[0]`` is the task score).
        role: Baseline, combined, or None for the search's own trials.
        candidate: The candidate as a dict (its kind reads it back).
        hash: The candidate's content hash.
        metrics: Every metric on dev.
        fail_reason: The stored reason of a failed or pruned trial, as written.
        cached_from: The trial whose score a repeat reused.
        offsets: Calibration offsets found on dev.
        format_failures: Generated answers the extraction could not parse.
        position: The trial's position in the budget when it was reserved.
        dev_scored: Dev examples scored for it (0 for a repeat).
        artifact: A file or directory kept for the candidate, relative to the output.
        family: The family of candidates it belongs to (strategies spanning several).
        trained_examples: Train examples times epochs run, for a candidate its kind trains.
        seconds: Wall time from start to end of a finished trial.
        params: The sampler's parameters.
        attrs: Every stored attribute, for a plugin's own (read with :meth:`attr`).
    """

    number: int
    state: TrialState
    values: tuple[float, ...] | None = None
    role: Role | None = None
    candidate: dict[str, Any] | None = None
    hash: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    fail_reason: str | None = None
    cached_from: int | None = None
    offsets: list[float] | None = None
    format_failures: int = 0
    position: int | None = None
    dev_scored: int = 0
    artifact: str | None = None
    family: str | None = None
    trained_examples: int = 0
    seconds: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    attrs: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_frozen(cls, t: FrozenTrial) -> TrialRecord:
        """Read Optuna's trial (a ``FrozenTrial``, or a live trial's ``user_attrs`` holder)."""
        ua: Mapping[str, Any] = t.user_attrs
        role = ua.get(keys.ROLE)
        values = getattr(t, "values", None)
        start, end = getattr(t, "datetime_start", None), getattr(t, "datetime_complete", None)
        return cls(
            number=t.number,
            state=getattr(t, "state", None) or _running(),
            values=tuple(values) if values is not None else None,
            role=Role(role) if role in (Role.BASELINE.value, Role.COMBINED.value) else None,
            candidate=ua.get(keys.CANDIDATE),
            hash=ua.get(keys.HASH),
            metrics=ua.get(keys.METRICS) or {},
            fail_reason=ua.get(keys.FAIL_REASON),
            cached_from=ua.get(keys.CACHED_FROM),
            offsets=ua.get(keys.OFFSETS),
            format_failures=ua.get(keys.FORMAT_FAILURES) or 0,
            position=ua.get(keys.POSITION),
            dev_scored=ua.get(keys.DEV_SCORED) or 0,
            artifact=ua.get(keys.ARTIFACT),
            family=ua.get(keys.FAMILY),
            trained_examples=ua.get(keys.TRAINED_EXAMPLES) or 0,
            seconds=(end - start).total_seconds() if start is not None and end is not None else None,
            params=getattr(t, "params", {}) or {},
            attrs=ua,
        )

    def attr(self, key: str, default: Any = None) -> Any:
        """A plugin's own attribute (stored under the plugin's prefix), or ``default``."""
        return self.attrs.get(key, default)

    # --- state ----------------------------------------------------------------------
    @property
    def value(self) -> float | None:
        """The task score of a complete trial."""
        return self.values[0] if self.values else None

    @property
    def is_complete(self) -> bool:
        return self.state.name == "COMPLETE"

    @property
    def is_running(self) -> bool:
        return self.state.name == "RUNNING"

    @property
    def is_finished(self) -> bool:
        return self.state.is_finished()

    @property
    def is_baseline(self) -> bool:
        return self.role is Role.BASELINE

    @property
    def is_combined(self) -> bool:
        return self.role is Role.COMBINED

    @property
    def is_repeat(self) -> bool:
        """A repeat of an already scored candidate: it reused that trial's score."""
        return self.cached_from is not None

    @property
    def failure(self) -> FailureReason | None:
        """Why a failed or pruned trial did not complete; None for complete, running or waiting ones."""
        if self.state.name not in ("FAIL", "PRUNED"):
            return None
        return _parse_reason(self.state.name == "FAIL", self.fail_reason)

    @property
    def is_rejected(self) -> bool:
        failure = self.failure
        return failure is not None and failure.kind is FailureKind.REJECTED

    # --- the budget rules -----------------------------------------------------------------
    @property
    def is_void(self) -> bool:
        """A failed trial that left nothing behind: its work is re-done."""
        if self.state.name != "FAIL":
            return False
        failure = self.failure
        # A pruned or rejected reason on a failed trial: its process died while recording
        # it (the reason is stored first); re-run, as the uninterrupted study had it pruned.
        return failure is not None and (failure.kind.void or failure.kind in (FailureKind.PRUNED, FailureKind.REJECTED))

    @property
    def uses_budget(self) -> bool:
        """Does this finished trial use up one unit of the budget?"""
        name = self.state.name
        if name == "COMPLETE":
            return not self.is_repeat and not self.is_combined
        if name == "PRUNED":
            return not self.is_rejected
        if name == "FAIL":
            return not self.is_void
        return False


def _running() -> TrialState:
    """The state of a live trial (an ``optuna.Trial`` being run has no ``state``)."""
    from optuna.trial import TrialState

    return TrialState.RUNNING


def records(trials: Iterable[FrozenTrial] | optuna.Study) -> list[TrialRecord]:
    """Every trial of a study (or a list of trials) as records, in order."""
    if hasattr(trials, "get_trials"):
        trials = trials.get_trials(deepcopy=False)  # type: ignore[union-attr]
    return [TrialRecord.from_frozen(t) for t in trials]  # type: ignore[union-attr]


def failure_reason(t: FrozenTrial) -> FailureReason | None:
    """The reason of a failed or pruned trial; None for a complete, running or waiting one."""
    return TrialRecord.from_frozen(t).failure


def is_void(t: FrozenTrial) -> bool:
    """See :attr:`TrialRecord.is_void`."""
    return TrialRecord.from_frozen(t).is_void


def uses_budget(t: FrozenTrial) -> bool:
    """See :attr:`TrialRecord.uses_budget`."""
    return TrialRecord.from_frozen(t).uses_budget


def is_running(t: FrozenTrial) -> bool:
    return t.state.name == "RUNNING"


_FIELDS = {
    "role": keys.ROLE,
    "candidate": keys.CANDIDATE,
    "hash": keys.HASH,
    "metrics": keys.METRICS,
    "fail_reason": keys.FAIL_REASON,
    "cached_from": keys.CACHED_FROM,
    "offsets": keys.OFFSETS,
    "format_failures": keys.FORMAT_FAILURES,
    "position": keys.POSITION,
    "dev_scored": keys.DEV_SCORED,
    "artifact": keys.ARTIFACT,
    "family": keys.FAMILY,
    "trained_examples": keys.TRAINED_EXAMPLES,
}


def encode(**fields: Any) -> dict[str, Any]:
    """The stored attributes of ``fields`` (names of :class:`TrialRecord`'s attributes)."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in _FIELDS:
            raise TypeError(f"{name!r} is not a stored field of a trial record (one of {sorted(_FIELDS)})")
        out[_FIELDS[name]] = value.value if isinstance(value, Enum) else value
    return out


def write(trial: optuna.Trial, **fields: Any) -> None:
    """Store ``fields`` on a live trial (see :func:`encode`)."""
    for key, value in encode(**fields).items():
        trial.set_user_attr(key, value)
