"""result.json read through the typed model: versions, round trips, clear errors."""

from __future__ import annotations

import json

import pytest

from optprompt.errors import OptpromptError
from optprompt.results import RESULT_FORMAT, StudyResult, load_result

ENTRY = {
    "trial": 0,
    "objectives": {"score": 0.5},
    "candidate": {"instruction": "Classify.", "template": "Input: {input}\nAnswer:", "verbalizer": [["a", "a"]]},
    "hash": "0123456789abcdef",
    "chat": True,
    "prompt": "Classify.\n\nInput: {input}\nAnswer:",
    "demos": [],
    "dev": {"value": 0.5, "metric": "accuracy", "metrics": {"accuracy": 0.5}, "n": 4},
    "test": {
        "split": "test",
        "metric": "accuracy",
        "value": 0.25,
        "metrics": {"accuracy": 0.25},
        "n": 4,
        "seconds": 0.1,
    },
    "calibration": {"method": "none", "offsets": None},
}

#: A result.json as optprompt wrote it before results were typed (no format_version).
OLD = {
    "name": "old",
    "optprompt_version": "0.1.0",
    "seed": 0,
    "model": {"ref": "tiny", "fingerprint": "f", "family": "causal", "device": "cpu", "dtype": "float32"},
    "task": {"type": "classification", "metric": "accuracy", "labels": ["a", "b"], "source": "d.jsonl"},
    "strategy": {"name": "template_search", "options": {"trials": 2}, "budget": {"trials": 2, "dev_scorings": 2}},
    "pruning": {"pruner": "none"},
    "n_trials": 2,
    "n_scored": 2,
    "n_void": 0,
    "dev_examples_scored": 8,
    "trial_states": {"complete": 2},
    "failure_reasons": {},
    "baseline": ENTRY,
    "best": {**ENTRY, "trial": 1},
    "comparison": {
        "baseline": {"estimate": 0.5, "low": 0.0, "high": 1.0, "confidence": 0.95},
        "winner": {"estimate": 0.25, "low": 0.0, "high": 0.75, "confidence": 0.95},
        "difference": {"estimate": -0.25, "low": -0.75, "high": 0.25, "confidence": 0.95},
        "p_value": 1.0,
        "test": "mcnemar-exact",
        "n": 4,
    },
    "objectives": ["score"],
    "warnings": ["a warning"],
    "format_failures": {},
    "strategy_summary": {},
    "wall_seconds": 1.5,
}


def test_a_file_without_a_format_version_loads_as_version_1(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "result.json").write_text(json.dumps(OLD))
    result = load_result(tmp_path)
    assert result.format_version == 1
    assert result.best.trial == 1 and result.best.test.value == 0.25 and result.best.prompt == ENTRY["prompt"]
    assert result.model.ref == "tiny" and result.metric == "accuracy" and result.families is None
    assert result.to_dict() == OLD  # read and written back unchanged: extra entry fields kept


def test_the_current_version_round_trips() -> None:
    data = {**OLD, "format_version": RESULT_FORMAT}
    assert StudyResult.from_dict(json.loads(json.dumps(StudyResult.from_dict(data).to_dict()))).to_dict() == data


def test_a_newer_version_and_an_incomplete_file_are_clear_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OptpromptError, match="result format 99 is newer"):
        StudyResult.from_dict({**OLD, "format_version": 99})
    broken = {k: v for k, v in OLD.items() if k != "best"}
    (tmp_path / "result.json").write_text(json.dumps(broken))
    with pytest.raises(OptpromptError, match=r"result.json: not a complete study result: best: Field required"):
        load_result(tmp_path / "result.json")


def test_a_file_of_the_format_before_typed_parts_loads_and_round_trips() -> None:
    """tests/results/data/result-v2.json was written by optprompt before the result's parts
    (task, pruning, comparison, selection, context) were typed models."""
    from pathlib import Path

    from optprompt.results import ContextInfo, PairedComparison, SelectionInfo, TaskInfo

    path = Path(__file__).parent / "data" / "result-v2.json"
    data = json.loads(path.read_text())
    result = load_result(path)
    assert isinstance(result.task, TaskInfo) and result.task.type == "classification" and result.task.labels
    assert isinstance(result.comparison, PairedComparison) and 0 <= result.comparison.p_value <= 1
    assert isinstance(result.selection, SelectionInfo) and result.selection.holdout == data["selection"]["holdout"]
    assert isinstance(result.context, ContextInfo)
    assert result.to_dict() == data  # nothing lost or added
