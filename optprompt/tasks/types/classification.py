"""Classification: one label set; the model's log-likelihood of each label's word is ranked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from optprompt.errors import ConfigError, DataError
from optprompt.tasks.example import Example
from optprompt.tasks.types.base import LabelSet, ScoringPath, TaskType, cell_text

if TYPE_CHECKING:
    from optprompt.config.spec import TaskSpec
    from optprompt.tasks.task import Task

__all__ = ["Classification"]


class Classification(TaskType):
    """A label per input from a fixed set, each said through a verbalizer word."""

    name = "classification"
    scoring = ScoringPath.RANK
    has_fixed_labels = True
    is_default = True
    default_instruction = "Classify the input. Answer with one of: {labels}."
    default_template = "Input: {input}\nAnswer:"
    default_metric = "accuracy"
    instruction_variants = (
        "Classify the text into one of these categories: {labels}.",
        "Read the input and answer with one word: {labels}.",
        "{base} Answer with one of: {labels}.",
    )
    template_variants = (
        "Input: {input}\nAnswer:",
        "Text: {input}\nLabel:",
        "{input}\nCategory:",
        "Q: {input}\nA:",
    )
    instruction_phrases = (
        "Read the input carefully.",
        "Answer with one word.",
        "Answer with one of: {labels}.",
        "Think about the overall tone.",
        "Choose the label that fits best.",
        "Be accurate.",
    )

    def example(self, row: Mapping[str, Any], spec: TaskSpec, *, ex_id: str, text: str, where: str) -> Example:
        label = cell_text(row.get(spec.label), where=where, column=spec.label)
        return Example(id=ex_id, input=text, target=label, target_index=-1, row=where)

    def label_set(self, spec: TaskSpec, examples: Sequence[Example], source: str) -> LabelSet:
        data_labels = list(dict.fromkeys(sorted(ex.target for ex in examples)))
        if spec.labels is not None:
            labels = tuple(str(lbl) for lbl in spec.labels)
            for ex in examples:
                if ex.target not in labels:
                    raise DataError(f"{ex.row}: label {ex.target!r} is not in task.labels {list(labels)}")
        else:
            labels = tuple(data_labels)
        if len(labels) < 2:
            raise DataError(f"{source}: classification needs at least two labels, found {list(labels)}")
        if spec.verbalizer is not None:
            verbalizer = {str(k): v for k, v in spec.verbalizer.items()}
            for k in verbalizer:
                if k not in labels:
                    raise ConfigError(
                        f"task.verbalizer.{k}: {k!r} is not a label of the data; labels are {list(labels)}"
                    )
            for ex in examples:
                if ex.target not in verbalizer:
                    raise DataError(
                        f"{ex.row}: label {ex.target!r} has no word in task.verbalizer (it maps {sorted(verbalizer)})"
                    )
        else:
            if all(lbl.lstrip("-").isdigit() for lbl in labels):
                raise ConfigError(
                    f"task.verbalizer: the labels are numbers ({', '.join(labels)}); map each to the word "
                    "the model should answer with, e.g. verbalizer: {0: negative, 1: positive}"
                )
            verbalizer = {lbl: lbl for lbl in labels}
        words = list(verbalizer.values())
        if len(set(words)) != len(words):
            raise ConfigError(f"task.verbalizer: two labels share a word: {verbalizer}")
        return LabelSet(labels=labels, verbalizer=verbalizer)

    def with_labels(self, example: Example, labels: LabelSet) -> Example:
        e = example
        return Example(
            id=e.id,
            input=e.input,
            target=e.target,
            target_index=labels.labels.index(e.target),
            options=e.options,
            row=e.row,
        )

    def answer_choices(self, task: Task, example: Example) -> tuple[str, ...]:
        return task.labels

    def gold_answer(self, example: Example, words: Mapping[str, str]) -> str:
        return words.get(example.target, example.target)

    def balance_key(self, example: Example) -> str | None:
        return example.target
