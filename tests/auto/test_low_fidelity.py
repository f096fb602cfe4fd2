"""``auto``'s first rung explores trained families at low fidelity: a part of train, one
epoch; the later rungs train at full fidelity."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optprompt_plugins.auto.schedule import LOW_FIDELITY

from optprompt.config import spec_from_dict
from optprompt.strategies import Fidelity
from optprompt.study import StudyRunner
from optprompt.trials import records


def test_the_first_rung_trains_on_half_of_train_for_one_epoch(tmp_path: Path, training_auto_study, tiny_model) -> None:  # type: ignore[no-untyped-def]
    spec = spec_from_dict(training_auto_study("lowfi"))
    runner = StudyRunner(spec, model=tiny_model, progress=False)
    runner.run()
    study = optuna.load_study(study_name="lowfi", storage=f"sqlite:///{tmp_path / 'out' / 'study.db'}")
    trained = [r for r in records(study) if r.family == "soft_prompt" and r.candidate]
    assert trained, "the soft prompt family never ran"
    first = trained[0].candidate["params"]
    assert first["epochs"] == 1 and first["max_train_examples"] == max(8, -(-len(runner.task.train) // 2))
    assert trained[0].attr(LOW_FIDELITY) is True  # marked: halving does not judge the family on it
    later = [r for r in trained[1:] if r.candidate["params"]["epochs"] == 2]
    # Halving over two families: rung 0 at low fidelity, then the survivor at full fidelity.
    assert later and all("max_train_examples" not in r.candidate["params"] for r in later)
    assert not any(r.attr(LOW_FIDELITY) for r in later)


def test_low_fidelity_is_validated_and_can_be_turned_off(training_auto_study, tiny_model) -> None:  # type: ignore[no-untyped-def]
    from optprompt.errors import ConfigError

    bad = spec_from_dict(training_auto_study("lowfi", low_fidelity={"train": 0}))
    with pytest.raises(ConfigError, match=r"strategy\.low_fidelity\.train"):
        StudyRunner(bad, model=tiny_model, progress=False).setup()
    off = StudyRunner(
        spec_from_dict(training_auto_study("lowfi", low_fidelity=False)), model=tiny_model, progress=False
    )
    assert off.setup().strategy._fidelity([]) is None
    on = StudyRunner(spec_from_dict(training_auto_study("lowfi")), model=tiny_model, progress=False)
    assert on.setup().strategy._fidelity([]) == Fidelity(train=0.5, epochs=1)
    with pytest.raises(ValueError, match="Fidelity.train is a share"):
        Fidelity(train=1.5)


def test_a_full_run_is_pruned_against_full_runs_only() -> None:
    """Epoch 1 of a low-fidelity run (a few steps) and epoch 1 of a full run share a step
    number: the pruner of trained runs compares a run with runs of its own fidelity."""
    from optprompt_plugins.auto.pruning import SameFidelityPruner

    median = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    study = optuna.create_study(direction="maximize", pruner=SameFidelityPruner(median))
    for value in (0.37, 0.35):  # two low-fidelity runs, one epoch each
        low = study.ask()
        low.set_user_attr(LOW_FIDELITY, True)
        low.report(value, 1)
        study.tell(low, value)

    full = study.ask()
    full.report(0.30, 1)  # a full run after its first epoch, below every low-fidelity run
    assert median.prune(study, study._storage.get_trial(full._trial_id))  # the plain pruner would stop it
    assert not full.should_prune()  # no full run to compare with yet
    for epoch, value in enumerate((0.6, 0.8, 0.9), start=2):
        full.report(value, epoch)
    study.tell(full, 0.9)

    second = study.ask()
    second.report(0.20, 1)
    assert second.should_prune()  # now judged against the full run's epoch 1 (0.30)
