"""Optuna storage for a study: SQLite in the output directory unless a URL is given."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt.errors import ConfigError, OptpromptError
from optprompt.trials import keys as attrs

if TYPE_CHECKING:
    import optuna

__all__ = ["storage_url", "make_storage", "schema_lock", "open_study", "check_spec_key", "missing_driver_error"]

STUDY_DB = "study.db"


def storage_url(storage: str | None, output: Path) -> str:
    """The storage URL: the given one, or ``sqlite:///OUTPUT/study.db``."""
    if storage:
        return storage
    return f"sqlite:///{(output / STUDY_DB).resolve()}"


# Storage steps that may simply run again on a new connection: reads, and writes that set a
# value (a repeat writes the same). Creating a trial and finishing one are not among them; the
# runner handles those with what it knows of the trial.
_REPEATABLE = (
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_all_studies",
    "get_trial",
    "get_all_trials",
    "get_n_trials",
    "get_best_trial",
    "get_trial_id_from_study_id_trial_number",
    "get_trial_number_from_id",
    "get_trial_params",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "set_study_user_attr",
    "set_study_system_attr",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "set_trial_intermediate_value",
    "record_heartbeat",
    # Optuna's cached storage (what a study really talks to) reaches these private ones.
    "_get_trials",
    "_get_best_trial_id",
    "_get_stale_trial_ids",
    # Adds a row: repeated after a commit whose acknowledgement was lost, it fails that one
    # trial with the database's duplicate-key error; far more often the commit never happened.
    "set_trial_param",
    "_set_trial_param",
)


@functools.cache
def _reconnecting_storage_class() -> type[optuna.storages.RDBStorage]:
    import optuna

    from optprompt.study.resilience import with_reconnect

    class ReconnectingRDBStorage(optuna.storages.RDBStorage):
        """Optuna's RDB storage that survives a lost database connection (server restart,
        ``pg_terminate_backend``, network): repeatable steps run again on a new connection,
        and a new trial beats at once, so a worker that loses it before holding it leaves a
        trial that goes stale instead of one that runs forever."""

        last_created_trial_id: int | None = None

        # Optuna's cached storage calls the private _create_new_trial; create_new_trial goes
        # through it too.
        def _create_new_trial(self, study_id: int, template_trial: Any = None) -> Any:
            frozen = super()._create_new_trial(study_id, template_trial)
            self.last_created_trial_id = frozen._trial_id
            if self.heartbeat_interval:
                self.record_heartbeat(frozen._trial_id)
            return frozen

        def _get_stale_trial_ids(self, study_id: int) -> list[int]:
            """Optuna's stale trials (no heartbeat for the grace period), and running trials
            that never beat, once this process has seen them so for the grace period.

            A trial beats as it is created; one that never did lost its creator between the
            two (killed, or a connection dropped as the creation was acknowledged). Optuna
            skips trials without a heartbeat, so such a trial stayed running for ever and the
            study waited on it. Timed by this process's clock: no clock is compared with the
            database's."""
            from optuna.storages._rdb import models
            from optuna.trial import TrialState

            stale = optuna.storages.RDBStorage._get_stale_trial_ids(self, study_id)
            grace = self.grace_period or 2 * (self.heartbeat_interval or 1)
            seen = self.__dict__.setdefault("_never_beat_since", {})
            session = self.scoped_session()
            try:
                running = (
                    session.query(models.TrialModel)
                    .filter(models.TrialModel.state == TrialState.RUNNING)
                    .filter(models.TrialModel.study_id == study_id)
                    .all()
                )
                silent = {t.trial_id for t in running if not t.heartbeats}
            finally:
                session.close()
            now = time.monotonic()
            for trial_id in list(seen):
                if trial_id not in silent:
                    del seen[trial_id]
            for trial_id in silent:
                if now - seen.setdefault(trial_id, now) > grace and trial_id not in stale:
                    stale.append(trial_id)
            return stale

    def repeatable(name: str) -> Any:
        step = ReconnectingRDBStorage.__dict__.get(name) or getattr(optuna.storages.RDBStorage, name)

        @functools.wraps(step)
        def again(self: Any, *args: Any, **kwargs: Any) -> Any:
            return with_reconnect(lambda: step(self, *args, **kwargs), what=name.strip("_"), where=self.url)

        return again

    for name in _REPEATABLE:
        if hasattr(optuna.storages.RDBStorage, name):  # older Optuna versions lack a few
            setattr(ReconnectingRDBStorage, name, repeatable(name))
    return ReconnectingRDBStorage


# The database driver behind each URL scheme SQLAlchemy knows a default for, and where to get it.
_DRIVERS = {
    "postgresql": ("psycopg (3)", "pip install 'optprompt[postgres]'"),
    "postgresql+psycopg": ("psycopg (3)", "pip install 'optprompt[postgres]'"),
    "postgresql+psycopg2": ("psycopg2", "pip install psycopg2-binary"),
    "mysql": ("mysqlclient", "pip install mysqlclient"),
    "mysql+pymysql": ("PyMySQL", "pip install pymysql"),
}


