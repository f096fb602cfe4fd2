"""What keeps a study alive and honest across crashes and workers.

- :class:`Heartbeat`: a thread that records a heartbeat for the running trial in Optuna's
  RDB storage; trials of a killed process go stale and are failed by
  ``optuna.storages.fail_stale_trials`` (then re-run: they do not count).
- :class:`BudgetLock`: makes "is there budget left? then ask for a trial" atomic across
  workers (PostgreSQL advisory lock, or a file lock beside a SQLite file).
- :func:`reseed_sampler`: reseeds the sampler from (seed, position in the budget) before
  each trial, so a resumed study proposes what an uninterrupted one would have.
- :func:`trial_timeout`: fails a trial that runs past its time limit.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from optprompt.errors import TrialTimeout

if TYPE_CHECKING:
    import optuna

__all__ = ["Heartbeat", "BudgetLock", "reseed_sampler", "trial_timeout", "TrialTimeout"]

logger = logging.getLogger("optprompt")


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
    from optuna.samplers._lazy_random_state import LazyRandomState

    if depth > 3:
        return
    for value in vars(obj).values():
        if isinstance(value, LazyRandomState):
            yield value
        elif hasattr(value, "__dict__") and type(value).__module__.startswith("optuna.samplers"):
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
