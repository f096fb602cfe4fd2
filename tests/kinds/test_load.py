"""``optprompt.load(path).predict(texts)`` reproduces the study's test predictions for every
built-in kind's export (the trained adapter's case is in tests/soft_prompt)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import optprompt
from optprompt.config import spec_from_dict
from optprompt.errors import OptpromptError
from optprompt.export import export_card
from optprompt.kinds import EXPORT_FILE, export_kind
from optprompt.kinds.prompt import CardPredictor
from optprompt.study import StudyRunner


def _study_predictions(output: str, labels: list[str]) -> dict[str, str]:
    logged = [json.loads(line) for line in (Path(output) / "predictions.jsonl").read_text().splitlines()]
    return {p["id"]: labels[p["pred"]] for p in logged if p["role"] == "best"}


@pytest.mark.parametrize("calibration", ["none", "mean", "content_free"])
def test_a_loaded_prompt_card_predicts_what_the_study_measured(study_dict, tiny_model, tmp_path, calibration) -> None:  # type: ignore[no-untyped-def]
    strategy = {**study_dict["strategy"], "trials": 6, "calibrations": [calibration]}
    spec = spec_from_dict({**study_dict, "strategy": strategy})
    runner = StudyRunner(spec, model=tiny_model, progress=False)
    result = runner.run().to_dict()
    out = tmp_path / "card"
    export_card(spec.output, out)
    assert export_kind(out) == "prompt"
    predictor = optprompt.load(out, tiny_model)
    assert isinstance(predictor, CardPredictor)
    test = runner.task.test
    want = _study_predictions(spec.output, list(runner.task.labels))
    assert predictor.predict([e.input for e in test]) == [want[e.id] for e in test]
    accuracy = sum(p == e.target for p, e in zip(predictor.predict([e.input for e in test]), test)) / len(test)
    assert accuracy == result["best"]["test"]["value"]


def test_an_export_without_its_marker_is_recognised(study_dict, tiny_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Exports written before kinds were marked still load."""
    spec = spec_from_dict(study_dict)
    StudyRunner(spec, model=tiny_model, progress=False).run().to_dict()
    out = tmp_path / "old"
    export_card(spec.output, out)
    (out / EXPORT_FILE).unlink()
    assert export_kind(out) == "prompt"
    assert export_kind(out / "prompt_card.json") == "prompt"


def test_loading_something_else_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OptpromptError, match="not an optprompt export"):
        optprompt.load(tmp_path)
    with pytest.raises(OptpromptError, match="not found"):
        optprompt.load(tmp_path / "nope")
