"""Task types: the extension point for what kind of task a study optimises.

One module per built-in type (:mod:`.classification`, :mod:`.multiple_choice`,
:mod:`.generation`, :mod:`.extraction`, :mod:`.multi_label`), each a :class:`TaskType` subclass registered
through the ``register_task_types`` hook below, exactly as a plugin registers its own::

    from optprompt.plugins import hookimpl
    from optprompt.tasks import Classification

    class YesNo(Classification):  # labels yes and no, whatever the data writes
        name = "yes_no"
        def example(self, row, spec, *, ex_id, text, where): ...

    @hookimpl
    def register_task_types(register):
        register(YesNo)

Nothing outside this package names a task type: the rest of optprompt asks a task's
:class:`TaskType` (``task.task_type``) for its defaults and capabilities.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optprompt.plugins.hookspecs import hookimpl
from optprompt.tasks.types.base import (
    GENERATION_SETTINGS_KEY,
    LabelSet,
    MetricKind,
    ScoringPath,
    TaskType,
    cell_text,
)
from optprompt.tasks.types.classification import Classification
from optprompt.tasks.types.extraction import Extraction
from optprompt.tasks.types.generation import Generation
from optprompt.tasks.types.multi_label import LIST_SEPARATOR, MultiLabel, join_labels, parse_label_list
from optprompt.tasks.types.multiple_choice import MultipleChoice

if TYPE_CHECKING:
    from optprompt.plugins.manager import Registry

__all__ = [
    "BUILTIN_TASK_TYPES",
    "GENERATION_SETTINGS_KEY",
    "LIST_SEPARATOR",
    "Classification",
    "Extraction",
    "Generation",
    "LabelSet",
    "MetricKind",
    "MultiLabel",
    "MultipleChoice",
    "ScoringPath",
    "TaskType",
    "builtin_task_types",
    "cell_text",
    "join_labels",
    "parse_label_list",
    "resolve_task_type",
]

#: The task types optprompt registers itself, in the order ``optprompt plugins`` lists them.
BUILTIN_TASK_TYPES: tuple[type[TaskType], ...] = (Classification, MultipleChoice, Generation, Extraction, MultiLabel)
_BUILTIN = {cls.name: cls() for cls in BUILTIN_TASK_TYPES}


def builtin_task_types() -> tuple[TaskType, ...]:
    """One instance of each built-in task type."""
    return tuple(_BUILTIN.values())


def resolve_task_type(name: str, registry: Registry | None = None) -> TaskType:
    """The task type called ``name``: from ``registry`` (a :class:`Plugins` ``task_types``)
    when given; else a built-in one, else one the installed plugins register.

    Raises:
        PluginError: no such task type (the message lists the known ones).
    """
    if registry is not None:
        return registry.get(name).obj  # type: ignore[no-any-return]
    if name in _BUILTIN:
        return _BUILTIN[name]
    from optprompt.plugins.manager import load_task_types

    return load_task_types().get(name).obj  # type: ignore[no-any-return]


@hookimpl
def register_task_types(register):  # type: ignore[no-untyped-def]
    for cls in BUILTIN_TASK_TYPES:
        register(cls)
