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


def _history(seconds: float, n: int = 3):  # type: ignore[no-untyped-def]
    """An in-memory study with ``n`` complete trials of ``seconds`` each, over one float."""
    import datetime

    import optuna

    study = optuna.create_study(direction="maximize")
    start = datetime.datetime(2026, 1, 1)
    dist = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    for i in range(n):
        study.add_trial(
            optuna.trial.FrozenTrial(
                number=i,
                trial_id=i,
                state=optuna.trial.TrialState.COMPLETE,
                value=1.0 - 0.1 * i,
                datetime_start=start,
                datetime_complete=start + datetime.timedelta(seconds=seconds),
                params={"x": 0.9 - 0.1 * i},
                distributions=dist,
                user_attrs={},
                system_attrs={},
                intermediate_values={},
            )
        )
    return study, dist["x"]


def _next_x(sampler, study, dist) -> float:  # type: ignore[no-untyped-def]
    study.sampler = sampler
    trial = study.ask({"x": dist})
    return float(trial.params["x"])


def test_tpe_start_up_scales_with_a_minutes_budget() -> None:
    import optuna

    from optprompt.strategies.base import _minutes_tpe as minutes_tpe
    from optprompt.strategies.base import expected_trials, startup_trials

    assert [startup_trials(n) for n in (1, 8, 16, 40, 1000)] == [1, 2, 4, 10, 10]
    # 60-second trials in a 4-minute budget: 4 trials expected, so TPE models from the first.
    slow, dist = _history(seconds=60)
    assert expected_trials(slow, 4) == pytest.approx(4)
    modelled = optuna.samplers.TPESampler(seed=5, n_startup_trials=1)
    assert _next_x(minutes_tpe(4, seed=5), slow, dist) == _next_x(modelled, _history(60)[0], dist)
    # 1-second trials: 240 expected, so the first 10 stay random (TPE's own start-up rule).
    fast, dist = _history(seconds=1)
    assert expected_trials(fast, 4) == pytest.approx(240)
    random_start = optuna.samplers.TPESampler(seed=5, n_startup_trials=10)
    x_fast = _next_x(minutes_tpe(4, seed=5), fast, dist)
    assert x_fast == _next_x(random_start, _history(1)[0], dist)
    assert x_fast != _next_x(optuna.samplers.TPESampler(seed=5, n_startup_trials=1), _history(1)[0], dist)


def test_a_minutes_budget_gets_the_scaled_sampler_and_a_trials_budget_the_plain_rule(study_dict: dict) -> None:
    import optuna

    from optprompt.study.models import ModelPool
    from optprompt.study.session import build_strategy

    def sampler(strategy: dict):  # type: ignore[no-untyped-def]
        spec = spec_from_dict({**study_dict, "strategy": {"name": "template_search", **strategy}})
        runner = StudyRunner(spec, progress=False)
        return build_strategy(spec, runner.task, runner.plugins, ModelPool(spec, runner.plugins)).create_sampler()

    assert type(sampler({"budget": {"minutes": 2}})).__name__ == "MinutesTPESampler"
    plain = sampler({"trials": 12})
    assert type(plain) is optuna.samplers.TPESampler and plain._n_startup_trials == 3
