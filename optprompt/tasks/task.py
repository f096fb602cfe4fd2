"""Examples and tasks: the data a study optimises on, already split and validated."""

from __future__ import annotations

from dataclasses import dataclass, field

from optprompt.tasks.example import Example
from optprompt.tasks.types import TaskType, resolve_task_type

__all__ = ["Example", "Task", "TaskType"]


@dataclass
class Task:
    """Splits, label set, verbalizer, baseline prompt and metric of one study's task.

    For extraction tasks ``labels`` are the entity types, ``verbalizer`` the word the
    prompt uses for each, ``descriptions`` what each covers and ``output_format`` the
    baseline's answer format. ``unlabeled`` holds inputs without labels (``task.unlabeled``)
    for a teacher to label.

    ``type`` is the task type's name (what ``result.json`` and prompt cards record);
    ``task_type`` the :class:`TaskType` itself. Pass either: a name is looked up among the
    built-in types (then the installed plugins'), a :class:`TaskType` is kept as it is
    (a type registered in code must be passed so).
    """

    name: str
    type: str | TaskType
    train: list[Example]
    dev: list[Example]
    test: list[Example]
    labels: tuple[str, ...] = ()
    verbalizer: dict[str, str] = field(default_factory=dict)
    instruction: str = ""
    template: str = ""
    metric: str = "accuracy"
    source: str = ""
    fingerprint: str = ""
    descriptions: dict[str, str] = field(default_factory=dict)
    output_format: str = ""
    unlabeled: list[Example] = field(default_factory=list)
    bad_rows: dict[str, object] = field(default_factory=dict)  # task.bad_rows: skip: what was dropped, per reason
    given_type: str = ""  # the study file's type when the task is searched as another (options as labels)
    #: The data's columns as the study file named them (``input``, ``label``, and ``options``,
    #: ``label_separator`` when given): exports carry them, so scoring new data in the same
    #: layout (``optprompt evaluate``) needs no column flags.
    columns: dict[str, str] = field(default_factory=dict)
    task_type: TaskType = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if isinstance(self.type, TaskType):
            self.task_type, self.type = self.type, self.type.name
        elif self.task_type is None or self.task_type.name != self.type:
            self.task_type = resolve_task_type(self.type)

    def example(self, example_id: str) -> Example:
        """Look an example up by id in any split."""
        for split in (self.train, self.dev, self.test):
            for ex in split:
                if ex.id == example_id:
                    return ex
        raise KeyError(f"no example with id {example_id!r} in task {self.name!r}")

    # --- the task type's capabilities (see TaskType) ---------------------------------
    @property
    def ranks_answers(self) -> bool:
        """Whether the model's answers are ranked (labels, options) rather than written."""
        return self.task_type.ranks_answers

    @property
    def generates(self) -> bool:
        """Whether the model's answers are generated (free text, entities) rather than ranked."""
        return self.task_type.generates

    @property
    def closed_answers(self) -> bool:
        """Whether every answer comes from a closed set (a label, an option, a list of labels):
        what greedy generation constrained to that set is measured for."""
        return not self.task_type.generates or self.task_type.answers_label_lists

    @property
    def extracts_entities(self) -> bool:
        """Whether answers are entity spans of the input (``labels`` are the entity types)."""
        return self.task_type.extracts_entities

    @property
    def has_fixed_labels(self) -> bool:
        """Whether every example's answer is one of ``labels``, said through the verbalizer."""
        return self.task_type.has_fixed_labels

    @property
    def has_options(self) -> bool:
        """Whether each example brings its own options to rank."""
        return self.task_type.has_options

    def answer_choices(self, example: Example) -> tuple[str, ...]:
        """The possible answers of ``example``: the labels, or its options; () when written."""
        return self.task_type.answer_choices(self, example)

    def summary(self) -> dict[str, object]:
        return {
            "name": self.name,
            "type": self.type,
            "source": self.source,
            "labels": list(self.labels),
            "metric": self.metric,
            "sizes": {"train": len(self.train), "dev": len(self.dev), "test": len(self.test)},
            "fingerprint": self.fingerprint,
            **({"descriptions": dict(self.descriptions)} if self.descriptions else {}),
            **({"bad_rows": dict(self.bad_rows)} if self.bad_rows else {}),
            **({"given_type": self.given_type} if self.given_type else {}),
            **({"columns": dict(self.columns)} if self.columns else {}),
        }
