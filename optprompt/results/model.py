"""``result.json``: written once at the end of a study, read back through :class:`StudyResult`.

The file carries ``format_version``; files written before it existed (no key) are
version 1 and load unchanged. Entries (baseline, winner, Pareto-front members) have typed
common fields; what a candidate kind adds to describe its candidates (a prompt's rendered
text and demonstrations, an ensemble's members...) is kept as extra fields of the entry.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from optprompt._io import atomic_write_json, read_json
from optprompt.errors import OptpromptError

__all__ = [
    "RESULT_FILE",
    "PREDICTIONS_FILE",
    "RESULT_FORMAT",
    "Score",
    "Calibration",
    "ResultEntry",
    "ModelInfo",
    "StrategyInfo",
    "FamilyResult",
    "StudyResult",
    "load_result",
]

RESULT_FILE = "result.json"
PREDICTIONS_FILE = "predictions.jsonl"
#: 1: files without ``format_version`` (optprompt before typed results); 2: this model.
RESULT_FORMAT = 2


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Score(_Part):
    """One split's score of a candidate: the task metric's value and every metric."""

    value: float
    metric: str
    metrics: dict[str, float] = {}
    n: int = 0
    split: str | None = None
    seconds: float | None = None
    format_failures: int | None = None


class Calibration(_Part):
    """The label-bias calibration a candidate was scored with, and its offsets."""

    method: str = "none"
    offsets: list[float] | None = None


class ResultEntry(_Part):
    """A scored candidate: the baseline, the winner or a Pareto-front member.

    Extra fields are what the candidate's kind shows of it (``prompt``, ``demos``...).
    """

    trial: int | None = None
    candidate: dict[str, Any] = {}
    hash: str | None = None
    objectives: dict[str, float] = {}
    dev: Score
    test: Score | None = None
    calibration: Calibration = Calibration()
    artifact: str | None = None

    @property
    def prompt(self) -> str:
        """The candidate's text as its kind rendered it ("" when its kind shows none)."""
        return str((self.model_extra or {}).get("prompt") or "")

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class ModelInfo(_Part):
    ref: str
    fingerprint: str | None = None
    family: str | None = None
    device: str | None = None
    dtype: str | None = None


class StrategyInfo(_Part):
    name: str
    options: dict[str, Any] = {}
    budget: dict[str, int] = {}


class FamilyResult(_Part):
    """One family of candidates (template search, evolution, soft prompts...) of a study
    spanning several: its best candidate on dev, scored on test against the baseline."""

    trials: int = 0
    best: ResultEntry | None = None
    comparison: dict[str, Any] = {}


class StudyResult(BaseModel):
    """What ``result.json`` holds."""

    model_config = ConfigDict(extra="allow", frozen=True)

    format_version: int = 1
    name: str
    optprompt_version: str = ""
    seed: int = 0
    model: ModelInfo
    task: dict[str, Any]
    strategy: StrategyInfo | None = None
    pruning: dict[str, Any] = {}
    n_trials: int = 0
    n_scored: int = 0
    n_void: int = 0
    dev_examples_scored: int = 0
    trial_states: dict[str, int] = {}
    failure_reasons: dict[str, int] = {}
    baseline: ResultEntry
    best: ResultEntry
    comparison: dict[str, Any] = {}
    objectives: list[str] = ["score"]
    select: str | None = None
    pareto: list[ResultEntry] | None = None
    warnings: list[str] = []
    format_failures: dict[str, int] = {}
    strategy_summary: dict[str, Any] = {}
    families: dict[str, FamilyResult] | None = None
    selection: dict[str, Any] | None = None  # held-out selection: finalists, p-value, do no harm
    context: dict[str, Any] | None = None  # task.truncate: the context limit and what was cut
    #: The winner's test score under greedy generation constrained to the answer set (what
    #: a serving stack with guided decoding does; uncalibrated): value, metric, metrics,
    #: interval, agreement with the ranked answers, n. None when not measured.
    constrained_generation: dict[str, Any] | None = None
    teacher: dict[str, Any] | None = None  # distillation: the teacher's labels and test scores
    wall_seconds: float = 0.0

    @property
    def metric(self) -> str:
        return str(self.task.get("metric", "accuracy"))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = RESULT_FILE) -> StudyResult:
        """Validate ``data`` (a clear error naming ``source`` and the bad key otherwise)."""
        if isinstance(data, StudyResult):
            return data
        if not isinstance(data, dict):
            raise OptpromptError(f"{source}: not a study result (a JSON object is expected)")
        version = data.get("format_version", 1)
        if not isinstance(version, int) or version > RESULT_FORMAT:
            raise OptpromptError(
                f"{source}: result format {version!r} is newer than this optprompt reads ({RESULT_FORMAT}); upgrade"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise OptpromptError(f"{source}: not a complete study result: {where}: {first['msg']}") from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``result.json`` holds (keys as written, nothing added)."""
        return self.model_dump(mode="json", exclude_unset=True)

    def write(self, output: str | os.PathLike[str]) -> Path:
        """Write ``OUTPUT/result.json`` atomically."""
        return atomic_write_json(Path(output) / RESULT_FILE, self.to_dict())


def load_result(path: str | os.PathLike[str]) -> StudyResult:
    """The result of the finished study in ``path`` (its output directory or ``result.json``)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULT_FILE
    return StudyResult.from_dict(read_json(path, what=f"finished study result ({RESULT_FILE})"), source=str(path))
