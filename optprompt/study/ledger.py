"""The trial ledger: the study's storage seen by one process.

Opens (or resumes) the study, reserves trials atomically across workers, keeps
heartbeats, records how each trial ended, and repeats storage steps on a new connection
while the connection is lost. It knows nothing about models or candidates.
"""

from __future__ import annotations

import logging
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from optprompt.study.interrupts import deferred_interrupts
from optprompt.study.objectives import directions
from optprompt.study.resilience import BudgetLock, reseed_sampler, with_reconnect
from optprompt.study.storage import check_spec_key, make_storage, open_study
from optprompt.trials import FailureKind, TrialRecord, encode, records, write

if TYPE_CHECKING:
    import optuna

    from optprompt.config.spec import StudySpec
    from optprompt.strategies.base import BaseStrategy

__all__ = ["TrialLedger", "KnownScore", "Reservation", "BaselineState"]

logger = logging.getLogger("optprompt")
T = TypeVar("T")
#: Consecutive proposals that were all repeats or rejected: the search space is taken as exhausted.
EXHAUSTED_AFTER = 25


class Reservation(StrEnum):
    """What :meth:`TrialLedger.reserve` found."""

    RUN = "run"  # a trial was reserved: run it
    WAIT = "wait"  # other workers hold the last trials of the budget: wait for them
    DONE = "done"  # the budget is spent, the strategy is finished, or the study stops


class BaselineState(StrEnum):
    """Where the baseline trial stands."""

    DONE = "done"  # scored
    TAKEN = "taken"  # another worker runs it
    FREE = "free"  # nobody has it yet: the next trial is the baseline


@dataclass
class KnownScore:
    """A candidate already scored in this study: a repeat reuses it."""

    values: list[float]  # one per objective; values[0] is the task score
    metrics: dict[str, float]
    trial: int
    offsets: list[float] | None = None


