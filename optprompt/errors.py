"""Exceptions raised by optprompt: user errors and the study's control-flow signals.

Every error a user can cause derives from :class:`OptpromptError`; its message names the
file, key, row or plugin at fault. The CLI prints these without a traceback.

Control-flow signals: :class:`CandidateRejected` (a proposal that cannot be scored),
:class:`TrialTimeout` (a trial ran past ``trial_timeout``) and Optuna's own
``TrialPruned`` (the pruner stopped a candidate; :func:`pruned` builds one that says how
much of dev was scored). ``TrialPruned`` is imported from Optuna on first use, so this
module stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "OptpromptWarning",
    "ExperimentalWarning",
    "OptpromptError",
    "ConfigError",
    "DataError",
    "BadRowError",
    "ModelError",
    "ServerError",
    "ServerUnavailable",
    "PluginError",
    "CandidateRejected",
    "RegistryError",
    "TrialTimeout",
    "TrialPruned",  # noqa: F822 (Optuna's, served by __getattr__)
    "pruned",
]


class OptpromptError(Exception):
    """Base class of errors caused by input the user can fix."""


class ConfigError(OptpromptError):
    """A study file or study spec is invalid (unknown or missing key, bad value)."""


class DataError(OptpromptError):
    """A data set cannot be loaded or does not fit the task (missing column, bad label)."""


class BadRowError(DataError):
    """One row of a data set cannot be an example; ``reason`` says why (one of
    :data:`optprompt.tasks.bad_rows.REASONS`). ``task.bad_rows: skip`` drops such rows."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ModelError(OptpromptError):
    """A model reference cannot be resolved or loaded."""


class ServerError(ModelError):
    """A model server refused a request that trying again cannot fix (a 4xx answer: a
    prompt longer than the served context, too many log-probabilities, an unknown model),
    or answered something optprompt cannot use; the message names the example."""


class ServerUnavailable(ModelError):
    """A model server stopped answering (refused or lost connections, timeouts, 5xx or 429
    after every retry). The trial is void and the study stops; running it again resumes."""


class PluginError(OptpromptError):
    """A plugin is invalid, duplicated or unknown."""


class CandidateRejected(OptpromptError):
    """A strategy proposed a candidate that cannot be scored (e.g. two labels share a word).

    The study records the trial as pruned with this message and goes on.
    """


class RegistryError(OptpromptError):
    """A prompt registry operation failed (bad reference, unknown name or version, lock)."""


class OptpromptWarning(UserWarning):
    """A notice from optprompt to the person running it. Library users filter it by category
    (``warnings.filterwarnings("ignore", category=OptpromptWarning)``); the CLI prints it as
    a one-line message, ``optprompt: WARNING: ...``, without a file name or source line."""


class ExperimentalWarning(OptpromptWarning):
    """A young strategy or kind: its options and stored attributes may still change."""


class TrialTimeout(Exception):
    """A trial ran past ``trial_timeout``."""


def pruned(message: str, *, scored: int) -> Exception:
    """Optuna's ``TrialPruned`` with ``message``, carrying ``scored``: the dev examples scored
    before the pruner stopped the candidate (the study records it)."""
    import optuna

    error = optuna.TrialPruned(message)
    error.scored = scored  # type: ignore[attr-defined]
    return error


def __getattr__(name: str) -> Any:
    if name == "TrialPruned":  # Optuna's own class, imported only when asked for
        import optuna

        return optuna.TrialPruned
    raise AttributeError(f"module 'optprompt.errors' has no attribute {name!r}")
