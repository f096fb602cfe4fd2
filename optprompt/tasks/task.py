"""Examples and tasks: the data a study optimises on, already split and validated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Example", "Task", "TaskType", "DEFAULT_INSTRUCTIONS", "DEFAULT_METRICS", "DEFAULT_TEMPLATES"]

from optprompt.tasks.entities import Entity

TaskType = Literal["classification", "multiple_choice", "generation", "extraction"]

DEFAULT_INSTRUCTIONS: dict[str, str] = {
    "classification": "Classify the input. Answer with one of: {labels}.",
    "multiple_choice": "Answer the question with the correct option.",
    "generation": "Answer the question.",
    "extraction": "Find the named entities in the text. Entity types: {types}.\n{format}",
}
DEFAULT_TEMPLATES: dict[str, str] = {
    "classification": "Input: {input}\nAnswer:",
    "multiple_choice": "Question: {input}\nAnswer:",
    "generation": "Question: {input}\nAnswer:",
    "extraction": "Text: {input}\nEntities:",
}
DEFAULT_METRICS: dict[str, str] = {
    "classification": "accuracy",
    "multiple_choice": "accuracy",
    "generation": "exact_match",
    "extraction": "entity_f1",
}


@dataclass(frozen=True)
class Example:
    """One labelled example.

    Attributes:
        id: Stable id (from the id column, else ``<source>:row<N>``).
        input: The text the prompt's ``{input}`` placeholder receives.
        target: Gold label (classification), the correct option's text (multiple
            choice), the reference answer (generation) or the gold entities as
            ``TYPE: text`` lines (extraction; what is scored are ``entities``).
        options: The choices of a multiple-choice example; empty for classification.
        target_index: Index of the gold answer in the task's labels or in ``options``
            (-1 for generation).
        row: Where the example came from, for error messages (``file row N``).
        entities: Extraction: the gold entity spans of ``input``, sorted.
        soft_target: Distillation (classification, multiple choice): the teacher's
            probability of each choice, which trainers match (KL) instead of
            ``target_index`` alone; empty otherwise.
    """

    id: str
    input: str
    target: str
    target_index: int
    options: tuple[str, ...] = ()
    row: str = ""
    entities: tuple[Entity, ...] = ()
    soft_target: tuple[float, ...] = ()


@dataclass
class Task:
    """Splits, label set, verbalizer, baseline prompt and metric of one study's task.

    For extraction tasks ``labels`` are the entity types, ``verbalizer`` the word the
    prompt uses for each, ``descriptions`` what each covers and ``output_format`` the
    baseline's answer format. ``unlabeled`` holds inputs without labels (``task.unlabeled``)
    for a teacher to label.
    """

    name: str
    type: TaskType
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

    def example(self, example_id: str) -> Example:
        """Look an example up by id in any split."""
        for split in (self.train, self.dev, self.test):
            for ex in split:
                if ex.id == example_id:
                    return ex
        raise KeyError(f"no example with id {example_id!r} in task {self.name!r}")

    @property
    def generates(self) -> bool:
        """Whether the model's answers are generated (generation, extraction) rather than ranked."""
        return self.type in ("generation", "extraction")

    def answer_choices(self, example: Example) -> tuple[str, ...]:
        """The possible answers of ``example``: the labels, or its options."""
        if self.generates:
            return ()
        return self.labels if self.type == "classification" else example.options

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
        }
