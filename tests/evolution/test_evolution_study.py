"""The ``evolution`` strategy in whole studies on the tiny model: GA and DE, lineage,
budget, junk handling, and resuming a stopped run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optprompt_plugins.evolution as evolution_plugin
import optuna
import pytest
from optprompt_plugins.evolution import ATTR, Evolution
from optprompt_plugins.evolution.population import History

from optprompt.config import spec_from_dict
from optprompt.errors import ConfigError
from optprompt.plugins import load_plugins
from optprompt.plugins.manager import get_plugin_manager
from optprompt.strategies.services import StrategyServices
from optprompt.study import StudyRunner
from optprompt.trials import keys as attrs


# --- helpers -------------------------------------------------------------------------
def _plugins():  # type: ignore[no-untyped-def]
    """The evolution plugin registered in code (works before its entry point is installed)."""
    return load_plugins(get_plugin_manager(entry_points=False, extra_plugins=[evolution_plugin]))


def _spec(study_dict: dict, **strategy: Any):  # type: ignore[no-untyped-def]
    options = {
        "name": "evolution",
        "population": 3,
        "generations": 2,
        "max_new_tokens": 12,
        **strategy,
    }
    # The winner is the best on dev: no "combined" ensemble trial among evolution's own
    # (held-out selection and ensembles have their own tests).
    return spec_from_dict({**study_dict, "strategy": options, "selection": {"holdout": 0}})


def _run(spec, tiny_model) -> tuple[dict, StudyRunner]:  # type: ignore[no-untyped-def]
    runner = StudyRunner(spec, plugins=_plugins(), model=tiny_model, progress=False)
    return runner.run().to_dict(), runner


def _trials(spec) -> list[optuna.trial.FrozenTrial]:  # type: ignore[no-untyped-def]
    return optuna.load_study(study_name=spec.name, storage=f"sqlite:///{Path(spec.output) / 'study.db'}").trials


def _history(spec) -> History:  # type: ignore[no-untyped-def]
    s = spec.strategy.options()
    return History(
        _trials(spec),
        population=s["population"],
        generations=s["generations"],
        mode=s.get("mode", "ga"),
        elitism=s.get("elitism"),
    )


def _individuals(spec) -> dict[tuple[int, int], str]:  # type: ignore[no-untyped-def]
    """(generation, slot) -> candidate hash: the evolution's end state."""
    h = _history(spec)
    return {(g, s): ind.hash for g, kids in enumerate(h.children) for s, ind in kids.items()}


class FakeGenerator:
    """A rewriter that answers from a function of (prompt, seed), instantly."""

    def __init__(self, reply: Callable[[str, int], str]) -> None:
        self.reply = reply
        self.calls = 0

    def generate(self, prompts, *, max_new_tokens=64, stop=(), temperature=0.0, seed=0, chat=True):  # type: ignore[no-untyped-def]
        self.calls += 1
        return [self.reply(p, seed) for p in prompts]


@pytest.fixture
def fake_rewriter(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[Callable[[str, int], str]], FakeGenerator]:
    """Replace the study's text generator by a fake one."""

    def install(reply: Callable[[str, int], str]) -> FakeGenerator:
        gen = FakeGenerator(reply)
        monkeypatch.setattr(StrategyServices, "generator", lambda self, ref=None: gen)
        return gen

    return install


def _good(prompt: str, seed: int) -> str:
    return f"Decide whether the review sounds happy or unhappy, variant {seed % 997}."


