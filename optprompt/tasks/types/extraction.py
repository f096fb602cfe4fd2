"""Extraction: the model lists the named entities of the input in an output format."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from optprompt.errors import ConfigError, DataError
from optprompt.tasks.entities import Entity, entities_from_value
from optprompt.tasks.example import Example
from optprompt.tasks.types.base import LabelSet, ScoringPath, TaskType

if TYPE_CHECKING:
    from optprompt.config.spec import TaskSpec
    from optprompt.tasks.task import Task

__all__ = ["Extraction"]


def _gold_lines(entities: Sequence[Entity]) -> str:
    return "\n".join(f"{e.type}: {e.text}" for e in entities) or "none"


class Extraction(TaskType):
    """Typed entity spans of the input, measured by entity-level F1 over the split.

    The labels are the entity types."""

    name = "extraction"
    scoring = ScoringPath.EXTRACT
    default_instruction = "Find the named entities in the text. Entity types: {types}.\n{format}"
    default_template = "Text: {input}\nEntities:"
    default_metric = "entity_f1"
    # Entity lists take several lines: a blank line (not the end of a line) ends the
    # answer, and the budget is larger, unless the study file says otherwise.
    spec_defaults = {"max_new_tokens": 64, "stop": ["\n\n"]}
    instruction_variants = (
        "List the named entities in the text. Types: {types}.\n{format}",
        "Extract every name of a {labels} from the text.\n{format}",
        "{base}",
    )
    template_variants = (
        "Text: {input}\nEntities:",
        "Sentence: {input}\nNamed entities:",
        "Input: {input}\nOutput:",
    )
    instruction_phrases = (
        "Read the text carefully.",
        "List every name in the text.",
        "Copy each name exactly as it is written.",
        "Do not list words that are not names.",
        "Be accurate.",
    )

    def example(self, row: Mapping[str, Any], spec: TaskSpec, *, ex_id: str, text: str, where: str) -> Example:
        entities = entities_from_value(row.get(spec.label), text, where=f"{where} column {spec.label!r}")
        return Example(
            id=ex_id, input=text, target=_gold_lines(entities), target_index=-1, row=where, entities=entities
        )

    def label_set(self, spec: TaskSpec, examples: Sequence[Example], source: str) -> LabelSet:
        """Entity types (task.labels, else those in the data), their words and descriptions."""
        in_data = sorted({e.type for ex in examples for e in ex.entities})
        if spec.labels is not None:
            labels = tuple(str(lbl) for lbl in spec.labels)
            for ex in examples:
                for e in ex.entities:
                    if e.type not in labels:
                        raise DataError(
                            f"{ex.row}: entity {e.text!r} has type {e.type!r}, not in task.labels {list(labels)}"
                        )
        elif spec.descriptions:
            labels = tuple(dict.fromkeys([*spec.descriptions, *in_data]))
        else:
            labels = tuple(in_data)
        if not labels:
            raise DataError(f"{source}: no entity types: the data has no entities and task.labels is not set")
        for key, table in (("task.descriptions", spec.descriptions or {}), ("task.verbalizer", spec.verbalizer or {})):
            for k in table:
                if k not in labels:
                    raise ConfigError(f"{key}.{k}: {k!r} is not an entity type; the types are {list(labels)}")
        verbalizer = {lbl: (spec.verbalizer or {}).get(lbl, lbl) for lbl in labels}
        words = list(verbalizer.values())
        if len({w.lower() for w in words}) != len(words):
            raise ConfigError(f"task.verbalizer: two entity types share a word: {verbalizer}")
        return LabelSet(labels, verbalizer, {lbl: d for lbl, d in (spec.descriptions or {}).items()})

    def relabel(self, task: Task, example: Example, answer: Any) -> Example | None:
        """``answer``: ``{"type", "text", "start", "end"}`` dicts (spans not in the input,
        ``start < 0``, are dropped); None is a format failure."""
        if answer is None:
            return None
        ents = tuple(sorted({Entity(d["start"], d["end"], d["type"], d["text"]) for d in answer if d["start"] >= 0}))
        return dataclasses.replace(example, target=_gold_lines(ents), entities=ents)

    def fingerprint_part(self, task: Task) -> list[Any]:
        return [task.output_format, task.descriptions]
