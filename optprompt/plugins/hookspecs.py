"""Hook specifications of the ``optprompt`` plugin project.

Each hook receives a ``register`` callback; a plugin calls it once per thing it adds.
Names must be unique across all plugins: a duplicate raises :class:`PluginError`.
"""

from __future__ import annotations

import pluggy

__all__ = ["hookspec", "hookimpl"]

hookspec = pluggy.HookspecMarker("optprompt")
hookimpl = pluggy.HookimplMarker("optprompt")


@hookspec
def register_strategies(register):  # type: ignore[no-untyped-def]
    """Register strategy classes: ``register(StrategyClass)`` (its ``name`` is the key)."""


@hookspec
def register_metrics(register):  # type: ignore[no-untyped-def]
    """Register metrics: ``register(name, fn, description=...)``; fn(gold, pred, labels)."""


@hookspec
def register_task_loaders(register):  # type: ignore[no-untyped-def]
    """Register data loaders: ``register(name, load, detect=..., description=...)``."""


@hookspec
def register_models(register):  # type: ignore[no-untyped-def]
    """Register model short names: ``register(name, resolve, description=...)``."""
