"""The task-type extension point: what differs between classification, multiple choice,
generation, extraction and any type a plugin adds.

A :class:`TaskType` is a small, stateless object. It declares

- its **name** (``task.type`` in study files, ``result.json``, prompt cards) and its
  defaults: instruction, template, metric, decoding settings;
- its **scoring path** (:class:`ScoringPath`): whether the model's log-likelihoods of the
  possible answers are ranked, or the model writes an answer (free text, or entities in
  an output format) that is read back. The path decides which metrics fit
  (:attr:`TaskType.metric_kind`), how the renderer writes answers, how the evaluator
  scores and how an exported card predicts; the paired comparison follows from it too
  (a corpus bootstrap of summed entity counts for entities, McNemar or a paired
  bootstrap of per-example scores otherwise);
- a few **capabilities** the rest of optprompt asks instead of comparing names:
  :attr:`~TaskType.ranks_answers`, :attr:`~TaskType.generates`,
  :attr:`~TaskType.extracts_entities`, :attr:`~TaskType.has_fixed_labels`,
  :attr:`~TaskType.has_options`, :attr:`~TaskType.has_label_words`;

and implements what only it knows: how a data row becomes an :class:`Example`, the label
set of a task, the possible answers of an example, how a teacher's answer relabels an
example, its part of a study's spec fingerprint.

Task types are registered through the ``register_task_types`` hook
(``register(MyTaskType)``), the built-in ones too; names are unique.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from optprompt.errors import DataError
from optprompt.tasks.example import Example

if TYPE_CHECKING:
    from optprompt.config.spec import TaskSpec
    from optprompt.tasks.task import Task

__all__ = [
    "GENERATION_SETTINGS_KEY",
    "LabelSet",
    "MetricKind",
    "ScoringPath",
    "TaskType",
    "cell_text",
]

#: The key of a task summary (``result.json["task"]``, a prompt card's ``task``) that
#: holds a generating type's decoding settings (``max_new_tokens``, ``stop``, ``extract``).
GENERATION_SETTINGS_KEY = "generation"


class MetricKind(StrEnum):
    """The ``kind`` a metric registers with (``register_metrics``): what its function reads.

    A task type takes the metrics of its scoring path's kind (:attr:`ScoringPath.metric_kind`).
    Plugins written before these names pass ``"classification"``, ``"generation"`` or
    ``"extraction"``: :meth:`of` reads them as ``CHOICES``, ``TEXT`` and ``ENTITIES``.
    """

    #: ``fn(gold_indices, pred_indices, n_classes) -> float`` over a split (ranked answers).
    CHOICES = "choices"
    #: ``fn(prediction, reference) -> float`` per example, averaged over the split.
    TEXT = "text"
    #: ``fn(counts) -> value`` of per-type ``[tp, fp, fn]`` entity counts summed over the split.
    ENTITIES = "entities"
    #: ``fn(prediction, reference) -> float`` per example like ``TEXT``, for written label
    #: lists (multi-label): kept apart so free-text generation is not measured with them.
    LABEL_LISTS = "label_lists"

    @property
    def label(self) -> str:
        """What the metrics of this kind measure, in messages ("a classification metric")."""
        return {"choices": "classification", "text": "generation", "entities": "extraction"}.get(
            self.value, "label-list"
        )

    @classmethod
    def of(cls, value: str) -> MetricKind:
        """The kind a registration names (its earlier names too).

        Raises:
            ValueError: not a metric kind, naming the known ones.
        """
        earlier = {"classification": cls.CHOICES, "generation": cls.TEXT, "extraction": cls.ENTITIES}
        if value in earlier:
            return earlier[value]
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(repr(k.value) for k in cls)
            raise ValueError(f"metric kind {value!r} is not one of {known}") from None


class ScoringPath(Enum):
    """How a task type's answers are scored: the three mechanisms the evaluator implements."""

    #: The log-likelihood of each possible answer (a label's word, an option) is compared.
    RANK = "rank"
    #: The model writes its answer; a regex (or the first line) extracts it.
    GENERATE = "generate"
    #: The model writes entities in an output format; they are parsed into typed spans.
    EXTRACT = "extract"

    @property
    def metric_kind(self) -> str:
        """The :class:`MetricKind` of the metrics that fit this path."""
        return {
            ScoringPath.RANK: MetricKind.CHOICES,
            ScoringPath.GENERATE: MetricKind.TEXT,
            ScoringPath.EXTRACT: MetricKind.ENTITIES,
        }[self]


