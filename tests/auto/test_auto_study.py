"""The ``auto`` strategy: one study over template search, evolution and soft prompts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import optuna
import pytest
from optprompt_plugins.auto.schedule import halving, next_family

from optprompt.cli.main import main as cli_main
from optprompt.config import spec_from_dict
from optprompt.errors import ConfigError
from optprompt.study import StudyRunner
from optprompt.trials import TrialRecord
from optprompt.trials import keys as attrs

pytestmark = pytest.mark.filterwarnings("ignore:strategy '(evolution|auto)' is experimental")

FAMILIES = {
    "template_search": {"max_demos": 1, "demo_pool": 4},
    "evolution": {"population": 3, "generations": 1, "operators": "edit"},
    "soft_prompt": {"methods": ["lora"], "epochs": [1, 1], "lora_r": [4]},
}


def _spec(study_dict: dict, **strategy):  # type: ignore[no-untyped-def]
    return spec_from_dict({**study_dict, "strategy": {"name": "auto", **FAMILIES, **strategy}})


def _trials(spec) -> list[optuna.trial.FrozenTrial]:  # type: ignore[no-untyped-def]
    return optuna.load_study(study_name=spec.name, storage=f"sqlite:///{Path(spec.output) / 'study.db'}").trials


def test_one_study_spans_the_families_and_compares_them_on_test(study_dict, tiny_model, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    spec = _spec(study_dict, trials=9)
    runner = StudyRunner(spec, model=tiny_model, progress=False)
    result = runner.run().to_dict()
    trials = _trials(spec)
    families = [t.user_attrs.get(attrs.FAMILY) for t in trials]
    # Cheapest first: template search, then evolution, then soft prompts (budget in trials: 8 after the baseline).
    seen = [f for i, f in enumerate(families) if f and f not in families[:i]]
    assert seen == ["template_search", "evolution", "soft_prompt"]
    assert families[0] is None and trials[0].user_attrs[attrs.ROLE] == "baseline"
    assert result["n_scored"] == 9
    # Parameters of each family carry its prefix: the search spaces never clash.
    assert all(p.startswith(f"{t.user_attrs[attrs.FAMILY]}.") for t in trials[1:] for p in t.params)
    # Soft prompts train around the best discrete prompt found before them.
    discrete = [t for t in trials if t.state.name == "COMPLETE" and t.user_attrs.get(attrs.FAMILY) != "soft_prompt"]
    best = max(discrete, key=lambda t: (t.values[0], -t.number)).user_attrs[attrs.CANDIDATE]
    soft = next(t for t in trials if t.user_attrs.get(attrs.FAMILY) == "soft_prompt")
    assert soft.user_attrs[attrs.CANDIDATE]["instruction"] == best["instruction"]
    assert soft.user_attrs[attrs.CANDIDATE]["demo_ids"] == best["demo_ids"]

    # result.json: each family's best on dev, scored on test, with its p-value against the baseline.
    fams = result["families"]
    assert list(fams) == ["template_search", "evolution", "soft_prompt"]
    for name, fam in fams.items():
        assert fam["best"]["test"]["n"] == len(runner.task.test)
        assert 0 <= fam["comparison"]["p_value"] <= 1
        assert fam["best"]["trial"] in [t.number for t in trials if t.user_attrs.get(attrs.FAMILY) == name]
    winner = max(fams.values(), key=lambda f: (f["best"]["dev"]["value"], -f["best"]["trial"]))
    if result["best"]["trial"] != 0:
        assert result["best"]["dev"]["value"] == winner["best"]["dev"]["value"]

    # show prints the families side by side; export writes the winner in its own kind's format.
    assert cli_main(["show", spec.output]) == 0
    shown = capsys.readouterr().out
    assert "families (best of each on dev" in shown and "soft_prompt" in shown
    schedule = result["strategy_summary"]["schedule"]
    assert schedule["kind"] == "halving" and schedule["rungs"] == 3
    assert f"successive halving: rung {schedule['rung'] + 1} of 3" in shown
    out = tmp_path / "winner"
    assert cli_main(["export", spec.output, "--to", str(out)]) == 0
    kind = json.loads((out / "optprompt_export.json").read_text())["kind"]
    assert kind == (result["best"]["candidate"].get("kind") or "prompt")


def test_a_minutes_budget_ends_the_study_before_trials(study_dict, tiny_model) -> None:  # type: ignore[no-untyped-def]
    spec = _spec(study_dict, trials=40, budget={"minutes": 0.001}, evolution=False, soft_prompt=False)
    result = StudyRunner(spec, model=tiny_model, progress=False).run().to_dict()
    assert result["n_scored"] < 40
    assert result["strategy_summary"]["budget"]["unit"] == "minutes"


def T(family: str, reason: str = "", value: float = 0.5, dev_scored: int = 0) -> TrialRecord:  # noqa: N802
    """A finished trial as the schedules read it."""
    state = optuna.trial.TrialState.PRUNED if reason else optuna.trial.TrialState.COMPLETE
    return TrialRecord(
        number=0,
        state=state,
        values=None if reason else (value,),
        family=family,
        fail_reason=reason or None,
        dev_scored=dev_scored,
    )


def test_schedule_rolls_unspent_shares_over() -> None:

    shares = {"template_search": 0.5, "evolution": 0.5}
    fams = ["template_search", "evolution"]
    assert next_family([], fams, shares, 4, "trials") == "template_search"
    assert next_family([T("template_search")] * 2, fams, shares, 4, "trials") == "evolution"
    stuck = [T("evolution", "rejected: done")] * 3
    assert next_family([T("template_search")] * 2 + stuck, fams, shares, 4, "trials") == "template_search"
    assert next_family([T("template_search")] * 4, fams, shares, 4, "trials") is None


ALL = ["template_search", "evolution", "soft_prompt"]


def test_successive_halving_keeps_the_better_families() -> None:
    """9 trials over 3 families, eta 2: rungs of 3 trials; 3 families explore, the best 2
    share the next rung, the best one takes the last."""
    ts, evo, soft = (lambda v: T("template_search", value=v)), (lambda v: T("evolution", value=v)), None
    soft = lambda v: T("soft_prompt", value=v)  # noqa: E731
    history: list = []
    assert halving(history, ALL, 9, "trials").next == "template_search"  # cheapest first
    history.append(ts(0.5))
    assert halving(history, ALL, 9, "trials").next == "evolution"
    history.append(evo(0.7))
    assert halving(history, ALL, 9, "trials").next == "soft_prompt"
    history.append(soft(0.9))
    state = halving(history, ALL, 9, "trials")
    assert (state.rung, state.survivors, state.eliminated) == (1, ["evolution", "soft_prompt"], {"template_search": 0})
    assert state.next == "evolution"  # 1.5 trials each in this rung, cheapest first
    history.append(evo(0.6))
    assert halving(history, ALL, 9, "trials").next == "evolution"
    history.append(evo(0.6))
    assert halving(history, ALL, 9, "trials").next == "soft_prompt"
    history.append(soft(0.8))
    state = halving(history, ALL, 9, "trials")
    assert (state.rung, state.next) == (1, "soft_prompt")  # its share is 1.5 trials: a second one
    history.append(soft(0.8))
    state = halving(history, ALL, 9, "trials")
    assert (state.rung, state.survivors, state.next) == (2, ["soft_prompt"], "soft_prompt")
    history += [soft(0.8)] * 2
    assert halving(history, ALL, 9, "trials").next is None  # the budget is spent


def test_successive_halving_moves_on_when_a_family_is_stuck() -> None:
    # Template search ran out of new candidates: its rung share goes to the others.
    rejected = [T("template_search", "rejected: repeat")] * 3
    state = halving(rejected, ALL, 9, "trials")
    assert state.rung == 0 and state.next == "evolution"
    # The lone survivor stuck: a dropped family that still has candidates goes on.
    history = [T("template_search", value=0.9), T("evolution", value=0.1), T("soft_prompt", value=0.2)]
    history += [T("template_search", value=0.9)] * 2 + [T("soft_prompt", value=0.2)] * 2
    history += [T("template_search", "rejected: repeat")] * 3
    state = halving(history, ALL, 9, "trials")
    assert state.eliminated == {"evolution": 0, "soft_prompt": 1}
    assert state.survivors == ["template_search"] and state.next == "soft_prompt"  # the last one dropped


def test_halving_with_one_family_is_a_plain_budget() -> None:
    assert halving([], ["evolution"], 2, "trials").next == "evolution"
    assert halving([T("evolution")] * 2, ["evolution"], 2, "trials").next is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"template_search": False, "evolution": False, "soft_prompt": False}, "every family is off"),
        ({"budget": {"minutes": 1, "dev_examples": 10}}, "give minutes or dev_examples, not both"),
        ({"schedule": "shares", "shares": {"grid": 1.0}}, "unknown families"),
        ({"shares": {"evolution": 1.0}}, "shares apply to 'schedule: shares'"),
        ({"schedule": "bandit"}, "schedule"),
        ({"template_search": {"nope": 1}}, "nope"),
    ],
)
def test_bad_options_are_clear_errors(study_dict, tiny_model, options, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message):
        StudyRunner(_spec(study_dict, **options), model=tiny_model, progress=False).run().to_dict()


def test_the_report_shows_the_families_side_by_side(study_dict, tiny_model) -> None:  # type: ignore[no-untyped-def]
    from optprompt.report import write_report

    spec = _spec(study_dict, trials=5, evolution=False, soft_prompt={"methods": ["lora"], "epochs": [1, 1]})
    result = StudyRunner(spec, model=tiny_model, progress=False).run().to_dict()
    page = write_report(spec.output).read_text()
    assert 'id="families-table"' in page
    for name in result["families"]:
        assert f'data-family="{name}"' in page


def t(family: str, examples: int, value: float) -> TrialRecord:
    return T(family, value=value, dev_scored=examples)


def test_a_long_trial_does_not_skip_a_rung() -> None:
    """A training trial that runs far past its rung's budget ends that rung only: the next
    rung gets an equal part of what is left, and two families still meet in it."""
    history = [t("template_search", 40, 0.7), t("evolution", 40, 0.5), t("soft_prompt", 200, 0.6)]
    state = halving(history, ALL, 300, "dev_examples")
    assert state.rung == 1 and state.survivors == ["template_search", "soft_prompt"]
    assert state.next == "template_search"  # (300 - 280) / 2 rungs left / 2 families = 5 each
    history.append(t("template_search", 15, 0.7))
    assert halving(history, ALL, 300, "dev_examples").next == "soft_prompt"


def test_a_family_that_ran_long_does_not_take_the_next_familys_share() -> None:
    """Rungs end when every family has had its share, not when the rung's budget is spent:
    a cheap family's long trial (here template search, 3x its share) does not end the rung
    before the family that trains, scheduled last, ran at all."""
    history = [t("template_search", 10, 0.6), t("template_search", 100, 0.7)]
    state = halving(history, ALL, 300, "dev_examples")  # 100 a rung, 33 a family
    assert state.rung == 0 and state.next == "evolution"
    history.append(t("evolution", 40, 0.5))
    state = halving(history, ALL, 300, "dev_examples")
    assert state.rung == 0 and state.next == "soft_prompt"  # 150 spent, but soft_prompt has not run
    history.append(t("soft_prompt", 40, 0.8))
    state = halving(history, ALL, 300, "dev_examples")
    assert state.rung == 1 and state.survivors == ["template_search", "soft_prompt"]


def test_halving_never_drops_a_training_family_on_one_trial() -> None:
    """A family that trains keeps its place in the next rung until two of its trials finished,
    however its first one scored; then it is judged like the others."""
    history = [T("template_search", value=0.9), T("evolution", value=0.8), T("soft_prompt", value=0.1)]
    plain = halving(history, ALL, 9, "trials")
    assert plain.survivors == ["template_search", "evolution"]  # without the rule: dropped on one trial
    kept = halving(history, ALL, 9, "trials", training=["soft_prompt"])
    assert "soft_prompt" in kept.survivors and "soft_prompt" not in kept.eliminated
    judged = halving([*history, T("soft_prompt", value=0.1)], ALL, 9, "trials", training=["soft_prompt"])
    assert judged.rung == 1 and "soft_prompt" in judged.survivors  # its second trial runs in rung 2


def test_halving_never_drops_a_training_family_on_low_fidelity_evidence_alone() -> None:
    """Low-fidelity runs (a part of train, one epoch) score far below what the same adapter
    reaches trained in full: a family that trains stays in until one of its trials ran at
    full fidelity, and is then judged on its best like the others."""
    from optprompt_plugins.auto.schedule import LOW_FIDELITY

    def low(value: float) -> TrialRecord:
        return dataclasses.replace(T("soft_prompt", value=value), attrs={LOW_FIDELITY: True})

    tpl, evo = T("template_search", value=0.8), T("evolution", value=0.6)
    history = [tpl, tpl, evo, evo, low(0.47), low(0.27)]  # rung 0: two trials a family
    plain = halving(history, ALL, 18, "trials", training=["soft_prompt"])
    assert plain.rung == 1 and plain.survivors == ALL  # last on dev, but only at low fidelity
    full = T("soft_prompt", value=0.2)
    judged = halving([*history, tpl, tpl, evo, evo, full, full], ALL, 18, "trials", training=["soft_prompt"])
    assert judged.rung == 2 and judged.survivors == ["template_search"]
    assert judged.eliminated == {"evolution": 1, "soft_prompt": 1}
    # the same history without the marks: the family is judged at the end of rung 0
    unmarked = [tpl, tpl, evo, evo, T("soft_prompt", value=0.47), T("soft_prompt", value=0.27)]
    assert halving(unmarked, ALL, 18, "trials", training=["soft_prompt"]).eliminated == {"soft_prompt": 0}
