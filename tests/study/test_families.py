"""Studies run end to end on every task type and model family (tiny random models)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import optuna

from optprompt.config import spec_from_dict
from optprompt.study import run_study
from optprompt.trials import keys as attrs


def _qa_file(path: Path, n: int = 30) -> Path:
    rng = random.Random(0)
    words = ["red", "blue", "green", "cat", "dog", "hotel"]
    with path.open("w") as f:
        for i in range(n):
            w = rng.choice(words)
            f.write(json.dumps({"question": f"what is word {i} {w}?", "answer": w}) + "\n")
    return path


def test_generation_study_end_to_end(tiny_model, tmp_path: Path) -> None:
    spec = spec_from_dict(
        {
            "name": "gen",
            "model": "unused",
            "output": str(tmp_path / "out"),
            "task": {
                "data": str(_qa_file(tmp_path / "qa.jsonl")),
                "type": "generation",
                "input": "question",
                "label": "answer",
                "metric": "token_f1",
                "max_new_tokens": 4,
                "extract": r"(\w+)",
            },
            "strategy": {"name": "template_search", "trials": 4, "max_demos": 2, "demo_pool": 4},
        }
    )
    result = run_study(spec, model=tiny_model, progress=False).to_dict()
    assert result["task"]["type"] == "generation" and result["task"]["metric"] == "token_f1"
    assert set(result["best"]["test"]["metrics"]) == {"exact_match", "contains", "token_f1", "rouge_l", "bleu"}
    assert 0.0 <= result["best"]["test"]["value"] <= 1.0
    lines = [json.loads(x) for x in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert all("output" in x for x in lines)
    # an unparseable answer is a counted format failure with score 0, not a crash
    assert all(x["score"] == 0.0 for x in lines if x["pred"] is None)
    assert result["comparison"]["test"] == "paired-bootstrap" or result["comparison"]["test"].startswith("mcnemar")


def test_generation_metric_must_fit_task_type(tiny_model, tmp_path: Path) -> None:
    import pytest

    from optprompt.errors import ConfigError

    spec = spec_from_dict(
        {
            "name": "gen",
            "model": "unused",
            "output": str(tmp_path / "out"),
            "task": {
                "data": str(_qa_file(tmp_path / "qa.jsonl")),
                "type": "generation",
                "input": "question",
                "label": "answer",
                "metric": "accuracy",
            },
            "strategy": {"name": "template_search", "trials": 2},
        }
    )
    with pytest.raises(ConfigError, match="task.metric: 'accuracy' is a classification metric"):
        run_study(spec, model=tiny_model, progress=False)


def test_seq2seq_classification_study(study_dict: dict, tiny_seq2seq) -> None:
    result = run_study(spec_from_dict(study_dict), model=tiny_seq2seq, progress=False).to_dict()
    assert result["n_scored"] == 6
    assert result["baseline"]["chat"] is False


def test_masked_lm_needs_single_token_baseline_answers(study_dict: dict, tiny_masked) -> None:
    import pytest

    from optprompt.errors import OptpromptError

    with pytest.raises(OptpromptError, match="baseline prompt was rejected: masked LMs need single-token answers"):
        run_study(spec_from_dict(study_dict), model=tiny_masked, progress=False)


def test_masked_lm_cloze_study(study_dict: dict, tiny_masked) -> None:
    study_dict["task"]["verbalizer"] = {"positive": "good", "negative": "bad"}
    result = run_study(spec_from_dict(study_dict), model=tiny_masked, progress=False).to_dict()
    trials = optuna.load_study(
        study_name="tiny-study", storage=f"sqlite:///{Path(study_dict['output']) / 'study.db'}"
    ).trials
    assert result["n_scored"] == 6
    # multi-token verbalizers are rejected (pruned with a reason), never crash the study
    for t in trials:
        if t.state == optuna.trial.TrialState.PRUNED:
            assert t.user_attrs[attrs.FAIL_REASON].startswith("rejected:")


def test_generation_card_parses_like_the_study(tiny_model, tmp_path: Path) -> None:
    from optprompt.export import export_card, load_card

    spec = spec_from_dict(
        {
            "name": "gen",
            "model": "unused",
            "output": str(tmp_path / "out"),
            "task": {
                "data": str(_qa_file(tmp_path / "qa.jsonl")),
                "type": "generation",
                "input": "question",
                "label": "answer",
                "extract": r"answer is (\w+)",
            },
            "strategy": {"name": "template_search", "trials": 2},
        }
    )
    run_study(spec, model=tiny_model, progress=False)
    export_card(spec.output, tmp_path / "card")
    card = load_card(tmp_path / "card")
    assert card.parse("I think the answer is blue.") == "blue"
    assert card.parse("no idea") is None
