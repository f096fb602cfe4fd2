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
from optprompt.results.comparison import PairedComparison

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
    "TaskInfo",
    "GenerationInfo",
    "PruningInfo",
    "Finalist",
    "SelectionInfo",
    "ContextInfo",
    "TeacherInfo",
    "DistilledSide",
    "DistillationInfo",
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
    comparison: PairedComparison | None = None


class GenerationInfo(_Part):
    """How answers were generated (generation and extraction tasks)."""

    max_new_tokens: int
    stop: list[str] = []
    extract: str | None = None


class TaskInfo(_Part):
    """The study's task: its type, labels, metric and split sizes (files older than task
    names have none)."""

    name: str = ""
    type: str
    source: str = ""
    labels: list[str] = []
    metric: str = "accuracy"
    sizes: dict[str, int] = {}
    fingerprint: str = ""
    descriptions: dict[str, str] | None = None
    generation: GenerationInfo | None = None
    bad_rows: dict[str, Any] | None = None  # task.bad_rows: skip: rows dropped, per reason
    given_type: str | None = None  # the study file's type when the task was searched as another
    columns: dict[str, str] | None = None  # the data's columns as the study file named them (older files: none)


class PruningInfo(_Part):
    """The study's multi-fidelity settings (``pruning`` in the study file)."""

    pruner: str = "none"
    slices: int | None = None
    min_fraction: float | None = None
    warmup_trials: int | None = None
    p_threshold: float | None = None


class Finalist(_Part):
    """A candidate re-scored at the end to pick the winner."""

    trial: int
    dev: float
    holdout: float
    evidence: int | None = None  # examples fresh for it and the baseline (held-out dev + train)
    gain: float | None = None  # its metric minus the baseline's on them
    combined: str | None = None  # what a kind built from the finalists (a prompt ensemble)
    top_answer: str | None = None  # single-label tasks: its most common answer on the evidence...
    top_share: float | None = None  # ...and that answer's share of it
    balanced_gain: float | None = None  # its balanced accuracy minus the baseline's on the evidence


class SelectionInfo(_Part):
    """How the winner was picked on examples the search did not score (``selection``)."""

    holdout: int
    searched: int = 0
    train: int | None = None  # train rows re-scored as fresh evidence (for candidates they did not choose)
    baseline_holdout: float | None = None
    baseline_answers: dict[str, Any] | None = None  # single-label tasks: the baseline's answers on fresh evidence
    finalists: list[Finalist] = []
    do_no_harm: bool = True
    alpha: float = 0.05
    picked: int | None = None
    p_value: float | None = None
    test: str | None = None  # how p_value accounts for picking the best of the finalists
    evidence: int | None = None  # the picked finalist's fresh examples
    kept_baseline: bool | None = None
    notes: list[str] = []
    why: str = ""


class ContextInfo(_Part):
    """The model's context limit and what ``task.truncate`` cut to fit it."""

    limit: int | None = None
    truncate: str = "error"
    truncated_examples: int = 0
    truncated_ids: list[str] = []
    max_tokens_cut: int = 0


class TeacherInfo(_Part):
    """Distillation: what the teacher labelled, and the teacher scored on test."""

    ref: str
    train_labelled: int = 0
    unlabeled_labelled: int = 0
    dropped: int = 0
    train_agreement_with_gold: float | None = None
    test: Score | None = None
    comparison: PairedComparison | None = None  # teacher vs the student's baseline prompt
    student_vs_teacher: PairedComparison | None = None  # winner minus teacher


class DistilledSide(_Part):
    """The winner or its distilled form, as the distillation part of a result shows it."""

    hash: str
    candidate: dict[str, Any] = {}
    tokens_per_prediction: float  # prompt tokens around the input x forward passes + the mean input's tokens
    test: Score


class DistillationInfo(_Part):
    """``distill``: the winner distilled into an adapter under a short prompt, both on test.

    ``comparison`` is the paired test of the distilled form against the winner (the winner as
    its ``baseline``: ``difference`` is distilled minus winner). ``artifact`` is the distilled
    adapter's directory in the study's output (PEFT files + manifest); ``optprompt export``
    copies it into ``distilled/``.
    """

    method: str
    winner: DistilledSide
    distilled: DistilledSide
    token_ratio: float  # the winner's tokens per prediction over the distilled form's
    comparison: PairedComparison
    artifact: str
    distilled_inputs: int = 0  # train + unlabelled inputs the student learnt the winner's answers on
    training: dict[str, Any] = {}  # steps, seconds, best epoch, per-epoch history, seed
    seconds: float | None = None  # wall time of the distillation (teacher answers, training, test)
    reused: bool = False  # read back from the study's output instead of trained again (a resumed study)


class StudyResult(BaseModel):
    """What ``result.json`` holds."""

    model_config = ConfigDict(extra="allow", frozen=True)

    format_version: int = 1
    name: str
    optprompt_version: str = ""
    seed: int = 0
    model: ModelInfo
    task: TaskInfo
    strategy: StrategyInfo | None = None
    pruning: PruningInfo = PruningInfo()
    n_trials: int = 0
    n_scored: int = 0
    n_void: int = 0
    dev_examples_scored: int = 0
    trial_states: dict[str, int] = {}
    failure_reasons: dict[str, int] = {}
    baseline: ResultEntry
    best: ResultEntry
    comparison: PairedComparison | None = None
    objectives: list[str] = ["score"]
    select: str | None = None
    pareto: list[ResultEntry] | None = None
    warnings: list[str] = []
    format_failures: dict[str, int] = {}
    strategy_summary: dict[str, Any] = {}  # the strategy's own figures: each strategy defines their shape
    families: dict[str, FamilyResult] | None = None
    #: Single-label tasks: how the baseline's and the winner's test answers spread over the
    #: labels (``baseline`` / ``best``: top answer and share, per-label recall, balanced accuracy).
    answers: dict[str, Any] | None = None
    selection: SelectionInfo | None = None  # held-out selection: finalists, p-value, do no harm
    context: ContextInfo | None = None  # task.truncate: the context limit and what was cut
    teacher: TeacherInfo | None = None  # distillation: the teacher's labels and test scores
    distillation: DistillationInfo | None = None  # distill: the winner and its distilled form on test
    #: The winner's test score under greedy generation constrained to the answer set (what
    #: a serving stack with guided decoding does; uncalibrated): value, metric, metrics,
    #: interval, agreement with the ranked answers, n. None when not measured.
    constrained_generation: dict[str, Any] | None = None
    wall_seconds: float = 0.0

    @property
    def metric(self) -> str:
        return self.task.metric

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
