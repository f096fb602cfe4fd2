"""Multi-label: each input has a set of labels from a closed label set; the model writes
the list, which is read back tolerantly and scored as a set.

The data's label cell is a list (``["billing", "login"]``) or a string split by
``task.label_separator`` (``"billing|login"``). The model answers with the labels
separated by commas (``billing, login``); a JSON array, other separators (``;``, ``|``,
new lines, ``and``), quotes, bullets and case differences are read too
(:func:`parse_label_list`). The study's metric is the example-level set F1 averaged over
the split (``label_f1``); ``label_exact_match`` (the whole set right) is reported beside it.

Serving: the closed label set gives the JSON schema (an array of ``enum`` values) and a
GBNF grammar of comma-separated labels (:mod:`optprompt.export.serving`), and the study
measures greedy generation constrained to that list grammar beside the free generation.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from optprompt.errors import ConfigError, DataError
from optprompt.tasks.example import Example
from optprompt.tasks.types.base import LabelSet, MetricKind, ScoringPath, TaskType

if TYPE_CHECKING:
    from optprompt.config.spec import TaskSpec
    from optprompt.tasks.task import Task

__all__ = ["LIST_SEPARATOR", "MultiLabel", "join_labels", "parse_label_list"]

#: How the model writes (and demonstrations show) a set of labels.
LIST_SEPARATOR = ", "
#: What separates labels in a written answer, besides JSON arrays.
_SPLIT = re.compile(r"\s*(?:[,;|\n/]|\band\b|&)\s*", re.IGNORECASE)
_STRIP = " \t\"'`*-•.:[](){}"
#: Answers that say "no label".
_NONE = frozenset({"none", "no labels", "no label", "nothing", "n/a", "-"})


def _norm(label: str) -> str:
    return " ".join(label.strip(_STRIP).lower().replace("_", " ").split())


def parse_label_list(text: str | None, labels: Sequence[str] | None = None) -> list[str] | None:
    """The labels a written answer names, in order, each once.

    Reads a JSON array of strings, or labels separated by ``,`` ``;`` ``|`` ``/`` new lines
    or ``and``; quotes, brackets, bullets, case and ``_`` versus space do not matter. With
    ``labels`` (the closed set), each item is mapped to the label it names and items
    naming none are dropped; without, the normalised items are returned.

    Returns:
        The labels ([] for an answer such as ``none``); None when ``text`` is None or
        names nothing readable (a format failure).
    """
    if text is None:
        return None
    raw = text.strip()
    items: list[str]
    if raw.startswith("["):
        try:
            value = json.loads(raw[: raw.rindex("]") + 1]) if "]" in raw else None
        except json.JSONDecodeError:
            value = None
        items = [str(v) for v in value] if isinstance(value, list) else _SPLIT.split(raw)
    else:
        items = _SPLIT.split(raw)
    found = [n for n in (_norm(i) for i in items) if n]
    if not found:
        return None
    if len(found) == 1 and found[0] in _NONE:
        return []
    if labels is None:
        return list(dict.fromkeys(found))
    by_norm = {_norm(lbl): lbl for lbl in labels}
    return list(dict.fromkeys(by_norm[n] for n in found if n in by_norm))


def join_labels(labels: Sequence[str]) -> str:
    """A set of labels as the model writes it (``none`` for the empty set)."""
    return LIST_SEPARATOR.join(labels) if labels else "none"


class MultiLabel(TaskType):
    """A set of labels per input from a closed label set, written by the model as a list."""

    name = "multi_label"
    scoring = ScoringPath.GENERATE
    answers_label_lists = True
    default_instruction = (
        "Tag the text with every topic that applies, from: {labels}. Answer with the topics separated by commas."
    )
    default_template = "Text: {input}\nTopics:"
    default_metric = "label_f1"
    metric_kind = MetricKind.LABEL_LISTS  # label_f1, label_exact_match; not the free-text metrics
    instruction_variants = (
        "Which of these topics does the text cover: {labels}? List all that apply, separated by commas.",
        "Assign one or more labels from {labels} to the text. Answer with the labels separated by commas.",
        "{base} Use only these labels: {labels}.",
    )
    template_variants = (
        "Text: {input}\nTopics:",
        "Input: {input}\nLabels:",
        "{input}\nTags:",
    )
    instruction_phrases = (
        "Read the text carefully.",
        "List every topic that applies, and only those.",
        "Most texts have one or two topics.",
        "Answer with labels from the list only.",
        "Be accurate.",
    )

    def check_spec(self, spec: TaskSpec) -> None:
        renamed = {k: v for k, v in (spec.verbalizer or {}).items() if str(k) != v}
        if renamed:  # a card's identity verbalizer (label -> itself) is fine
            raise ValueError(
                f"verbalizer: multi-label answers are the labels themselves ({renamed}); rename them in the data"
            )
        if spec.label_separator is not None and not spec.label_separator:
            raise ValueError("label_separator: empty; give the string that separates labels in the label column")

    def example(self, row: Mapping[str, Any], spec: TaskSpec, *, ex_id: str, text: str, where: str) -> Example:
        value = row.get(spec.label)
        column = f"{where}: column {spec.label!r}"
        if isinstance(value, (list, tuple)):
            items = [str(v).strip() for v in value]
        elif isinstance(value, str):
            if spec.label_separator is None and value.strip().startswith("["):
                try:
                    parsed = json.loads(value)
                except json.JSONDecodeError as e:
                    raise DataError(f"{column}: {value!r} is not a JSON list of labels ({e.msg})") from None
                items = [str(v).strip() for v in parsed] if isinstance(parsed, list) else []
            elif spec.label_separator is None:
                items = [value.strip()]
            else:
                items = [v.strip() for v in value.split(spec.label_separator)]
        elif value is None:
            raise DataError(f"{column} is empty (a multi-label row needs a list of labels, possibly [])")
        else:
            raise DataError(f"{column}: {value!r} is not a list of labels nor a string (task.label_separator)")
        if any(not i for i in items) and not (len(items) == 1 and isinstance(value, str) and not value.strip()):
            raise DataError(f"{column}: an empty label in {value!r} (check task.label_separator)")
        labels = sorted({i for i in items if i})
        return Example(id=ex_id, input=text, target=join_labels(labels), target_index=-1, row=where)

    @staticmethod
    def gold(example: Example) -> list[str]:
        """``example``'s labels (as :meth:`example` wrote them)."""
        return [] if example.target == "none" else example.target.split(LIST_SEPARATOR)

    def label_set(self, spec: TaskSpec, examples: Sequence[Example], source: str) -> LabelSet:
        in_data = sorted({lbl for ex in examples for lbl in self.gold(ex)})
        if spec.labels is not None:
            labels = tuple(str(lbl) for lbl in spec.labels)
            for ex in examples:
                unknown = [lbl for lbl in self.gold(ex) if lbl not in labels]
                if unknown:
                    raise DataError(f"{ex.row}: label(s) {unknown} not in task.labels {list(labels)}")
        else:
            labels = tuple(in_data)
        if len(labels) < 2:
            raise DataError(f"{source}: a multi-label task needs at least two labels, found {list(labels)}")
        clash = [lbl for lbl in labels if LIST_SEPARATOR.strip() in lbl or _norm(lbl) in _NONE]
        if clash:
            raise ConfigError(f"task.labels: {clash} cannot be written in a comma-separated list; rename them")
        if len({_norm(lbl) for lbl in labels}) != len(labels):
            raise ConfigError(f"task.labels: two labels read the same (case, spaces, '_'): {list(labels)}")
        return LabelSet(labels=labels, verbalizer={lbl: lbl for lbl in labels})

    def with_labels(self, example: Example, labels: LabelSet) -> Example:
        mine = set(self.gold(example))
        return dataclasses.replace(example, target=join_labels([lbl for lbl in labels.labels if lbl in mine]))

    def relabel(self, task: Task, example: Example, answer: Any) -> Example | None:
        """``answer``: the written list (a string) or the labels (a list); None when it names none."""
        found = answer if isinstance(answer, list) else parse_label_list(answer, task.labels)
        if found is None:
            return None
        return dataclasses.replace(example, target=join_labels([lbl for lbl in task.labels if lbl in set(found)]))

    def fingerprint_part(self, task: Task) -> list[Any]:
        return [list(task.labels)]
