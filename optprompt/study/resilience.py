"""What keeps a study alive and honest across crashes and workers.

- :class:`Heartbeat`: a thread that records a heartbeat for the running trial in Optuna's
  RDB storage; trials of a killed process go stale and are failed by
  ``optuna.storages.fail_stale_trials`` (then re-run: they do not count).
- :class:`BudgetLock`: makes "is there budget left? then ask for a trial" atomic across
  workers (PostgreSQL advisory lock, or a file lock beside a SQLite file).
- :func:`reseed_sampler`: reseeds the sampler from (seed, position in the budget) before
  each trial, so a resumed study proposes what an uninterrupted one would have.
- :func:`settle_orphaned_trials`: before a resumed run's first trial, fails the trials a
  killed process left running (the sampler sees running trials), for the same reason.
- :func:`trial_timeout`: fails a trial that runs past its time limit.
- :func:`with_reconnect`: repeats a storage step whose database connection was lost
  (server restart, ``pg_terminate_backend``, network); the pool then opens a new one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from optprompt.errors import OptpromptError, TrialTimeout

if TYPE_CHECKING:
    import optuna

__all__ = [
    "Heartbeat",
    "BudgetLock",
    "reseed_sampler",
    "settle_orphaned_trials",
    "trial_timeout",
    "TrialTimeout",
    "connection_lost",
    "with_reconnect",
]

logger = logging.getLogger("optprompt")
T = TypeVar("T")


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it, through Optuna's wrappers) is a lost or refused
    database connection, or a busy SQLite file: worth trying again on a fresh connection."""
    import sqlalchemy.exc

    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, sqlalchemy.exc.DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
            return True
        if type(e).__name__ in ("OperationalError", "InterfaceError") and "psycopg" in type(e).__module__:
            return True
        e = e.__cause__ or e.__context__
    return False


def with_reconnect(
    step: Callable[[], T],
    *,
    what: str,
    where: str,
    attempts: int = 6,
    delay: float = 0.25,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """``step()``, run again (up to ``attempts`` times, backing off from ``delay`` seconds)
    while it fails because the database connection was lost. ``on_retry`` undoes what a
    half-done step left behind. Other errors pass through; the last lost connection
    becomes an :class:`OptpromptError` naming the storage and the step."""
    attempt = 0
    while True:
        try:
            return step()
        except Exception as e:
            attempt += 1
            if not connection_lost(e):
                raise
            if attempt == attempts:
                raise OptpromptError(
                    f"lost the connection to study storage {where} while {what}, "
                    f"{attempts} times in a row: {type(e).__name__}: {str(e).splitlines()[0]}"
                ) from e
            logger.warning("study storage connection lost while %s; reconnecting (%s)", what, type(e).__name__)
            if on_retry is not None:
                on_retry(e)
            time.sleep(delay * 2 ** (attempt - 1))


class Heartbeat:
    """Context manager recording heartbeats for ``trial_id`` every ``interval`` seconds."""

    def __init__(self, storage: Any, trial_id: int, interval: float) -> None:
        self.storage = storage
        self.trial_id = trial_id
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception as e:  # the storage is busy or gone; the next beat retries
                logger.debug("heartbeat failed: %r", e)

    def __enter__(self) -> Heartbeat:
        if self.interval and hasattr(self.storage, "record_heartbeat"):
            self.storage.record_heartbeat(self.trial_id)
            self._thread = threading.Thread(target=self._beat, name="optprompt-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class BudgetLock:
    """An exclusive lock shared by every worker of one study."""

    def __init__(self, url: str, study_name: str) -> None:
        self.url = url
        key = hashlib.sha256(f"optprompt:{study_name}".encode()).digest()
        self._key = int.from_bytes(key[:8], "big", signed=True)
        self._engine = None
        self._file_lock = None
        if url.startswith("sqlite:///"):
            from filelock import FileLock

            self._file_lock = FileLock(url[len("sqlite:///") :] + ".lock")
        elif url.startswith("postgresql"):
            import sqlalchemy

            self._engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        if self._file_lock is not None:
            with self._file_lock:
                yield
            return
        if self._engine is not None:
            import sqlalchemy

            with self._engine.connect() as conn:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self._key})
                try:
                    yield
                finally:
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            return
        yield  # other storages: a single worker is assumed


def _lazy_states(obj: Any, depth: int = 0) -> Iterator[Any]:
    """The random states of sampler ``obj``: its own, and those of the samplers (and
    Optuna's sampler internals) it holds, such as a wrapped sampler's."""
    import optuna
    from optuna.samplers._lazy_random_state import LazyRandomState

    if depth > 3:
        return
    for value in vars(obj).values():
        if isinstance(value, LazyRandomState):
            yield value
        elif isinstance(value, optuna.samplers.BaseSampler) or (
            hasattr(value, "__dict__") and type(value).__module__.startswith("optuna.samplers")
        ):
            yield from _lazy_states(value, depth + 1)


def reseed_sampler(sampler: optuna.samplers.BaseSampler, seed: int, position: int) -> bool:
    """Reseed every random state of an Optuna sampler from ``(seed, position)``.

    Optuna has no public per-trial seeding; this reaches its random states (covered by
    tests). Returns False when the sampler has none it can reach.
    """
    try:
        states = list(_lazy_states(sampler))
    except Exception:  # a future Optuna moved things: stay correct, lose exact replay
        return False
    for i, state in enumerate(states):
        state.rng.seed((seed * 1_000_003 + position * 7919 + i) % (2**32))
    return bool(states)


def settle_orphaned_trials(
    study: optuna.Study,
    *,
    exclusive: bool,
    wait: float,
    interval: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Fail the trials a killed process left running, before a single run proposes its
    first candidate; returns how many. Failed without a reason, they are void: re-run.

    Why: Optuna's TPE sampler (``constant_liar``, on by default since Optuna 5) counts
    running trials as bad results. A killed run's trial stays running until its heartbeat
    goes stale (``workers.grace_period``); a resumed run that proposes in that window sees
    it and proposes another candidate than the uninterrupted run did at that position.

    ``exclusive``: the storage is this run's alone (the SQLite file in its output
    directory, which one process holds at a time): every running trial is orphaned and is
    failed at once. Otherwise running trials are failed as their heartbeats go stale,
    waiting up to ``wait`` seconds; those still beating after that belong to live workers
    (replay is then not exact, as with any concurrent worker).
    """
    import optuna
    from optuna.trial import TrialState

    def running() -> list[Any]:
        return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))

    orphans = running()
    if not orphans:
        return 0
    if exclusive:
        failed = sum(bool(study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)) for t in orphans)
    else:
        failed, deadline = 0, time.monotonic() + wait
        while True:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            left = {t.number for t in running()}
            failed = sum(t.number not in left for t in orphans)
            if not left or time.monotonic() >= deadline:
                break
            sleep(interval)
    if failed:
        logger.info("failed %d trial(s) left running by a process that died; they are re-run", failed)
    return failed


@contextlib.contextmanager
def trial_timeout(seconds: float | None) -> Iterator[None]:
    """Raise :class:`TrialTimeout` in the main thread after ``seconds`` (SIGALRM)."""
    usable = seconds and hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def _alarm(signum: int, frame: object) -> None:
        raise TrialTimeout(f"trial exceeded trial_timeout of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
