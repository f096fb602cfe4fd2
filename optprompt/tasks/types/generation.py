"""Generation: the model writes a free-text answer, compared with a reference."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from optprompt.tasks.example import Example
from optprompt.tasks.types.base import ScoringPath, TaskType, cell_text

if TYPE_CHECKING:
    from optprompt.config.spec import TaskSpec
    from optprompt.tasks.task import Task

__all__ = ["Generation"]


class Generation(TaskType):
    """A free-text answer per input (the first of several references is the one scored)."""

    name = "generation"
    scoring = ScoringPath.GENERATE
    default_instruction = "Answer the question."
    default_template = "Question: {input}\nAnswer:"
    default_metric = "exact_match"
    instruction_variants = (
        "Answer the question.",
        "Give a short answer.",
        "{base} Reply with the answer only.",
    )
    template_variants = (
        "Question: {input}\nAnswer:",
        "Input: {input}\nOutput:",
        "Q: {input}\nA:",
    )
    instruction_phrases = (
        "Read the question carefully.",
        "Give only the answer.",
        "Answer briefly.",
        "Be accurate.",
    )

    def example(self, row: Mapping[str, Any], spec: TaskSpec, *, ex_id: str, text: str, where: str) -> Example:
        label = row.get(spec.label)
        if isinstance(label, (list, tuple)) and label:
            label = label[0]  # several references: the first is the one scored
        target = cell_text(label, where=where, column=spec.label)
        return Example(id=ex_id, input=text, target=target, target_index=-1, row=where)

    def relabel(self, task: Task, example: Example, answer: Any) -> Example | None:
        return dataclasses.replace(example, target=str(answer)) if answer else None
