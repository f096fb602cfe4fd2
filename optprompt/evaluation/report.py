"""``evaluation.json``: what ``optprompt evaluate`` measured, as a typed, versioned model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from optprompt._io import atomic_write_json, read_json
from optprompt.errors import OptpromptError
from optprompt.results.comparison import Interval  # stored as {estimate, low, high, confidence}

__all__ = [
    "EVALUATION_FILE",
    "EVALUATION_FORMAT",
    "Comparison",
    "Constrained",
    "EvaluationReport",
    "Interval",
    "Scored",
]

EVALUATION_FILE = "evaluation.json"
EVALUATION_FORMAT = 1


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Constrained(_Part):
    """The same target answering by greedy generation constrained to its answer set (what a
    serving stack with guided decoding does), uncalibrated: its metric and interval."""

    value: float
    interval: Interval
    metrics: dict[str, float]
    agreement: float  # fraction of examples where it answers as the scored (ranked or generated) prediction does


class Scored(_Part):
    """One target scored on the data.

    Attributes:
        target: What was scored, as given (an export, or a study directory).
        what: Which candidate that is ("the winner of study 'x'", "export (prompt)"...).
        kind: The candidate kind that loaded it.
        model: The model it was scored on (its reference).
        value: The task metric.
        interval: The metric's 95% bootstrap interval over examples.
        metrics: Every metric of the task type.
        format_failures: Answers that could not be read (generation, extraction).
        constrained: Constrained greedy generation's scores (``constrained=True``), or
            None when not measured.
    """

    target: str
    what: str
    kind: str
    model: str
    value: float
    interval: Interval
    metrics: dict[str, float]
    format_failures: int = 0
    constrained: Constrained | None = None


class Comparison(_Part):
    """``target`` against ``against`` on the same examples (paired)."""

    difference: Interval
    p_value: float
    test: str
    n: int


class EvaluationReport(_Part):
    """What ``evaluation.json`` holds: a target (and optionally a second one) scored on data.

    Attributes:
        format_version: The file format's version.
        data: The data file.
        n: Examples scored.
        task_type: The task type the targets were scored as.
        metric: The task metric.
        target: The target's scores.
        against: The other target's scores (``--against``), or None.
        comparison: The paired test of target against ``against``, or None.
        seconds: Wall time.
    """

    format_version: int = EVALUATION_FORMAT
    optprompt_version: str = ""
    data: str
    n: int
    task_type: str
    metric: str
    target: Scored
    against: Scored | None = None
    comparison: Comparison | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write it (atomically) to ``path``: a file, or a directory to hold evaluation.json."""
        path = Path(path)
        if path.is_dir():
            path = path / EVALUATION_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> EvaluationReport:
        """Read an ``evaluation.json`` (or the one in directory ``path``)."""
        from pydantic import ValidationError

        path = Path(path)
        if path.is_dir():
            path = path / EVALUATION_FILE
        data = read_json(path, what="evaluation file")
        version = data.get("format_version") if isinstance(data, dict) else None
        if version != EVALUATION_FORMAT:
            raise OptpromptError(
                f"{path}: evaluation format {version!r}; this optprompt reads format {EVALUATION_FORMAT}"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise OptpromptError(f"{path}: not a valid evaluation file: {e}") from None