class TrialLedger:
    """Reserve, beat for and close the trials of one study.

    Args:
        spec: The study (name, workers' heartbeat settings, objectives, seed).
        url: The storage URL.
        strategy: Decides when the study is finished and builds sampler and pruner.
        worker: One of several processes sharing the study (``optprompt worker``): its
            sampler draws are salted so workers do not propose the same candidates.
    """

    def __init__(self, spec: StudySpec, url: str, strategy: BaseStrategy, *, worker: bool = False) -> None:
        self.spec = spec
        self.url = url
        self.strategy = strategy
        self.sampler = strategy.create_sampler()
        self.storage: optuna.storages.RDBStorage | None = None
        self.study_id: int | None = None
        self.lock = BudgetLock(url, spec.name)
        self.reserved: optuna.Trial | None = None  # the trial this process holds, if any
        self.stop_reason: str | None = None  # why the study ended before its trial count, if it did
        # Concurrent workers must not replay each other's sampler draws.
        self.worker_salt = random.SystemRandom().randrange(1, 2**31) if worker else 0

    # --- opening -----------------------------------------------------------------------
    def open(self, n_dev: int, key: dict[str, str]) -> optuna.Study:
        """Open or create the study; a stored study made from another study file is refused."""

        def step() -> optuna.Study:
            workers = self.spec.workers
            self.storage = make_storage(
                self.url, heartbeat_interval=workers.heartbeat_interval, grace_period=workers.grace_period
            )
            study = open_study(
                self.storage,
                self.spec.name,
                sampler=self.sampler,
                pruner=self.strategy.create_pruner(self.spec.pruning, n_dev),
                directions=directions(self.spec.objectives),
            )
            self.study_id = self.storage.get_study_id_from_name(self.spec.name)
            check_spec_key(study, key, where=self.url)
            return study

        return self.reconnecting(step, "opening the study")

    def reconnecting(
        self, step: Callable[[], T], what: str, on_retry: Callable[[BaseException], None] | None = None
    ) -> T:
        """``step()``, repeated on a fresh connection while the storage's connection is lost."""
        return with_reconnect(step, what=what, where=self.url, on_retry=on_retry)

    def trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    # --- reading -----------------------------------------------------------------------
    @staticmethod
    def counted(study: optuna.Study) -> int:
        """Trials that used up budget so far."""
        return sum(r.uses_budget for r in records(study))

    @staticmethod
    def known_scores(study: optuna.Study) -> dict[str, KnownScore]:
        """Every candidate scored so far, by hash (the first trial that scored it)."""
        scored: dict[str, KnownScore] = {}
        for r in records(study):
            if r.is_complete and r.hash and r.hash not in scored and r.values is not None:
                scored[r.hash] = KnownScore(list(r.values), r.metrics, r.number, r.offsets)
        return scored

    @staticmethod
    def best_value(study: optuna.Study) -> float | None:
        values = [r.values[0] for r in records(study) if r.is_complete and r.values]
        return max(values) if values else None

    @staticmethod
    def baseline_state(study: optuna.Study) -> BaselineState:
        """Whether the baseline is scored, run by another worker, or free to run."""
        baseline = [r for r in records(study) if r.is_baseline]
        if any(r.is_complete for r in baseline):
            return BaselineState.DONE
        return BaselineState.TAKEN if any(r.is_running for r in baseline) else BaselineState.FREE

    # --- reserving ---------------------------------------------------------------------
    def reserve(self, study: optuna.Study, budget: int, max_total: int) -> tuple[optuna.Trial | None, Reservation]:
        """A trial to run, as ``(trial, Reservation.RUN)``; ``(None, Reservation.DONE)`` when the
        budget is spent or the strategy is finished; ``(None, Reservation.WAIT)`` while other
        workers hold the last trials.

        A lost connection mid-reservation may leave a trial asked for but not yet ours: it is
        failed (it has no heartbeat to go stale by) and the reservation is repeated.
        """
        return self.reconnecting(
            lambda: self._reserve(study, budget, max_total),
            "reserving a trial",
            on_retry=lambda e: self._abandon_reserved(study, e),
        )

    def _reserve(self, study: optuna.Study, budget: int, max_total: int) -> tuple[optuna.Trial | None, Reservation]:
        """Atomically (across workers): is budget left? then ask for a trial."""
        import optuna

        self.reserved = None
        with self.lock.hold():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            trials = records(study)
            counted = sum(r.uses_budget for r in trials)
            running = sum(r.is_running for r in trials)
            if counted >= budget or (counted and self.strategy.finished(study)):
                return None, Reservation.DONE
            stop = self._stop_reason(trials, counted, budget, max_total)
            if stop is not None:
                if self.stop_reason is None:
                    logger.warning("%s", stop)
                self.stop_reason = stop
                return None, Reservation.DONE
            if counted + running >= budget:
                return None, Reservation.WAIT
            # The position ignores running trials: after a crash, the dead worker's trial is
            # still "running" until its heartbeat expires, and the resumed run must propose
            # what an uninterrupted one would have. Workers add their own salt instead.
            position = sum(r.is_finished and not r.is_void for r in trials)
            reseed_sampler(self.sampler, self.spec.seed + self.worker_salt, position)
            # Ctrl-C / SIGTERM wait until the trial is ours; the caller then fails it cleanly.
            with deferred_interrupts(), warnings.catch_warnings():
                # Optuna warns that heartbeats are meant for Study.optimize; with ask/tell
                # the Heartbeat context manager records them.
                warnings.filterwarnings("ignore", message="Heartbeat of storage")
                trial = study.ask()
                self.reserved = trial
            # The storage beat for the new trial at once: a worker killed before its heartbeat
            # thread starts still leaves a trial that goes stale (one with no heartbeat never does).
            write(trial, position=position)
            return trial, Reservation.RUN

    def _stop_reason(self, trials: list[TrialRecord], counted: int, budget: int, max_total: int) -> str | None:
        """Why the study stops before ``budget`` trials count, or None: its minutes are spent,
        or the strategy only repeats scored candidates (or proposes rejected ones)."""
        minutes = getattr(self.strategy.config, "minutes", None)
        if minutes is not None and counted:
            spent = sum(r.seconds or 0.0 for r in trials if r.is_finished and not r.is_combined) / 60
            if spent >= minutes:
                return (
                    f"the budget of {minutes:g} minutes is spent ({spent:.1f} minutes of trial time, {counted} trials)"
                )
        finished = [r for r in trials if r.is_finished and not r.is_void and not r.is_combined]
        tail = finished[-EXHAUSTED_AFTER:]
        if counted and len(tail) == EXHAUSTED_AFTER and not any(r.uses_budget for r in tail):
            return (
                f"search space exhausted: the last {EXHAUSTED_AFTER} proposals were all repeats of scored candidates "
                f"or rejected ({counted} distinct candidates of the {budget} budgeted), so the study ended early"
            )
        if len(finished) >= max_total:
            return (
                f"search space exhausted: after {len(finished)} proposals the strategy had found only {counted} "
                f"distinct candidates of the {budget} budgeted and kept repeating scored ones, so the study ended early"
            )
        return None

    def _abandon_reserved(self, study: optuna.Study, error: BaseException) -> None:
        """Fail the trial a reservation cut short by a lost connection had created, if any."""
        lost = FailureKind.CONNECTION_LOST.value
        reason = f"{lost}: storage connection dropped while reserving it ({type(error).__name__})"
        if self.reserved is not None:
            self.close(study, self.reserved, reason)
        else:  # lost inside study.ask(), after the trial was created
            created = getattr(self.storage, "last_created_trial_id", None)
            if created is not None:  # every earlier trial of this process has ended: a no-op then
                self.close(study, created, reason)
        self.reserved = None

    def wait(self) -> None:
        """Other workers hold the last trials; they may fail."""
        time.sleep(min(2.0, self.spec.workers.heartbeat_interval))

    # --- closing -----------------------------------------------------------------------
    def tell(self, study: optuna.Study, trial: optuna.Trial, values: list[float]) -> None:
        """Record a complete trial."""
        self.reconnecting(
            lambda: study.tell(trial, values if len(values) > 1 else values[0]), "recording a finished trial"
        )

    def close(
        self,
        study: optuna.Study,
        trial: optuna.Trial | int,
        reason: str,
        state: optuna.trial.TrialState | None = None,
        **fields: Any,
    ) -> None:
        """Record ``trial`` (a trial or its storage id) as ``state`` (failed by default) with
        ``reason`` and record ``fields``, unless it already ended; a lost connection is
        retried, and a storage that stays gone is logged: the trial's heartbeat then stops
        and it goes stale."""
        from optuna.trial import TrialState

        trial_id = trial if isinstance(trial, int) else trial._trial_id

        def record() -> None:
            frozen = self.storage.get_trial(trial_id)
            if frozen.state != TrialState.RUNNING:
                return
            for key, value in encode(fail_reason=reason, **fields).items():
                self.storage.set_trial_user_attr(trial_id, key, value)
            study.tell(frozen.number, state=state or TrialState.FAIL)

        try:
            self.reconnecting(record, "recording a trial as ended")
        except Exception as e:
            logger.warning("could not record trial (id %d) as ended (%s): %s", trial_id, reason, e)

    def close_reserved(self, study: optuna.Study, reason: str) -> None:
        """Fail the trial this process holds, if any (an interrupt or an error landed)."""
        if self.reserved is not None:
            self.close(study, self.reserved, reason)

    @staticmethod
    def record(study: optuna.Study, number: int) -> TrialRecord:
        return TrialRecord.from_frozen(study.get_trials(deepcopy=False)[number])
