"""Budgets in minutes or trials for every strategy, and a study that runs out of candidates."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from optprompt.config import spec_from_dict
from optprompt.strategies.base import MINUTES_TRIAL_BOUND, StrategyConfig
from optprompt.study import StudyRunner, run_study
from optprompt.trials import records


def test_budget_in_trials_is_trials_and_minutes_bound_the_count() -> None:
    assert StrategyConfig.model_validate({"budget": {"trials": 7}}).trials == 7
    by_minutes = StrategyConfig.model_validate({"budget": {"minutes": 2}})
    assert by_minutes.minutes == 2 and by_minutes.trials == MINUTES_TRIAL_BOUND
    assert StrategyConfig.model_validate({"budget": {"minutes": 2}, "trials": 9}).trials == 9
    with pytest.raises(ValidationError, match="disagree"):
        StrategyConfig.model_validate({"budget": {"trials": 7}, "trials": 8})
    with pytest.raises(ValidationError, match="give minutes or trials"):
        StrategyConfig.model_validate({"budget": {}})


def test_a_minutes_budget_stops_the_study_and_says_so(study_dict: dict, tiny_model) -> None:
    """No trial starts once the finished trials' time reaches the budget: at most one trial past it."""
    strategy = {"name": "template_search", "budget": {"minutes": 0.0001}, "max_demos": 2, "demo_pool": 4}
    spec = spec_from_dict({**study_dict, "strategy": strategy, "selection": {"holdout": 0}})
    result = run_study(spec, model=tiny_model, progress=False).to_dict()
    assert result["n_scored"] == 1  # the baseline alone: its time already spends the budget
    assert any("budget of 0.0001 minutes is spent" in w for w in result["warnings"])


def test_an_exhausted_search_space_ends_the_study_and_says_so(study_dict: dict, tiny_model) -> None:
    """One instruction, one template, no demonstrations, one calibration: two distinct candidates
    (the baseline and its calibrated twin at most); the study stops instead of asking 40 times."""
    strategy = {
        "name": "template_search",
        "trials": 40,
        "max_demos": 0,
        "generic": False,
        "calibrations": ["none"],
    }
    spec = spec_from_dict({**study_dict, "strategy": strategy, "selection": {"holdout": 0}})
    runner = StudyRunner(spec, model=tiny_model, progress=False)
    result = runner.run().to_dict()
    assert result["n_scored"] < 40
    assert any("exhausted" in w or "keeps proposing" in w for w in result["warnings"])
    assert len(records(_study(spec))) < 40 * 3  # it did not ask for trials until 3x the budget


def _study(spec):  # type: ignore[no-untyped-def]
    import optuna

    return optuna.load_study(study_name=spec.name, storage=f"sqlite:///{spec.output}/study.db")


def test_knn_demonstrations_join_the_default_search_when_the_budget_allows(study_dict: dict) -> None:
    from optprompt.study.models import ModelPool
    from optprompt.study.session import build_strategy

    def modes(strategy: dict) -> list[str]:
        spec = spec_from_dict({**study_dict, "strategy": {"name": "template_search", **strategy}})
        runner = StudyRunner(spec, progress=False)
        return build_strategy(spec, runner.task, runner.plugins, ModelPool(spec, runner.plugins)).demo_modes

    assert modes({"trials": 6}) == ["fixed"]
    assert modes({"trials": 30}) == ["fixed", "knn"]
    assert modes({"budget": {"minutes": 10}}) == ["fixed", "knn"]
    assert modes({"budget": {"minutes": 1}}) == ["fixed"]
    assert modes({"trials": 30, "demos": ["fixed"]}) == ["fixed"]  # an explicit choice stays
