"""Tasks: loading data sets, mapping columns, splitting, validating labels; task types."""

from optprompt.tasks.build import build_task, resolve_data_path
from optprompt.tasks.sampling import balanced_sample
from optprompt.tasks.task import Example, Task
from optprompt.tasks.types import (
    BUILTIN_TASK_TYPES,
    GENERATION_SETTINGS_KEY,
    Classification,
    Extraction,
    Generation,
    LabelSet,
    MetricKind,
    MultipleChoice,
    ScoringPath,
    TaskType,
    builtin_task_types,
    cell_text,
    resolve_task_type,
)

__all__ = [
    "BUILTIN_TASK_TYPES",
    "GENERATION_SETTINGS_KEY",
    "Classification",
    "Example",
    "Extraction",
    "Generation",
    "LabelSet",
    "MetricKind",
    "MultipleChoice",
    "ScoringPath",
    "Task",
    "TaskType",
    "balanced_sample",
    "build_task",
    "builtin_task_types",
    "cell_text",
    "resolve_data_path",
    "resolve_task_type",
]