# --- GA and DE on the tiny model -----------------------------------------------------
def test_ga_on_tiny_model_records_lineage(study_dict: dict, tiny_model) -> None:  # type: ignore[no-untyped-def]
    spec = _spec(study_dict, mode="ga", operators="llm", temperature=1.0, retries=0, max_new_tokens=8)
    result, runner = _run(spec, tiny_model)
    assert result["n_scored"] == 9  # population 3 x (2 generations + 1)
    trials = _trials(spec)
    h = _history(spec)
    assert len(h.populations) == 3 and h.next_slot() is None
    for t in trials:
        if t.user_attrs.get(attrs.ROLE) == "baseline" or attrs.CACHED_FROM in t.user_attrs:
            continue
        ua = t.user_attrs
        assert {
            ATTR["generation"],
            ATTR["individual"],
            ATTR["parents"],
            ATTR["operator"],
            ATTR["attempt"],
            ATTR["rewriter_calls"],
        } <= set(ua)
        gen = ua[ATTR["generation"]]
        if gen > 0:
            assert ua[ATTR["operator"]].startswith("ga:")
            pop = {i.trial for i in h.populations[gen - 1]}
            assert 1 <= len(ua[ATTR["parents"]]) <= 2 and set(ua[ATTR["parents"]]) <= pop
    # GA keeps the best of parents and children: the population's best never drops.
    best = [row["best"] for row in h.fitness()]
    assert best == sorted(best)
    summary = runner.strategy.summary(
        optuna.load_study(study_name=spec.name, storage=f"sqlite:///{Path(spec.output) / 'study.db'}")
    )
    assert summary["generations_done"] == 2 and len(summary["fitness"]) == 3
    # The tiny random model writes garbage: it is rejected and counted, edits take over.
    assert summary["rejected_rewrites"] > 0 and summary["rewriter_calls"] > 0
    assert summary["rewriter_calls"] <= runner.strategy.budget().rewriter_calls
    if "strategy_summary" in result:
        assert json.loads(json.dumps(result["strategy_summary"])) == json.loads(json.dumps(summary))


def test_de_on_tiny_model_replaces_a_parent_only_by_a_better_child(study_dict: dict, tiny_model) -> None:  # type: ignore[no-untyped-def]
    spec = _spec(
        study_dict,
        mode="de",
        operators="mixed",
        population=3,
        generations=2,
        retries=0,
        max_new_tokens=8,
    )
    result, _ = _run(spec, tiny_model)
    assert result["n_scored"] == 9
    h = _history(spec)
    for gen in (1, 2):
        for slot in range(3):
            parent, child = h.populations[gen - 1][slot], h.children[gen][slot]
            assert h.populations[gen][slot] == (child if child.value >= parent.value else parent)
            assert child.operator.startswith("de:")
            assert parent.trial == child.parents[0]  # the target comes first


# --- budget and options --------------------------------------------------------------
def test_budget_is_declared_and_respected(study_dict: dict, tiny_model, fake_rewriter) -> None:  # type: ignore[no-untyped-def]
    gen = fake_rewriter(_good)
    spec = _spec(study_dict, population=3, generations=1, operators="llm", retries=1)
    result, runner = _run(spec, tiny_model)
    budget = runner.strategy.budget()
    assert (budget.trials, budget.dev_scorings) == (6, 6)
    assert budget.rewriter_calls == (3 - 1 + 2 * 3 * 1) * 2
    assert result["n_scored"] == 6
    assert sum(attrs.CACHED_FROM not in t.user_attrs for t in _trials(spec)) == 6
    assert 0 < gen.calls <= budget.rewriter_calls

    # A cap on rewriter calls: the rest of the children come from edits.
    gen = fake_rewriter(_good)
    capped = spec_from_dict(
        {
            **study_dict,
            "output": str(Path(study_dict["output"]) / "capped"),
            "strategy": {**spec.strategy.options(), "name": "evolution", "max_rewriter_calls": 2},
        }
    )
    result, runner = _run(capped, tiny_model)
    assert gen.calls == 2 and result["n_scored"] == 6
    assert runner.strategy.budget().rewriter_calls == 2
    assert _history(capped).fallbacks["rewriter_budget"] >= 1


