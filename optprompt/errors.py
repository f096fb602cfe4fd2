"""Exceptions raised by optprompt.

Every error a user can cause derives from :class:`OptpromptError`; its message names the
file, key, row or plugin at fault. The CLI prints these without a traceback.
"""

from __future__ import annotations

__all__ = [
    "OptpromptError",
    "ConfigError",
    "DataError",
    "ModelError",
    "PluginError",
    "CandidateRejected",
]


class OptpromptError(Exception):
    """Base class of errors caused by input the user can fix."""


class ConfigError(OptpromptError):
    """A study file or study spec is invalid (unknown or missing key, bad value)."""


class DataError(OptpromptError):
    """A data set cannot be loaded or does not fit the task (missing column, bad label)."""


class ModelError(OptpromptError):
    """A model reference cannot be resolved or loaded."""


class PluginError(OptpromptError):
    """A plugin is invalid, duplicated or unknown."""


class CandidateRejected(OptpromptError):
    """A strategy proposed a candidate that cannot be scored (e.g. two labels share a word).

    The study records the trial as pruned with this message and goes on.
    """
