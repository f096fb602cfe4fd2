"""What a report is made from: a study's output directory, read once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt._io import read_json
from optprompt.errors import OptpromptError

if TYPE_CHECKING:
    import optuna

    from optprompt.results import StudyResult

__all__ = ["StudySource", "load_source"]


@dataclass
class StudySource:
    """A study's output directory, loaded.

    Attributes:
        output_dir: The directory.
        meta: ``study.json`` (spec, storage URL, study name).
        study: The Optuna study, read from its storage.
        result: ``result.json`` (read through :class:`~optprompt.results.StudyResult`), or
            None while the study has not finished.
        predictions: The rows of ``predictions.jsonl``, or None when there is none.
    """

    output_dir: Path
    meta: dict[str, Any]
    study: optuna.Study
    result: StudyResult | None
    predictions: list[dict[str, Any]] | None

    @property
    def finished(self) -> bool:
        return self.result is not None

    @property
    def spec(self) -> dict[str, Any]:
        """The study spec as ``study.json`` holds it."""
        return self.meta.get("spec") or {}

    @property
    def metric(self) -> str:
        """The task's metric: from the result, else the spec, else the task type's default."""
        from optprompt.errors import PluginError
        from optprompt.tasks.types import resolve_task_type

        if self.result is not None:
            return self.result.metric
        task = self.spec.get("task") or {}
        if task.get("metric"):
            return str(task["metric"])
        try:  # study.json records the spec with its defaults: the type is there
            return resolve_task_type(str(task.get("type"))).default_metric
        except PluginError:
            return "accuracy"


def _read_predictions(path: Path) -> list[dict[str, Any]] | None:
    if not path.is_file():
        return None
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise OptpromptError(f"{path}: line {i} is not valid JSON: {e.msg}") from None
    return rows


def load_source(output_dir: str | Path) -> StudySource:
    """Read ``study.json``, the study storage and, when present, the result and predictions.

    Raises:
        OptpromptError: ``output_dir`` is not a study output directory, or its files or
            storage cannot be read.
    """
    from optprompt.results import PREDICTIONS_FILE, RESULT_FILE, load_result
    from optprompt.study.runner import SPEC_FILE
    from optprompt.study.storage import open_study

    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        raise OptpromptError(f"{output_dir}: not a directory (expected a study's output directory)")
    spec_path = output_dir / SPEC_FILE
    if not spec_path.is_file():
        raise OptpromptError(
            f"{output_dir}: not a study output directory (no {SPEC_FILE}; "
            "`optprompt run` writes it when a study starts)"
        )
    meta = read_json(spec_path, what=f"study directory file {SPEC_FILE}")
    if not isinstance(meta, dict) or not {"storage", "study_name"} <= meta.keys():
        raise OptpromptError(f"{spec_path}: lacks 'storage' or 'study_name'; not written by optprompt run?")
    url = meta["storage"]
    # Opening a missing SQLite file would create an empty one; say what is wrong instead.
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise OptpromptError(f"{output_dir}: the study storage {url} does not exist")
    study = open_study(url, meta["study_name"], create=False)
    result_path = output_dir / RESULT_FILE
    result = load_result(result_path) if result_path.is_file() else None
    return StudySource(output_dir, meta, study, result, _read_predictions(output_dir / PREDICTIONS_FILE))
