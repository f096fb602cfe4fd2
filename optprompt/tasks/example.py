"""One labelled example of a task (its own module so that task types can build examples
without importing :mod:`optprompt.tasks.task`, which holds their instances)."""

from __future__ import annotations

from dataclasses import dataclass

from optprompt.tasks.entities import Entity

__all__ = ["Example"]


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
