"""Multi-objective studies: Pareto front, selection rule, export of the front."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from optprompt.config import spec_from_dict
from optprompt.errors import ConfigError, OptpromptError
from optprompt.export import export_card, load_card
from optprompt.study import StudyRunner
from optprompt.study.objectives import parse_rule, select


def test_rule_parsing_and_selection() -> None:
    members = [
        {"trial": 1, "objectives": {"score": 0.9, "prompt_tokens": 400.0}},
        {"trial": 2, "objectives": {"score": 0.8, "prompt_tokens": 150.0}},
        {"trial": 3, "objectives": {"score": 0.7, "prompt_tokens": 40.0}},
    ]
    objectives = ["score", "prompt_tokens"]
    assert select(members, parse_rule("prompt_tokens<=200", objectives))["trial"] == 2
    assert select(members, parse_rule("prompt_tokens < 100", objectives))["trial"] == 3
    assert select(members, [])["trial"] == 1
    assert select(members, parse_rule("prompt_tokens<=10", objectives)) is None
    with pytest.raises(ConfigError, match="'latency' is not an objective"):
        parse_rule("latency<=1", objectives)
    with pytest.raises(ConfigError, match="cannot read"):
        parse_rule("tokens about 200", objectives)


def test_multi_objective_study_exports_front_and_picks(study_dict: dict, tiny_model, tmp_path: Path) -> None:
    study_dict["objectives"] = ["score", "prompt_tokens"]
    study_dict["strategy"] = {**study_dict["strategy"], "trials": 10}
    runner = StudyRunner(spec_from_dict(study_dict), model=tiny_model, progress=False)
    result = runner.run().to_dict()
    assert type(runner.sampler).__name__ == "NSGAIISampler"
    study = optuna.load_study(study_name="tiny-study", storage=f"sqlite:///{Path(study_dict['output']) / 'study.db'}")
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    front = result["pareto"]
    assert front and {m["trial"] for m in front} == {t.number for t in study.best_trials}
    # nobody on the front is dominated by another member
    for a in front:
        for b in front:
            assert not (
                b["objectives"]["score"] >= a["objectives"]["score"]
                and b["objectives"]["prompt_tokens"] <= a["objectives"]["prompt_tokens"]
                and b["objectives"] != a["objectives"]
            )
    assert result["best"]["trial"] == select(front, [])["trial"]
    index = json.loads(export_card(study_dict["output"], tmp_path / "front", front=True).read_text())
    assert len(index) == len(front) and sum(e["winner"] for e in index) == 1
    shortest = min(front, key=lambda m: m["objectives"]["prompt_tokens"])
    bound = int(shortest["objectives"]["prompt_tokens"])
    export_card(study_dict["output"], tmp_path / "short", pick=f"prompt_tokens<={bound}")
    card = load_card(tmp_path / "short")
    assert card.scores["objectives"]["prompt_tokens"] <= bound
    with pytest.raises(OptpromptError, match="no Pareto-front prompt meets"):
        export_card(study_dict["output"], tmp_path / "none", pick="prompt_tokens<=0")


def test_multi_objective_with_pruning_is_refused(study_dict: dict) -> None:
    with pytest.raises(ConfigError, match="single objective"):
        spec_from_dict({**study_dict, "objectives": ["score", "latency"], "pruning": {"pruner": "median"}})
