"""A third-party task type in one package: yes/no questions.

Labels are always ``no`` and ``yes``, whatever the data writes (``true``/``false``,
``1``/``0``, booleans, ``Y``/``N``); the model ranks the two answer words, as for
classification. Nothing in optprompt names this type: it is registered through the
``register_task_types`` hook and imports only the public API (``optprompt.tasks``,
``optprompt.errors``, ``optprompt.plugins``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from optprompt.errors import ConfigError, DataError
from optprompt.plugins import hookimpl
from optprompt.tasks import Example, LabelSet, ScoringPath, TaskType

__all__ = ["YesNo"]

_ANSWERS = {"yes": "yes", "y": "yes", "true": "yes", "1": "yes", "no": "no", "n": "no", "false": "no", "0": "no"}
LABELS = ("no", "yes")


class YesNo(TaskType):
    """A yes/no question per input (labels no and yes)."""

    name = "yes_no"
    scoring = ScoringPath.RANK
    has_fixed_labels = True
    default_instruction = "Answer the question with {labels}."
    default_template = "Question: {input}\nAnswer:"
    default_metric = "accuracy"
    instruction_variants = ("Reply yes or no.", "{base} One word: {labels}.")
    template_variants = ("Q: {input}\nA:",)
    instruction_phrases = ("Answer with yes or no.",)

    def check_spec(self, spec: Any) -> None:
        if spec.labels is not None:
            raise ValueError("a yes_no task's labels are always no and yes: remove task.labels")

    def example(self, row: Mapping[str, Any], spec: Any, *, ex_id: str, text: str, where: str) -> Example:
        raw = row.get(spec.label)
        answer = _ANSWERS.get(str(raw).strip().lower()) if raw is not None else None
        if answer is None:
            raise DataError(f"{where}: column {spec.label!r} holds {raw!r}, not a yes or a no")
        return Example(id=ex_id, input=text, target=answer, target_index=LABELS.index(answer), row=where)

    def label_set(self, spec: Any, examples: Sequence[Example], source: str) -> LabelSet:
        verbalizer = {lbl: (spec.verbalizer or {}).get(lbl, lbl) for lbl in LABELS}
        unknown = sorted(set(spec.verbalizer or {}) - set(LABELS))
        if unknown:
            raise ConfigError(f"task.verbalizer.{unknown[0]}: a yes_no task's labels are no and yes")
        return LabelSet(labels=LABELS, verbalizer=verbalizer)

    def answer_choices(self, task: Any, example: Example) -> tuple[str, ...]:
        return task.labels  # type: ignore[no-any-return]

    def gold_answer(self, example: Example, words: Mapping[str, str]) -> str:
        return words.get(example.target, example.target)

    def balance_key(self, example: Example) -> str | None:
        return example.target


@hookimpl
def register_task_types(register):  # type: ignore[no-untyped-def]
    register(YesNo)
