"""Examples and tasks: the data a study optimises on, already split and validated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Example", "Task", "TaskType", "DEFAULT_INSTRUCTIONS", "DEFAULT_METRICS", "DEFAULT_TEMPLATES"]

TaskType = Literal["classification", "multiple_choice", "generation"]

DEFAULT_INSTRUCTIONS: dict[str, str] = {
    "classification": "Classify the input. Answer with one of: {labels}.",
    "multiple_choice": "Answer the question with the correct option.",
    "generation": "Answer the question.",
}
DEFAULT_TEMPLATES: dict[str, str] = {
    "classification": "Input: {input}\nAnswer:",
    "multiple_choice": "Question: {input}\nAnswer:",
    "generation": "Question: {input}\nAnswer:",
}
DEFAULT_METRICS: dict[str, str] = {
    "classification": "accuracy",
    "multiple_choice": "accuracy",
    "generation": "exact_match",
}


@dataclass(frozen=True)
class Example:
    """One labelled example.

    Attributes:
        id: Stable id (from the id column, else ``<source>:row<N>``).
        input: The text the prompt's ``{input}`` placeholder receives.
        target: Gold label (classification), the correct option's text (multiple
            choice) or the reference answer (generation).
        options: The choices of a multiple-choice example; empty for classification.
        target_index: Index of the gold answer in the task's labels or in ``options``
            (-1 for generation).
        row: Where the example came from, for error messages (``file row N``).
    """

    id: str
    input: str
    target: str
    target_index: int
    options: tuple[str, ...] = ()
    row: str = ""


@dataclass
class Task:
    """Splits, label set, verbalizer, baseline prompt and metric of one study's task."""

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

    def example(self, example_id: str) -> Example:
        """Look an example up by id in any split."""
        for split in (self.train, self.dev, self.test):
            for ex in split:
                if ex.id == example_id:
                    return ex
        raise KeyError(f"no example with id {example_id!r} in task {self.name!r}")

    def answer_choices(self, example: Example) -> tuple[str, ...]:
        """The possible answers of ``example``: the labels, or its options."""
        if self.type == "generation":
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
        }