def missing_driver_error(url: str, error: BaseException) -> OptpromptError:
    """The error for a storage URL whose database driver is not installed: which one, and how to get it."""
    scheme = url.split("://", 1)[0]
    driver, install = _DRIVERS.get(scheme, (f"the driver of {scheme}://", "install it"))
    cause = error.__cause__ or error.__context__ or error
    return OptpromptError(
        f"cannot open study storage {url}: its database driver {driver} is not installed ({cause}); {install}"
        + ("; or name another driver in the URL, e.g. postgresql+psycopg2://" if scheme == "postgresql" else "")
    )


# Workers started at once on a new PostgreSQL database would each create Optuna's tables and
# enum types, and all but one would fail (IntegrityError on `CREATE TYPE studydirection`):
# they take turns under this advisory lock (per database), the first creates, the others find.
_SCHEMA_LOCK_KEY = int.from_bytes(hashlib.sha256(b"optprompt:optuna-schema").digest()[:8], "big", signed=True)
SCHEMA_LOCK_TIMEOUT_S = 120


@contextlib.contextmanager
def schema_lock(url: str, timeout_s: float = SCHEMA_LOCK_TIMEOUT_S) -> Iterator[None]:
    """Held while Optuna's schema is created or checked at ``url``: a PostgreSQL advisory
    lock shared by every process opening a storage on that database. Other databases pass
    through (a SQLite file is created by one process; MySQL is not locked)."""
    import sqlalchemy

    if sqlalchemy.make_url(url).get_backend_name() != "postgresql":
        yield
        return
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(f"SET lock_timeout = '{int(timeout_s * 1000)}ms'"))
            try:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": _SCHEMA_LOCK_KEY})
            except sqlalchemy.exc.OperationalError as e:
                if "lock timeout" not in str(e):
                    raise
                raise OptpromptError(
                    f"cannot open study storage {url}: waited {timeout_s:.0f} s for another process that is "
                    "creating the study tables in this database (it holds PostgreSQL advisory lock "
                    f"{_SCHEMA_LOCK_KEY}); is a worker stuck? see pg_locks"
                ) from None
            conn.commit()
            try:
                yield
            finally:
                try:
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": _SCHEMA_LOCK_KEY})
                    conn.commit()
                except sqlalchemy.exc.DBAPIError:  # the connection is gone, and its session's lock with it
                    pass
    finally:
        engine.dispose()


def make_storage(
    url: str, *, heartbeat_interval: int | None = None, grace_period: int | None = None
) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage at ``url`` (reconnecting after a lost connection), with
    heartbeats when an interval is given. On PostgreSQL the schema is created under
    :func:`schema_lock`, so workers started at once on a new database do not collide."""
    import optuna

    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since v2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            with schema_lock(url):
                return _reconnecting_storage_class()(
                    url,
                    engine_kwargs={"pool_pre_ping": True},
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                )
    except OptpromptError:
        raise
    except ImportError as e:  # Optuna: "Failed to import DB access module": the driver is missing
        raise missing_driver_error(url, e) from None
    except Exception as e:  # sqlalchemy errors on a corrupt or foreign file, bad URL...
        raise OptpromptError(f"cannot open study storage {url}: {type(e).__name__}: {e}") from None


def open_study(
    storage: str | optuna.storages.BaseStorage,
    name: str,
    *,
    sampler: Any = None,
    pruner: Any = None,
    create: bool = True,
    directions: list[str] | None = None,
) -> optuna.Study:
    """Create or load the Optuna study ``name``, with a clear error when the storage is unreadable."""
    import optuna

    url = storage if isinstance(storage, str) else getattr(storage, "url", "storage")
    try:
        if isinstance(storage, str):
            storage = make_storage(storage)
        if create:
            return optuna.create_study(
                study_name=name,
                storage=storage,
                sampler=sampler,
                pruner=pruner,
                directions=directions or ["maximize"],
                load_if_exists=True,
            )
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    except OptpromptError:
        raise
    except KeyError:
        raise OptpromptError(f"no study named {name!r} in storage {url}") from None
    except Exception as e:  # sqlalchemy errors on a corrupt or foreign file, bad URL...
        raise OptpromptError(f"cannot open study storage {url}: {type(e).__name__}: {e}") from None


def check_spec_key(study: optuna.Study, key: dict[str, Any], where: str) -> None:
    """Refuse to resume a study that was started with a different model, task or strategy."""
    stored = study.user_attrs.get(attrs.SPEC_KEY)
    if stored is None:
        study.set_user_attr(attrs.SPEC_KEY, key)
        return
    changed = sorted(k for k in set(stored) | set(key) if stored.get(k) != key.get(k))
    if changed:
        raise ConfigError(
            f"{where} already holds study {study.study_name!r} started with a different "
            f"{', '.join(changed)}; use a new output directory or study name to start afresh"
        )


def spec_key_part(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
