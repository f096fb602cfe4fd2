from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from optprompt.config import spec_from_dict
from optprompt.errors import ConfigError, OptpromptError, PluginError
from optprompt.plugins import hookimpl, load_plugins
from optprompt.plugins.manager import get_plugin_manager
from optprompt.prompts import PromptCandidate
from optprompt.strategies import BaseStrategy
from optprompt.study import RESULT_FILE, StudyRunner, run_study
from optprompt.trials import keys as attrs


def _trials(out: Path, name: str = "tiny-study") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}").trials


def test_study_runs_end_to_end_and_writes_result(study_dict: dict, tiny_model) -> None:
    from optprompt.results import PairedComparison, StudyResult

    spec = spec_from_dict(study_dict)
    typed = run_study(spec, model=tiny_model, progress=False)
    assert isinstance(typed, StudyResult) and isinstance(typed.comparison, PairedComparison)
    result = typed.to_dict()
    out = Path(spec.output)
    on_disk = json.loads((out / RESULT_FILE).read_text())
    assert on_disk == json.loads(json.dumps(result))
    assert result["n_scored"] == 6  # distinct candidates scored: the budget
    searched = [t for t in _trials(out) if t.user_attrs.get(attrs.ROLE) != "combined"]  # not the end's ensemble
    assert result["n_trials"] == len(searched) >= 6
    for role in ("baseline", "best"):
        assert {"dev", "test", "prompt"} <= set(result[role])
        assert 0.0 <= result[role]["dev"]["value"] <= 1.0
        assert 0.0 <= result[role]["test"]["value"] <= 1.0
    # The winner is the baseline or a finalist picked on the held-out part of dev.
    assert result["best"]["trial"] in [0] + [f["trial"] for f in result["selection"]["finalists"]]
    assert result["baseline"]["trial"] == 0
    assert "{input}" in result["baseline"]["prompt"]
    trials = _trials(out)
    assert trials[0].user_attrs[attrs.ROLE] == "baseline"
    assert all(attrs.HASH in t.user_attrs for t in trials)
    assert result["comparison"]["n"] == result["task"]["sizes"]["test"]
    assert (out / "predictions.jsonl").read_text().count('"role": "baseline"') == result["task"]["sizes"]["test"]


def test_rerun_resumes_without_rescoring(study_dict: dict, tiny_model, monkeypatch) -> None:
    spec = spec_from_dict(study_dict)
    first = run_study(spec, model=tiny_model, progress=False).to_dict()
    out = Path(spec.output)
    n_before = len(_trials(out))
    # Same spec again: budget already spent, no new trial, same answer.
    again = run_study(spec, model=tiny_model, progress=False).to_dict()
    assert len(_trials(out)) == n_before
    assert again["best"]["hash"] == first["best"]["hash"]
    # A larger budget adds only the missing trials.
    bigger = spec_from_dict({**study_dict, "strategy": {**study_dict["strategy"], "trials": 9}})
    calls = []
    from optprompt.scoring.evaluate import Evaluator

    real = Evaluator.evaluate
    monkeypatch.setattr(
        Evaluator,
        "evaluate",
        lambda self, c, ex, split="dev", **kw: calls.append(split) or real(self, c, ex, split, **kw),
    )
    run_study(bigger, model=tiny_model, progress=False)
    searched = [t for t in _trials(out) if t.user_attrs.get(attrs.ROLE) != "combined"]  # not the end's ensembles
    assert sum(attrs.CACHED_FROM not in t.user_attrs for t in searched) == 9
    assert calls.count("dev") <= 3  # at most the three new trials were scored on dev


def test_same_seed_is_reproducible(study_dict: dict, tiny_model, tmp_path: Path) -> None:
    a = run_study(spec_from_dict(study_dict), model=tiny_model, progress=False).to_dict()
    b = run_study(
        spec_from_dict({**study_dict, "output": str(tmp_path / "other")}), model=tiny_model, progress=False
    ).to_dict()
    ta = [t.user_attrs[attrs.HASH] for t in _trials(Path(study_dict["output"]))]
    tb = [t.user_attrs[attrs.HASH] for t in _trials(tmp_path / "other")]
    assert ta == tb
    assert a["best"]["test"]["metrics"] == b["best"]["test"]["metrics"]


