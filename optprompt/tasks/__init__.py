"""Tasks: loading data sets, mapping columns, splitting, validating labels."""

from optprompt.tasks.build import build_task, resolve_data_path
from optprompt.tasks.task import Example, Task

__all__ = ["Example", "Task", "build_task", "resolve_data_path"]
