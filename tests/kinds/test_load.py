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


def test_a_multiple_choice_card_calibrated_per_question_predicts_what_the_study_measured(
    tiny_plain_model, tiny_plain_model_dir, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Options of their own, content-free calibration: the study's test predictions, the
    exported card's and the exported ensemble's agree (each recomputes the offsets per question)."""
    import random

    from optprompt_testdata import WORDS

    from optprompt.kinds.ensemble import EnsemblePredictor

    rng = random.Random(3)
    rows = []
    for i in range(80):
        choices = [" ".join(rng.sample(WORDS, rng.randint(1, 3))) for _ in range(3)]
        rows.append({"id": f"q{i}", "q": " ".join(rng.choices(WORDS, k=5)), "choices": choices, "answer": i % 3})
    data = tmp_path / "mc.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    spec = spec_from_dict(
        {
            "name": "mc-calibrated",
            "model": str(tiny_plain_model_dir),
            "seed": 2,
            "output": str(tmp_path / "out"),
            "task": {
                "data": str(data),
                "type": "multiple_choice",
                "input": "q",
                "label": "answer",
                "options": "choices",
                "id": "id",
                "prompt": "Pick the answer.",
            },
            "strategy": {"name": "template_search", "trials": 8, "calibrations": ["content_free"], "max_demos": 1},
            "selection": {"finalists": 3, "ensemble": 3, "do_no_harm": False},
            "scoring": {"device": "cpu"},
        }
    )
    runner = StudyRunner(spec, model=tiny_plain_model, progress=False)
    result = runner.run().to_dict()
    assert result["best"]["calibration"]["method"] == "content_free"
    test = runner.task.test
    texts, options = [e.input for e in test], [list(e.options) for e in test]
    export_card(spec.output, tmp_path / "winner")
    winner = optprompt.load(tmp_path / "winner", tiny_plain_model)
    logged = [json.loads(line) for line in (Path(spec.output) / "predictions.jsonl").read_text().splitlines()]
    want = {p["id"]: p["pred"] for p in logged if p["role"] == "best"}
    assert winner.predict(texts, options) == [e.options[want[e.id]] for e in test]
    # The finalists' ensemble (members calibrated per question), exported by its trial.
    import optuna

    from optprompt.export.trial import export_trial
    from optprompt.trials import records

    study = optuna.load_study(study_name=spec.name, storage=f"sqlite:///{Path(spec.output) / 'study.db'}")
    combined = [r for r in records(study) if r.is_combined and r.state.name == "COMPLETE"]
    assert combined, "the selection combined the finalists into an ensemble"
    ens_cand = runner.kinds.from_dict(combined[0].candidate)
    assert all(m.calibration == "content_free" for m in ens_cand.members)
    with runner.kinds.of(ens_cand).scorer(ens_cand, runner.kind_context) as scorer:
        measured = scorer.evaluate(ens_cand, test, "test")
    export_trial(spec.output, combined[0].number, tmp_path / "ensemble")
    ensemble = optprompt.load(tmp_path / "ensemble", tiny_plain_model)
    assert isinstance(ensemble, EnsemblePredictor)
    assert ensemble.predict(texts, options) == [e.options[p.pred] for e, p in zip(test, measured.predictions)]
    with pytest.raises(OptpromptError, match="pass options"):
        ensemble.members[0].option_offsets(texts, None)