@dataclass(frozen=True)
class LabelSet:
    """A task's labels as a task type finds them in the data and the spec.

    Attributes:
        labels: The label set (extraction: the entity types); empty when answers are not labels.
        verbalizer: Label -> the word the prompt and the model use for it.
        descriptions: Label -> what it covers (extraction's ``{types}``).
    """

    labels: tuple[str, ...] = ()
    verbalizer: dict[str, str] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)


def cell_text(value: Any, *, where: str, column: str) -> str:
    """A data cell as text (``3.0`` reads as ``3``).

    Raises:
        DataError: the cell is missing or blank (naming ``where`` and ``column``).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(f"{where}: column {column!r} is empty")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


class TaskType(ABC):
    """One kind of task: its defaults, its scoring path and what only it knows.

    Subclasses set the class attributes and implement :meth:`example`; everything else
    has a default that fits a type whose answers are not labels. A task type holds no
    state: one instance serves every task of its type.

    Attributes:
        name: The ``task.type`` value (study files, ``result.json``, prompt cards).
        scoring: How answers are scored (:class:`ScoringPath`).
        default_instruction / default_template / default_metric: The baseline when the
            study file gives none (the template has ``{input}``; the metric must be of
            :attr:`metric_kind`).
        has_fixed_labels: One label set for every example, each label said through a
            verbalizer word: the split is stratified by label, demonstration pools are
            balanced by label and calibration applies (ranked types only).
        answers_label_lists: The model writes a list of labels from the closed label set
            (``task.labels``): serving exports describe the list (JSON schema array of
            ``enum``, GBNF list grammar) and generation constrained to it is measured.
        is_default: The type of a study file without ``task.type`` (one registered type
            says so: classification). Not inherited: a subclass of the default type is not
            the default unless it says so itself.
        spec_defaults: Study-file defaults of this type (``max_new_tokens``, ``stop``...),
            used where the file does not set the key.
        instruction_variants / template_variants: Generic alternatives search strategies
            may try (``{base}`` in an instruction stands for the baseline's).
        instruction_phrases: Short sentences suited to this type's instructions, which
            strategies that edit instructions may add.
        labels_form: The registered type a task of this type is searched as when every
            example offers the same options (``task.options_as_labels``): the options become
            its labels (with calibration, demonstrations and answer words); None: never.
    """

    name: ClassVar[str]
    scoring: ClassVar[ScoringPath]
    default_instruction: ClassVar[str]
    default_template: ClassVar[str] = "Input: {input}\nAnswer:"
    default_metric: ClassVar[str]
    has_fixed_labels: ClassVar[bool] = False
    answers_label_lists: ClassVar[bool] = False
    is_default: ClassVar[bool] = False
    spec_defaults: ClassVar[Mapping[str, Any]] = {}
    instruction_variants: ClassVar[tuple[str, ...]] = ()
    template_variants: ClassVar[tuple[str, ...]] = ()
    instruction_phrases: ClassVar[tuple[str, ...]] = ()
    labels_form: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "is_default" not in cls.__dict__:
            cls.is_default = False

    # --- capabilities -------------------------------------------------------------
    @property
    def ranks_answers(self) -> bool:
        """Whether the model's answers are ranked (labels, options) rather than written."""
        return self.scoring is ScoringPath.RANK

    @property
    def generates(self) -> bool:
        """Whether the model writes its answers (free text or entities) rather than ranking them."""
        return self.scoring is not ScoringPath.RANK

    @property
    def extracts_entities(self) -> bool:
        """Whether answers are typed entity spans of the input (labels are the entity types)."""
        return self.scoring is ScoringPath.EXTRACT

    @property
    def has_options(self) -> bool:
        """Whether each example brings its own choices (``example.options``) to rank."""
        return self.ranks_answers and not self.has_fixed_labels

    @property
    def has_label_words(self) -> bool:
        """Whether each label (a class, an entity type) is said through a verbalizer word."""
        return self.has_fixed_labels or self.extracts_entities

    @property
    def metric_kind(self) -> str:
        """The :class:`MetricKind` of the metrics this type can be measured with."""
        return self.scoring.metric_kind

    # --- the study file -------------------------------------------------------------
    def check_spec(self, spec: TaskSpec) -> None:  # noqa: B027
        """Reject a ``task:`` section this type cannot work with.

        Raises:
            ValueError: naming what is missing or does not fit (shown under ``task``).
        """

    def columns(self, spec: TaskSpec) -> dict[str, str]:
        """Study-file key -> data column this type reads besides ``task.input`` and ``task.label``."""
        return {}

    # --- building a task ------------------------------------------------------------
    @abstractmethod
    def example(self, row: Mapping[str, Any], spec: TaskSpec, *, ex_id: str, text: str, where: str) -> Example:
        """The labelled example of one data row.

        Args:
            row: The row as the loader read it.
            spec: The ``task:`` section (``spec.label`` names the label column).
            ex_id: The example's id; text: its input (already read); where: ``file row N``.

        Raises:
            DataError: a label this type cannot read (naming ``where`` and the column).
        """

    def unlabeled_example(
        self, row: Mapping[str, Any], spec: TaskSpec, *, ex_id: str, text: str, where: str
    ) -> Example:
        """An input without a label (``task.unlabeled``, for a teacher to label)."""
        return Example(id=ex_id, input=text, target="", target_index=-1, row=where)

    def label_set(self, spec: TaskSpec, examples: Sequence[Example], source: str) -> LabelSet:
        """The task's labels, verbalizer and descriptions, from the spec and all examples.

        Raises:
            DataError / ConfigError: labels that do not fit the data or the spec.
        """
        return LabelSet()

    def with_labels(self, example: Example, labels: LabelSet) -> Example:
        """``example`` once the label set is known (e.g. with its label's index)."""
        return example

    # --- answers --------------------------------------------------------------------
    def answer_choices(self, task: Task, example: Example) -> tuple[str, ...]:
        """The possible answers of ``example`` (ranked types); empty when answers are written."""
        return ()

    def gold_answer(self, example: Example, words: Mapping[str, str]) -> str:
        """``example``'s gold answer as a prompt says it (``words``: label -> word)."""
        return example.target

    def balance_key(self, example: Example) -> str | None:
        """What label balance counts for ``example`` when demonstrations are retrieved
        with balance; None: nothing to balance."""
        return None

    def relabel(self, task: Task, example: Example, answer: Any) -> Example | None:
        """``example`` with another model's ``answer`` (what its predictor returns for this
        type) as its label; None when the answer is no label at all (distillation)."""
        choices = self.answer_choices(task, example)
        if answer not in choices:
            return None
        return dataclasses.replace(example, target=str(answer), target_index=choices.index(answer))

    # --- identity ---------------------------------------------------------------------
    def fingerprint_part(self, task: Task) -> list[Any]:
        """What of ``task`` besides instruction, template and verbalizer shapes the baseline
        prompt (part of a study's spec key: a change starts a new study)."""
        return []

    def __repr__(self) -> str:
        return f"<task type {self.name!r}>"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash((type(self), self.name))