def test_edit_only_needs_no_rewriter(study_dict: dict, tiny_model, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def no_model(self, ref=None):  # type: ignore[no-untyped-def]
        raise AssertionError("operators: edit must not load a rewriter")

    monkeypatch.setattr(StrategyServices, "generator", no_model)
    spec = _spec(study_dict, operators="edit", mode="de", population=3, generations=1)
    result, runner = _run(spec, tiny_model)
    assert result["n_scored"] == 6 and runner.strategy.budget().rewriter_calls == 0
    ops = [t.user_attrs[ATTR["operator"]] for t in _trials(spec) if ATTR["operator"] in t.user_attrs]
    assert ops and all("llm" not in op for op in ops)


def test_demonstration_sets_and_calibration_evolve_too(study_dict: dict, tiny_model) -> None:  # type: ignore[no-untyped-def]
    spec = _spec(study_dict, operators="edit", max_demos=2, demo_pool=4, calibration="mean")
    result, runner = _run(spec, tiny_model)
    assert result["n_scored"] == 9
    pool = set(runner.strategy.pool)
    assert len(pool) == 4
    cands = [t.user_attrs[attrs.CANDIDATE] for t in _trials(spec)[1:]]
    assert all(set(c["demo_ids"]) <= pool and len(c["demo_ids"]) <= 2 for c in cands)
    assert any(c["demo_ids"] for c in cands)
    assert all(c["calibration"] == "mean" for c in cands)
    # With a calibration, the baseline's own instruction is a seed of generation 0.
    assert cands[0]["instruction"] == spec.task.prompt


@pytest.mark.parametrize(
    "options, key",
    [
        ({"population": 1}, "strategy.population"),
        ({"mode": "de", "population": 2}, "strategy.population"),
        ({"generations": 0}, "strategy.generations"),
        ({"mode": "pso"}, "strategy.mode"),
        ({"trials": 100}, "strategy.trials"),
        ({"elitism": 5}, "strategy.elitism"),
        ({"templates": {"crossover": "Mix {prompt1}."}}, "strategy.templates.crossover"),
        ({"templates": {"mutation": "{prompt}"}}, "strategy.templates.mutation"),
        ({"instructions": ["Classify {input}."]}, "strategy.instructions.0"),
    ],
)
def test_bad_options_name_their_key(study_dict: dict, tiny_model, options: dict, key: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        _run(_spec(study_dict, **options), tiny_model)


# --- junk ----------------------------------------------------------------------------
def test_junk_rewrites_are_counted_and_never_crash(study_dict: dict, tiny_model, fake_rewriter) -> None:  # type: ignore[no-untyped-def]
    from optprompt.tasks.build import build_task

    example = next(iter(build_task(spec_from_dict(study_dict).task, plugins=_plugins(), seed=0).dev)).input
    junk = [
        "",
        "{input}",
        f"Review: {example} Answer: positive",
        "positive",
        "tone " * 300,
        "Instruction 1: x y\nInstruction 2: z w",
        "\ufffd\x01\x02",
        "Label it {input} please, {labels}.",
    ]
    fake_rewriter(lambda prompt, seed: junk[seed % len(junk)])
    spec = _spec(study_dict, operators="llm", population=3, generations=1)
    result, runner = _run(spec, tiny_model)
    assert result["n_scored"] == 6
    h = _history(spec)
    assert sum(h.rejected.values()) > 0 and len(h.rejected) >= 3
    for t in _trials(spec):
        instruction = t.user_attrs[attrs.CANDIDATE]["instruction"]
        assert "{input}" not in instruction and example not in instruction
    assert set(h.rejected) <= {
        "empty",
        "garbled",
        "unchanged",
        "leaked_input",
        "leaked_answer",
        "runaway_length",
        "echoed_operator",
        "duplicate",
    }


def test_a_failing_rewriter_falls_back_to_edits(study_dict: dict, tiny_model, fake_rewriter) -> None:  # type: ignore[no-untyped-def]
    def broken(prompt: str, seed: int) -> str:
        raise RuntimeError("CUDA out of memory")

    fake_rewriter(broken)
    spec = _spec(study_dict, operators="llm", population=3, generations=1)
    result, _ = _run(spec, tiny_model)
    assert result["n_scored"] == 6 and result.get("trial_states", {}).get("fail", 0) == 0
    assert _history(spec).fallbacks["rewriter_error"] >= 1


# --- resume --------------------------------------------------------------------------
def _on_dev_scoring(monkeypatch, hook: Callable[[int], None]) -> None:  # type: ignore[no-untyped-def]
    """Call ``hook(n)`` when the study starts scoring a candidate on dev for the n-th time."""
    from optprompt.scoring.evaluate import Evaluator

    real = Evaluator.iter_evaluate
    seen: list[int] = []

    def iter_evaluate(self, cand, examples, split="dev", **kw):  # type: ignore[no-untyped-def]
        if split == "dev":
            seen.append(1)
            hook(len(seen))
        yield from real(self, cand, examples, split, **kw)

    monkeypatch.setattr(Evaluator, "iter_evaluate", iter_evaluate)


def test_resume_after_a_smaller_budget_continues_the_same_evolution(
    study_dict: dict,
    tiny_model,
    fake_rewriter,  # type: ignore[no-untyped-def]
    monkeypatch,
) -> None:
    fake_rewriter(_good)
    full = _spec(study_dict, population=3, generations=1)
    _run(full, tiny_model)
    expected = _individuals(full)
    assert len(expected) == 6

    out = str(Path(study_dict["output"]) / "resumed")
    part = spec_from_dict(
        {
            **study_dict,
            "output": out,
            "strategy": {**full.strategy.options(), "name": "evolution", "trials": 4},
        }
    )
    _run(part, tiny_model)
    assert len(_individuals(part)) == 4  # stopped in the middle of generation 1
    scored: list[str] = []
    _on_dev_scoring(monkeypatch, lambda n: scored.append("dev"))
    rest = spec_from_dict({**study_dict, "output": out, "strategy": {**full.strategy.options(), "name": "evolution"}})
    _run(rest, tiny_model)
    assert _individuals(rest) == expected  # the same individuals as the uninterrupted run
    assert scored.count("dev") <= 2  # only the two missing individuals were scored on dev


def _stop_at_dev_scoring(monkeypatch, n: int, exc: BaseException) -> None:  # type: ignore[no-untyped-def]
    """Raise ``exc`` inside the ``n``-th dev scoring (a killed or interrupted run)."""

    def stop(i: int) -> None:
        if i == n:
            raise exc

    _on_dev_scoring(monkeypatch, stop)


@pytest.mark.parametrize("how", ["killed", "ctrl-c"])
def test_resume_mid_generation_ends_like_an_uninterrupted_run(
    study_dict: dict,
    tiny_model,
    fake_rewriter,  # type: ignore[no-untyped-def]
    monkeypatch,
    how: str,
) -> None:
    fake_rewriter(_good)
    base = _spec(study_dict, mode="de", population=3, generations=1)
    _run(base, tiny_model)
    expected = _individuals(base)

    spec = spec_from_dict(
        {
            **study_dict,
            "output": str(Path(study_dict["output"]) / how),
            "strategy": {**base.strategy.options(), "name": "evolution"},
        }
    )
    with monkeypatch.context() as m:
        # Trial 4 is individual 1 of generation 1; a kill leaves it running (nothing recorded).
        _stop_at_dev_scoring(m, 5, SystemExit(9) if how == "killed" else KeyboardInterrupt())
        with pytest.raises(SystemExit if how == "killed" else KeyboardInterrupt):
            _run(spec, tiny_model)
    trials = _trials(spec)
    if how == "killed":
        assert trials[-1].state == optuna.trial.TrialState.RUNNING
        # What the heartbeat check does to a dead worker's trial: failed, without a reason.
        study = optuna.load_study(study_name=spec.name, storage=f"sqlite:///{Path(spec.output) / 'study.db'}")
        study._storage.set_trial_state_values(trials[-1]._trial_id, optuna.trial.TrialState.FAIL)
    else:
        assert trials[-1].state == optuna.trial.TrialState.FAIL
    assert len(_individuals(spec)) == 4
    result, _ = _run(spec, tiny_model)
    assert _individuals(spec) == expected
    assert result["n_scored"] == 6


# --- registration --------------------------------------------------------------------
def test_registered_through_the_entry_point_group() -> None:
    plugins = load_plugins()
    if "evolution" not in plugins.strategies:
        pytest.skip(
            "entry point optprompt:evolution is not installed yet: add "
            'evolution = "optprompt_plugins.evolution" under [project.entry-points.optprompt] '
            "in pyproject.toml and reinstall (pip install -e .)"
        )
    entry = plugins.strategies.get("evolution")
    assert entry.obj is Evolution
    assert entry.description.startswith("Evolutionary prompt search")
    assert "entry point optprompt:evolution" in entry.source


def test_a_budget_in_minutes_runs_generations_until_it_is_spent(study_dict: dict, tiny_model) -> None:  # type: ignore[no-untyped-def]
    """``budget: {minutes: M}`` replaces the generation count: generations go on (up to
    ``generations``, default MINUTES_GENERATIONS) until the minutes of trial time are spent."""
    from optprompt_plugins.evolution.config import MINUTES_GENERATIONS, EvolutionConfig

    config = EvolutionConfig.model_validate({"budget": {"minutes": 3}})
    assert config.generations == MINUTES_GENERATIONS and config.trials is None and config.minutes == 3

    # Spent at once: the baseline's own time uses the budget up; the study says so.
    spent = _spec(study_dict, operators="edit", budget={"minutes": 0.0001})
    result, _ = _run(spent, tiny_model)
    assert result["n_scored"] == 1
    assert any("budget of 0.0001 minutes is spent" in w for w in result["warnings"])

    # Minutes to spare: the bound on generations ends it, 3 x (1 + 1) individuals.
    roomy = {**study_dict, "output": str(Path(study_dict["output"]) / "roomy")}
    result, _ = _run(_spec(roomy, operators="edit", generations=1, budget={"minutes": 30}), tiny_model)
    assert result["n_scored"] == 6
