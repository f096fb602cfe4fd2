"""The scoring engines and the one rule that reads a setting of them: ``packed`` (rows packed
into one tree-masked sequence, the default where the attention takes 4-D masks) or
``padded`` (one padded row per request: the reference, and the fallback)."""

from __future__ import annotations

import os

from optprompt.errors import ConfigError

__all__ = ["ENGINES", "ENGINE_ENV", "engine_setting"]

#: What ``engine=`` and :data:`ENGINE_ENV` take.
ENGINES = ("auto", "packed", "padded")
#: The environment variable that sets the default engine.
ENGINE_ENV = "OPTPROMPT_SCORING_ENGINE"
#: Earlier names still read: the padded engine was called "legacy".
_EARLIER = {"legacy": "padded"}


def engine_setting(engine: str | None) -> str:
    """``engine``, else the environment's default, else ``auto``; one of :data:`ENGINES`.

    Raises:
        ConfigError: not an engine, naming the ones there are.
    """
    value = engine or os.environ.get(ENGINE_ENV) or "auto"
    value = _EARLIER.get(value, value)
    if value not in ENGINES:
        raise ConfigError(f"scoring engine {value!r} is not one of {', '.join(ENGINES)}")
    return value