def test_resume_with_different_model_or_task_is_refused(study_dict: dict, tiny_model, tiny_plain_model_dir) -> None:
    run_study(spec_from_dict(study_dict), model=tiny_model, progress=False)
    changed = spec_from_dict({**study_dict, "model": str(tiny_plain_model_dir)})
    with pytest.raises(ConfigError, match="different model"):
        run_study(changed, model=tiny_model, progress=False)


class _Flaky(BaseStrategy):
    """Raises on every other proposal."""

    name = "flaky"

    def propose(self, trial):  # type: ignore[no-untyped-def]
        if trial.number % 2 == 0:
            raise RuntimeError("boom in propose")
        x = trial.suggest_int("x", 0, 1000)
        return PromptCandidate(
            instruction=f"Say it #{x}.",
            template="Input: {input}\nAnswer:",
            verbalizer=tuple((lbl, lbl) for lbl in self.context.task.labels),
        )


class _FlakyPlugin:
    @hookimpl
    def register_strategies(self, register):  # type: ignore[no-untyped-def]
        register(_Flaky)


def test_failing_trial_is_recorded_and_study_goes_on(study_dict: dict, tiny_model) -> None:
    plugins = load_plugins(get_plugin_manager(extra_plugins=[_FlakyPlugin()]))
    spec = spec_from_dict({**study_dict, "strategy": {"name": "flaky", "trials": 5}})
    result = StudyRunner(spec, plugins=plugins, model=tiny_model, progress=False).run().to_dict()
    trials = _trials(Path(spec.output))
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert [t.number for t in failed] == [2, 4]
    assert all(t.user_attrs[attrs.FAIL_REASON] == "RuntimeError: boom in propose" for t in failed)
    assert result["trial_states"] == {"complete": 3, "fail": 2}
    assert result["n_trials"] == 5
    assert result["failure_reasons"] == {"RuntimeError": 2}


def test_misspelt_strategy_and_metric_get_a_suggestion(study_dict: dict, tiny_model) -> None:
    spec = spec_from_dict({**study_dict, "strategy": {"name": "tempate_search"}})
    with pytest.raises(PluginError, match=r"unknown strategy 'tempate_search' \(did you mean 'template_search'\?\)"):
        run_study(spec, model=tiny_model, progress=False)
    spec = spec_from_dict({**study_dict, "task": {**study_dict["task"], "metric": "acuracy"}})
    with pytest.raises(PluginError, match=r"unknown metric 'acuracy' \(did you mean 'accuracy'\?\)"):
        run_study(spec, model=tiny_model, progress=False)
    spec = spec_from_dict({**study_dict, "task": {**study_dict["task"], "format": "jsnl"}})
    with pytest.raises(PluginError, match=r"unknown task loader 'jsnl' \(did you mean 'jsonl'\?\)"):
        run_study(spec, model=tiny_model, progress=False)


def test_unknown_strategy_lists_known(study_dict: dict, tiny_model) -> None:
    spec = spec_from_dict({**study_dict, "strategy": {"name": "nope"}})
    with pytest.raises(PluginError, match=r"unknown strategy 'nope'; known: .*template_search"):
        run_study(spec, model=tiny_model, progress=False)


def test_unknown_strategy_option_is_named(study_dict: dict, tiny_model) -> None:
    spec = spec_from_dict({**study_dict, "strategy": {"name": "template_search", "max_demo": 3}})
    with pytest.raises(
        ConfigError, match=r"strategy.max_demo: unknown key \(did you mean 'max_demos'( or 'demos')?\?\)"
    ):
        run_study(spec, model=tiny_model, progress=False)


def test_unknown_model_name_lists_registered(study_dict: dict) -> None:
    spec = spec_from_dict({**study_dict, "model": "smollm3-huge"})
    with pytest.raises(OptpromptError, match=r"unknown model 'smollm3-huge'.*smollm2-135m-instruct"):
        run_study(spec, progress=False)


def test_corrupt_storage_gives_clear_error(study_dict: dict, tiny_model) -> None:
    out = Path(study_dict["output"])
    out.mkdir(parents=True)
    (out / "study.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(OptpromptError, match="cannot open study storage"):
        run_study(spec_from_dict(study_dict), model=tiny_model, progress=False)
