"""Multiple choice: each example brings its options; their log-likelihoods are ranked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from optprompt.errors import DataError
from optprompt.tasks.example import Example
from optprompt.tasks.types.base import ScoringPath, TaskType, cell_text
from optprompt.tasks.types.classification import Classification

if TYPE_CHECKING:
    from optprompt.config.spec import TaskSpec
    from optprompt.tasks.task import Task

__all__ = ["MultipleChoice"]


def _options(row: Mapping[str, Any], spec: TaskSpec, where: str) -> tuple[str, ...]:
    raw = row.get(spec.options or "")
    if not isinstance(raw, (list, tuple)) or len(raw) < 2:
        raise DataError(f"{where}: column {spec.options!r} must hold a list of at least two options")
    return tuple(cell_text(o, where=where, column=spec.options or "") for o in raw)


class MultipleChoice(TaskType):
    """A question with its own list of options (``task.options``) to rank.

    The label is the correct option's text or its index."""

    name = "multiple_choice"
    scoring = ScoringPath.RANK
    default_instruction = "Answer the question with the correct option."
    default_template = "Question: {input}\nAnswer:"
    default_metric = "accuracy"
    labels_form = Classification.name  # the same options everywhere: they are labels
    instruction_variants = (
        "Choose the correct answer.",
        "Read the question and pick the best option.",
        "{base} Reply with the correct option only.",
    )
    template_variants = (
        "Question: {input}\nAnswer:",
        "Question: {input}\nOptions:\n{options}\nAnswer:",
        "Q: {input}\n{options}\nA:",
    )
    instruction_phrases = (
        "Read the question carefully.",
        "Pick the single best option.",
        "Think before you answer.",
        "Reply with the correct option only.",
        "Be accurate.",
    )

    def check_spec(self, spec: TaskSpec) -> None:
        if not spec.options:
            raise ValueError(f"a {self.name} task needs `options`: the column of choices")

    def columns(self, spec: TaskSpec) -> dict[str, str]:
        return {"task.options": spec.options} if spec.options else {}

    def example(self, row: Mapping[str, Any], spec: TaskSpec, *, ex_id: str, text: str, where: str) -> Example:
        label = cell_text(row.get(spec.label), where=where, column=spec.label)
        options = _options(row, spec, where)
        if label in options:
            target_index = options.index(label)
        elif label.lstrip("-").isdigit() and 0 <= int(label) < len(options):
            target_index = int(label)
        else:
            raise DataError(
                f"{where}: label {label!r} is neither one of the options {list(options)} nor an index into them"
            )
        return Example(
            id=ex_id, input=text, target=options[target_index], target_index=target_index, options=options, row=where
        )

    def unlabeled_example(
        self, row: Mapping[str, Any], spec: TaskSpec, *, ex_id: str, text: str, where: str
    ) -> Example:
        return Example(id=ex_id, input=text, target="", target_index=-1, options=_options(row, spec, where), row=where)

    def answer_choices(self, task: Task, example: Example) -> tuple[str, ...]:
        return example.options

    def gold_answer(self, example: Example, words: Mapping[str, str]) -> str:
        return example.options[max(example.target_index, 0)] if example.options else example.target

    def balance_key(self, example: Example) -> str | None:
        return str(example.target_index)
