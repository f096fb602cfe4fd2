"""Optuna storage for a study: SQLite in the output directory unless a URL is given."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt.errors import ConfigError, OptpromptError
from optprompt.study import attrs

if TYPE_CHECKING:
    import optuna

__all__ = ["storage_url", "make_storage", "open_study", "check_spec_key"]

STUDY_DB = "study.db"


def storage_url(storage: str | None, output: Path) -> str:
    """The storage URL: the given one, or ``sqlite:///OUTPUT/study.db``."""
    if storage:
        return storage
    return f"sqlite:///{(output / STUDY_DB).resolve()}"


def make_storage(
    url: str, *, heartbeat_interval: int | None = None, grace_period: int | None = None
) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage at ``url``, with heartbeats when an interval is given."""
    import optuna

    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since v2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs={"pool_pre_ping": True},
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
            )
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
