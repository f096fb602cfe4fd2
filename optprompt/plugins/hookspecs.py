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
    """Register metrics: ``register(name, fn, description=..., kind=...)``.

    ``kind`` (:class:`optprompt.tasks.MetricKind`) says what ``fn`` reads and so which task
    types it measures: ``MetricKind.CHOICES`` (classification, the default):
    ``fn(gold_indices, pred_indices, n_classes) -> float`` over a split;
    ``MetricKind.TEXT`` (generation): ``fn(prediction, reference) -> float`` per example,
    averaged over the split; ``MetricKind.ENTITIES`` (extraction): ``fn(counts) -> value``
    of per-type ``[tp, fp, fn]`` entity counts summed over the split (vectorised over
    leading axes); ``MetricKind.LABEL_LISTS`` (multi-label): ``fn(prediction, reference)``
    per example on written label lists, averaged over the split.
    """


@hookspec
def register_task_loaders(register):  # type: ignore[no-untyped-def]
    """Register data loaders: ``register(name, load, detect=..., description=...)``."""


@hookspec
def register_models(register):  # type: ignore[no-untyped-def]
    """Register model short names: ``register(name, resolve, description=...)``."""


@hookspec
def register_backends(register):  # type: ignore[no-untyped-def]
    """Register model backends: ``register(name, BackendClass, detect=fn(config) | None, description=...)``."""


@hookspec
def register_candidate_kinds(register):  # type: ignore[no-untyped-def]
    """Register kinds of candidates: ``register(KindClass)``, a :class:`~optprompt.kinds.CandidateKind`
    subclass (its ``name`` is the key and the ``kind`` value of its candidates' dicts)."""


@hookspec
def register_task_types(register):  # type: ignore[no-untyped-def]
    """Register task types: ``register(TaskTypeClass)``, a :class:`~optprompt.tasks.TaskType`
    subclass (its ``name`` is the key and the ``task.type`` value of a study file)."""
