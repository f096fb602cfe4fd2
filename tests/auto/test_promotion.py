"""``auto`` promotes: a training family's first full runs retrain its best low-fidelity
configurations (successive halving), later ones are sampled afresh."""

from __future__ import annotations

from pathlib import Path

import optuna
from optprompt_plugins.auto.promotion import PROMOTED, PromotingSampler, promote, to_promote
from optprompt_plugins.auto.schedule import LOW_FIDELITY

from optprompt.cli.main import main as cli_main
from optprompt.config import spec_from_dict
from optprompt.study import StudyRunner
from optprompt.study.resilience import reseed_sampler
from optprompt.trials import TrialRecord, records


def _record(
    number: int, value: float | None, *, low: bool = True, promoted: int | None = None, **params
) -> TrialRecord:  # type: ignore[no-untyped-def]
    attrs = {LOW_FIDELITY: True} if low else {}
    if promoted is not None:
        attrs[PROMOTED] = {"trial": promoted, "params": {}}
    state = optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.PRUNED
    return TrialRecord(
        number=number,
        state=state,
        values=(value,) if value is not None else None,
        family="soft_prompt",
        params=params or {"soft_prompt.lr": 0.01 * number},
        attrs=attrs,
    )


def test_the_best_low_fidelity_trial_not_yet_promoted_is_promoted_first() -> None:
    trials = [_record(1, 0.4), _record(2, 0.7), _record(3, 0.7), _record(4, None), _record(5, 0.9, low=False)]
    assert to_promote(trials, "soft_prompt").number == 2  # best on dev; ties: the earlier
    trials.append(_record(6, 0.8, low=False, promoted=2))
    assert to_promote(trials, "soft_prompt").number == 3
    trials.append(_record(7, 0.8, low=False, promoted=3))
    assert to_promote(trials, "soft_prompt").number == 1
    trials.append(_record(8, 0.8, low=False, promoted=1))
    assert to_promote(trials, "soft_prompt") is None  # every one promoted (the pruned one never is)
    assert to_promote(trials, "evolution") is None


def test_a_promoted_trial_draws_its_source_values_and_records_them() -> None:
    study = optuna.create_study(direction="maximize", sampler=PromotingSampler(optuna.samplers.RandomSampler(seed=0)))
    low = study.ask()
    drawn = (low.suggest_categorical("m", ["a", "b", "c"]), low.suggest_float("lr", 1e-4, 1e-1, log=True))
    study.tell(low, 0.5)
    source = TrialRecord.from_frozen(study.trials[0])

    full = study.ask()
    promote(full, source)
    assert (full.suggest_categorical("m", ["a", "b", "c"]), full.suggest_float("lr", 1e-4, 1e-1, log=True)) == drawn
    assert full.params == dict(zip(("m", "lr"), drawn))  # recorded as its own: the sampler learns from it
    assert full.user_attrs[PROMOTED] == {"trial": 0, "params": dict(zip(("m", "lr"), drawn))}
    # A parameter the source never drew, or a value the search space no longer holds, is sampled.
    other = full.suggest_int("r", 1, 64)
    assert 1 <= other <= 64
    moved = study.ask()
    promote(moved, source)
    assert 0.2 <= moved.suggest_float("lr", 0.2, 0.5, log=True) <= 0.5  # a range that moved past the value


def test_reseeding_reaches_the_wrapped_sampler() -> None:
    """Workers and resumed runs replay draws by reseeding the sampler's random states:
    the wrapper must not hide them."""
    draws = []
    for _ in range(2):
        sampler = PromotingSampler(optuna.samplers.TPESampler(seed=1))
        study = optuna.create_study(sampler=sampler)
        assert reseed_sampler(sampler, 5, 3)
        draws.append(study.ask().suggest_float("x", 0, 1))
    assert draws[0] == draws[1]


def test_an_auto_study_retrains_its_best_low_fidelity_configuration_in_full(
    tmp_path: Path, training_auto_study, tiny_model, capsys
) -> None:  # type: ignore[no-untyped-def]
    soft = {"methods": ["prompt_tuning"], "virtual_tokens": [2, 3], "epochs": [2, 2], "min_steps": 0, "prune": False}
    spec = spec_from_dict(training_auto_study("promote", budget={"dev_examples": 700}, soft_prompt=soft))
    result = StudyRunner(spec, model=tiny_model, progress=False).run().to_dict()
    study = optuna.load_study(study_name="promote", storage=f"sqlite:///{tmp_path / 'out' / 'study.db'}")
    soft = [r for r in records(study) if r.family == "soft_prompt" and r.candidate]
    low = [r for r in soft if r.attr(LOW_FIDELITY)]
    full = [r for r in soft if not r.attr(LOW_FIDELITY)]
    assert len(low) >= 2 and full, "the budget fits low-fidelity runs and a full one"
    first = full[0]
    best = max((r for r in low if r.is_complete), key=lambda r: (r.value, -r.number))
    assert first.attr(PROMOTED)["trial"] == best.number
    assert first.params == best.params  # the same configuration, trained in full
    assert first.candidate["params"]["epochs"] == 2 and "max_train_examples" not in first.candidate["params"]
    assert best.candidate["params"]["epochs"] == 1
    promoted = result["strategy_summary"]["schedule"]["promoted"]
    assert {int(k): v for k, v in promoted.items()} == {
        r.number: r.attr(PROMOTED)["trial"] for r in full if r.attr(PROMOTED)
    }
    assert cli_main(["show", str(tmp_path / "out")]) == 0
    assert f"trial {first.number} <- {best.number}" in capsys.readouterr().out
