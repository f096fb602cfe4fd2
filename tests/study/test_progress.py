"""The study's progress line: best value, examples/s and the running trial's note."""

from __future__ import annotations

import re

import pytest

from optprompt.study.progress import EndProgress, StudyProgress


def test_note_shows_until_the_trial_ends() -> None:
    bar = StudyProgress(total=3, enabled=False)
    with bar:
        bar.note("trial 1: lora epoch 1/2, step 3/23, loss 0.512")
        assert bar._desc().endswith("· trial 1: lora epoch 1/2, step 3/23, loss 0.512")
        bar.advance(0.75, examples=10)
        assert bar._desc().startswith("trials, baseline included (best dev 0.750")
        assert "·" not in bar._desc()
        bar.advance(0.5)
        assert bar.best == 0.75 and bar.done == 2


def test_the_end_of_a_study_says_which_step_runs_and_how_long_it_took(
    study_dict: dict, tiny_model, capfd: pytest.CaptureFixture[str]
) -> None:
    """The end of a study (selection, test, constrained generation) is not silent: each step
    is named on stderr with its duration. The bar, the summary line and the storage agree
    on the budget: ``trials: 4`` is the baseline and 3 candidates; the ensemble selection
    combines from the finalists is a fifth trial that does not count."""
    import optuna

    from optprompt.cli.output import trials_line
    from optprompt.config import spec_from_dict
    from optprompt.study import run_study
    from optprompt.trials import records

    spec = spec_from_dict({**study_dict, "strategy": {"name": "template_search", "trials": 4, "max_demos": 1}})
    result = run_study(spec, model=tiny_model, progress=True)
    err = " ".join(capfd.readouterr().err.split())
    assert "trials, baseline included (best dev" in err and " 4/4 " in err, err[-1500:]
    stored = records(optuna.load_study(study_name=spec.name, storage=f"sqlite:///{spec.output}/study.db"))
    counted = [r for r in stored if r.uses_budget]
    assert len(counted) == 4 and counted[0].is_baseline and counted[0].number == 0
    assert [r.is_combined for r in stored if not r.uses_budget] == [True] * (len(stored) - 4)
    assert len(stored) > 4  # here selection combined the finalists
    assert (result.n_trials, result.n_scored) == (4, 4)  # the search's trials: the combined one is not
    assert trials_line(result) == "4 trials (4 of the budget of 4, the baseline included)"
    n_test = result.task.sizes["test"]
    for step in (
        "end of study: picking the winner on fresh evidence",
        f"end of study: scoring the baseline and the winner on test ({n_test} examples) (",
        "end of study: the winner answering by generation constrained to the answers, on test (",
    ):
        assert step in err, err[-1500:]
    assert err.index("picking the winner") < err.index("scoring the baseline") < err.index("constrained to")


def test_end_steps_are_timed_even_when_nothing_is_shown() -> None:
    end = EndProgress(enabled=False)
    with end.step("scoring"):
        pass
    with end.step("constrained generation") as step:
        step.skip()  # nothing to do: neither shown nor timed
    assert list(end.seconds) == ["scoring"] and end.seconds["scoring"] >= 0


def test_a_skipped_step_is_not_shown(capfd: pytest.CaptureFixture[str]) -> None:
    end = EndProgress(enabled=True)
    with end.step("scoring the winner on test"):
        pass
    with end.step("the winner answering by constrained generation") as step:
        step.skip()
    err = capfd.readouterr().err
    # The seconds are the step's wall time: a loaded machine can take one or more for `pass`.
    assert re.search(r"end of study: scoring the winner on test \(\d+ s\)", err) and "constrained" not in err
