"""Optuna storage for a study: SQLite in the output directory unless a URL is given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt.errors import ConfigError, OptpromptError
from optprompt.study import attrs

if TYPE_CHECKING:
    import optuna

__all__ = ["storage_url", "open_study", "check_spec_key", "finished_trials"]

STUDY_DB = "study.db"


def storage_url(storage: str | None, output: Path) -> str:
    """The storage URL: the given one, or ``sqlite:///OUTPUT/study.db``."""
    if storage:
        return storage
    return f"sqlite:///{(output / STUDY_DB).resolve()}"


def open_study(url: str, name: str, *, sampler: Any = None, create: bool = True) -> optuna.Study:
    """Create or load the Optuna study ``name`` at ``url``, with a clear error when unreadable."""
    import optuna

    try:
        storage = optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        if create:
            return optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                       direction="maximize", load_if_exists=True)
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler)
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


def finished_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials that count against the budget: complete, pruned, or failed."""
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))


def spec_key_part(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
