"""Candidates: immutable descriptions of what gets scored."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from optprompt.errors import ConfigError
from optprompt.prompts.retrieval import Retrieval

if TYPE_CHECKING:
    from optprompt.tasks.task import Task

__all__ = ["PromptCandidate", "DEMO_ORDERS", "CHOICE_FORMATS", "CALIBRATIONS", "baseline_candidate"]

DEMO_ORDERS = ("as_chosen", "reversed", "by_label")
CHOICE_FORMATS = ("text", "letters")
CALIBRATIONS = ("none", "content_free", "mean")


@dataclass(frozen=True)
class PromptCandidate:
    """A discrete prompt: instruction, demonstrations, input format and verbalizer.

    Attributes:
        instruction: Text before the demonstrations. ``{labels}`` is replaced by the
            verbalizer's words joined by ", ".
        template: Per-example format with an ``{input}`` placeholder (and, for multiple
            choice, optionally ``{options}``); the answer follows it.
        demo_ids: Ids of train examples shown as demonstrations, in order.
        verbalizer: ``(label, word)`` pairs: what the model should say for each label.
            Empty for multiple choice.
        choice_format: Multiple choice only: score option ``text`` or option ``letters``.
        separator: Text between instruction, demonstrations and the query.
        calibration: How label scores are corrected for the model's prior preference
            for some answers (classification only): ``none``; ``content_free``
            (subtract the label distribution on content-free inputs such as "N/A",
            Zhao et al. 2021); ``mean`` (subtract the mean label distribution over the
            dev inputs, labels unused, Zhou et al. 2023; the offsets found on dev are
            then fixed for test and exported with the card).
        output_format: Extraction only: how the model is asked to write the entities
            (``lines``, ``json`` or ``inline``; see :mod:`optprompt.prompts.entity_formats`).
            For extraction the verbalizer maps each entity type to the word the prompt
            and the answers use for it.
        retrieval: Demonstrations retrieved per input (kNN) instead of ``demo_ids``:
            the pool and the settings (:class:`~optprompt.prompts.retrieval.Retrieval`);
            None (the default): the fixed ``demo_ids``.
    """

    kind: ClassVar[str] = "prompt"

    instruction: str
    template: str
    demo_ids: tuple[str, ...] = ()
    verbalizer: tuple[tuple[str, str], ...] = ()
    choice_format: Literal["text", "letters"] = "text"
    separator: str = "\n\n"
    calibration: Literal["none", "content_free", "mean"] = "none"
    output_format: str = ""
    retrieval: Retrieval | None = None
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.template.count("{input}") != 1:
            raise ConfigError(f"template {self.template!r} must contain the {{input}} placeholder exactly once")
        if self.choice_format not in CHOICE_FORMATS:
            raise ConfigError(f"choice_format must be one of {CHOICE_FORMATS}, got {self.choice_format!r}")
        if self.calibration not in CALIBRATIONS:
            raise ConfigError(f"calibration must be one of {CALIBRATIONS}, got {self.calibration!r}")
        if self.output_format:
            from optprompt.prompts.entity_formats import entity_format

            entity_format(self.output_format)
        if self.retrieval is not None:
            if not isinstance(self.retrieval, Retrieval):
                raise ConfigError(f"retrieval must be a Retrieval, got {type(self.retrieval).__name__}")
            if self.demo_ids:
                raise ConfigError("a candidate retrieves demonstrations per input or shows fixed demo_ids, not both")
        words = [w for _, w in self.verbalizer]
        if any(not w.strip() for w in words):
            raise ConfigError(f"verbalizer has an empty word: {dict(self.verbalizer)}")

    @property
    def verbalizer_map(self) -> dict[str, str]:
        return dict(self.verbalizer)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (metadata excluded); :meth:`from_dict` inverts it."""
        d = asdict(self)
        d.pop("metadata")
        if self.calibration == "none":  # keeps hashes of uncalibrated candidates stable
            d.pop("calibration")
        if not self.output_format:  # only extraction candidates have one; other hashes stay as they were
            d.pop("output_format")
        d.pop("retrieval")
        if self.retrieval is not None:  # absent otherwise: hashes of fixed-demo candidates stay
            d["retrieval"] = self.retrieval.to_dict()
        d["demo_ids"] = list(self.demo_ids)
        d["verbalizer"] = [list(p) for p in self.verbalizer]
        return d

    def text_fields(self) -> dict[str, Any]:
        """The fields that make the prompt's fixed text (no calibration, no metadata, no
        per-input retrieval: what a trained adapter is built around)."""
        return {
            "instruction": self.instruction,
            "template": self.template,
            "demo_ids": self.demo_ids,
            "verbalizer": self.verbalizer,
            "choice_format": self.choice_format,
            "separator": self.separator,
            "output_format": self.output_format,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromptCandidate:
        """Inverse of :meth:`to_dict` (candidates of other kinds: read them through their
        kind, :meth:`optprompt.kinds.CandidateKinds.from_dict`)."""
        data = {k: v for k, v in data.items() if k != "kind"}
        data["demo_ids"] = tuple(data.get("demo_ids", ()))
        data["verbalizer"] = tuple(tuple(p) for p in data.get("verbalizer", ()))
        if data.get("retrieval") is not None:
            data["retrieval"] = Retrieval.from_dict(data["retrieval"])
        return cls(**data)

    @property
    def hash(self) -> str:
        """Stable content hash (16 hex digits): the cache key and a trial attribute."""
        payload = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def baseline_candidate(task: Task, chat: bool) -> PromptCandidate:
    """The task's starting prompt (its instruction, template, answer words and format) as a candidate."""
    return PromptCandidate(
        instruction=task.instruction,
        template=task.template,
        verbalizer=tuple((lbl, task.verbalizer[lbl]) for lbl in task.labels),
        output_format=task.output_format,
        metadata={"chat": chat},
    )
