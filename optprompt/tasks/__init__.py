"""Tasks: loading data sets, mapping columns, splitting, validating labels."""

from optprompt.tasks.build import build_task, resolve_data_path
from optprompt.tasks.sampling import balanced_sample
from optprompt.tasks.task import DEFAULT_INSTRUCTIONS, Example, Task

__all__ = ["DEFAULT_INSTRUCTIONS", "Example", "Task", "balanced_sample", "build_task", "resolve_data_path"]
