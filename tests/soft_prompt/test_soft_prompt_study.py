"""The ``soft_prompt`` strategy in whole studies on the tiny model: adapters saved and
exported, reload exactness, pruning, resume, bad hyperparameters, templates."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optprompt_plugins.soft_prompt import SoftPrompt
from optprompt_plugins.soft_prompt.strategy import HISTORY_ATTR, TRAINING_ATTR
from optprompt_testdata import soft_study_dict, write_sentiment_jsonl

import optprompt
from optprompt.adapters import MANIFEST_FILE, SoftCandidate
from optprompt.cli.main import main as cli_main
from optprompt.config import spec_from_dict
from optprompt.config.spec import SelectionSpec
from optprompt.errors import ConfigError
from optprompt.kinds.soft import SoftKind
from optprompt.kinds.soft import SoftPrompt as SoftPrompt_
from optprompt.plugins import load_plugins
from optprompt.registry import PromptRegistry, RegistryError
from optprompt.study import StudyRunner
from optprompt.testing.fixtures import write_labelled_jsonl
from optprompt.trials import keys as attrs

FAST = {"methods": ["prompt_tuning", "lora"], "epochs": [1, 2], "virtual_tokens": [4], "batch_size": 8}


def _spec(tmp_path: Path, tiny_model_dir: Path, name: str = "out", n: int = 48, **strategy):  # type: ignore[no-untyped-def]
    data = tmp_path / "soft.jsonl"
    if not data.exists():
        write_sentiment_jsonl(data, n=n)
    return spec_from_dict(soft_study_dict(data, tiny_model_dir, tmp_path / name, **strategy))


def _run(spec, tiny_model) -> tuple[dict, StudyRunner]:  # type: ignore[no-untyped-def]
    runner = StudyRunner(spec, model=tiny_model, progress=False)
    return runner.run().to_dict(), runner


def _trials(spec) -> list[optuna.trial.FrozenTrial]:  # type: ignore[no-untyped-def]
    return optuna.load_study(study_name=spec.name, storage=f"sqlite:///{Path(spec.output) / 'study.db'}").trials


def test_study_trains_saves_and_exports_the_winning_adapter(tmp_path, tiny_model_dir, tiny_model, capsys) -> None:  # type: ignore[no-untyped-def]
    spec = _spec(tmp_path, tiny_model_dir, trials=4, **FAST)
    # The best adapter on dev wins, so that its export is what is checked here (held-out
    # selection and do-no-harm have their own tests).
    spec = spec.model_copy(update={"selection": SelectionSpec(holdout=0)})
    result, runner = _run(spec, tiny_model)
    trials = _trials(spec)
    soft = [t for t in trials if t.user_attrs.get(attrs.ROLE) != "baseline"]
    assert len(soft) == 3 and all(t.state == optuna.trial.TrialState.COMPLETE for t in soft)
    for t in soft:
        cand = SoftCandidate.from_dict(t.user_attrs[attrs.CANDIDATE])
        history = t.user_attrs[HISTORY_ATTR]
        assert [h["epoch"] for h in history] == list(range(1, len(history) + 1))
        assert t.value == max(h["dev"] for h in history)  # the best epoch's dev score
        assert t.user_attrs[attrs.DEV_SCORED] == len(runner.dev) * len(history)  # the part of dev searched
        assert t.user_attrs[TRAINING_ATTR]["trainable_parameters"] > 0
        adapter = Path(spec.output) / t.user_attrs[attrs.ARTIFACT]
        assert adapter.name == cand.hash
        assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
        manifest = json.loads((adapter / MANIFEST_FILE).read_text())
        assert manifest["model"]["fingerprint"] == tiny_model.fingerprint
        assert manifest["scores"]["dev"]["value"] == t.value
        assert manifest["params"] == cand.param_map
        assert manifest["card"]["template"] == cand.template
    best = result["best"]
    assert best["candidate"]["kind"] == "soft" and best["artifact"].startswith("artifacts/adapters/")
    assert result["strategy_summary"]["methods"]
    # The winner's manifest in the study describes the adapter as trained (result.json is the
    # study's record: the test score is there); the export has everything.
    winner = json.loads((Path(spec.output) / best["artifact"] / MANIFEST_FILE).read_text())
    assert winner["scores"]["test"] is None and winner["scores"]["dev"]["value"] == best["dev"]["value"]
    out = tmp_path / "export"
    assert cli_main(["export", spec.output, "--to", str(out)]) == 0
    assert {"adapter_config.json", "adapter_model.safetensors", MANIFEST_FILE, "prompt_card.json", "prompt.txt"} <= {
        f.name for f in out.iterdir()
    }
    exported = json.loads((out / MANIFEST_FILE).read_text())
    assert (
        exported["scores"]["test"] == best["test"] and exported["baseline_scores"]["dev"] == result["baseline"]["dev"]
    )

    # The CLI shows it as an adapter; the prompt registry (text only) refuses it clearly.
    capsys.readouterr()
    assert cli_main(["show", spec.output, "--wide"]) == 0  # long fields in full
    shown = capsys.readouterr().out
    assert "--- adapter: " in shown and best["artifact"] in shown and "adapter and its manifest" not in shown, shown
    with pytest.raises(RegistryError, match="the winner is a trained adapter"):
        PromptRegistry(tmp_path / "registry").add(spec.output, "soft")

    # The HTML report draws each run's per-epoch dev scores and names the adapter.
    from optprompt.report import write_report

    page = write_report(spec.output).read_text()
    assert 'id="intermediate_values"' in page and "Learning curves" in page
    assert "trained adapter: " in page

    # Reloading the exported adapter onto the base model (optprompt.load: one call for every
    # kind's export) scores dev and test exactly as the study did.
    task = runner.task
    with optprompt.load(out, tiny_model) as sp:
        assert isinstance(sp, SoftPrompt_)
        for split, want in (("dev", best["dev"]["value"]), ("test", best["test"]["value"])):
            examples = getattr(task, split)
            preds = sp.predict([e.input for e in examples])
            assert sum(p == e.target for p, e in zip(preds, examples)) / len(examples) == want
        reloaded = sp.loglikelihoods([e.input for e in task.test])
    logged = [json.loads(line) for line in (Path(spec.output) / "predictions.jsonl").read_text().splitlines()]
    study_logliks = [p["logliks"] for p in logged if p["role"] == "best"]
    by_id = {e.id: i for i, e in enumerate(task.test)}
    for p, ll in zip([p for p in logged if p["role"] == "best"], study_logliks):
        assert reloaded[by_id[p["id"]]] == pytest.approx(ll, abs=1e-5)


def test_base_model_is_untouched_by_a_study(tmp_path, tiny_model_dir, tiny_model) -> None:  # type: ignore[no-untyped-def]
    import torch

    before = {n: p.detach().clone() for n, p in tiny_model.model.named_parameters()}
    spec = _spec(tmp_path, tiny_model_dir, trials=3, methods=["lora", "prefix_tuning"], epochs=[1, 1])
    _run(spec, tiny_model)
    after = dict(tiny_model.model.named_parameters())
    assert set(after) == set(before)  # no LoRA modules left behind
    assert all(torch.equal(after[n], p) for n, p in before.items())


def _memorisable_runner(tmp_path: Path, tiny_model_dir: Path, tiny_model) -> StudyRunner:  # type: ignore[no-untyped-def]
    """A set-up study whose dev split holds the train texts: a run that learns shows it
    after one epoch, even on a random tiny model."""
    rows = [json.loads(line) for line in write_labelled_jsonl(tmp_path / "cues.jsonl", n=24).read_text().splitlines()]
    files = {}
    for split in ("train", "dev", "test"):
        files[split] = str(tmp_path / f"{split}.jsonl")
        Path(files[split]).write_text("".join(json.dumps({**r, "id": f"{split}-{r['id']}"}) + "\n" for r in rows))
    raw = soft_study_dict(tmp_path / "cues.jsonl", tiny_model_dir, tmp_path / "memo", trials=3)
    raw["task"]["data"] = files
    runner = StudyRunner(spec_from_dict(raw), model=tiny_model, progress=False)
    runner.setup()
    return runner


def test_pruning_stops_a_hopeless_run(tmp_path, tiny_model_dir, tiny_model) -> None:  # type: ignore[no-untyped-def]
    runner = _memorisable_runner(tmp_path, tiny_model_dir, tiny_model)
    strategy: SoftPrompt = runner.strategy
    kind = SoftKind()  # trains and scores what the strategy proposes
    study = optuna.create_study(direction="maximize", pruner=strategy.create_pruner(runner.spec.pruning, 10))
    study.enqueue_trial({})  # stands for the baseline: complete, nothing reported per epoch
    study.tell(study.ask(), 0.3)
    good = SoftCandidate.create(runner.baseline, "lora", {"lora_r": 8, "lr": 0.02, "epochs": 3, "batch_size": 4})
    hopeless = SoftCandidate.create(runner.baseline, "lora", {"lora_r": 8, "lr": 1e-9, "epochs": 3, "batch_size": 4})
    for _ in range(2):  # two finished runs: the median pruner's start-up (prune_after: 2)
        trial = study.ask()
        ev = kind.score(trial, good, runner.kind_context)
        study.tell(trial, ev.value)
    good_first_epoch = study.trials[1].intermediate_values[1]
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned, match="pruned after epoch 1 of 3"):
        kind.score(trial, hopeless, runner.kind_context)
    assert trial.number == 3 and study.trials[3].intermediate_values[1] < good_first_epoch
    # Without pruning the same hopeless run goes on to its last epoch.
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    unpruned = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    t = unpruned.ask()
    kind.score(t, hopeless, runner.kind_context)
    assert sorted(unpruned.trials[0].intermediate_values) == [1, 2, 3]


def test_a_pruned_trial_is_recorded_with_its_reason(tmp_path, tiny_model_dir, tiny_model, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """In a study, a pruned run is a PRUNED trial with the epoch it stopped at."""
    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda self: self.number == 2)
    spec = _spec(tmp_path, tiny_model_dir, trials=3, methods=["lora"], epochs=[2, 2], prune_after=0)
    result, _ = _run(spec, tiny_model)
    t = _trials(spec)[2]
    assert t.state == optuna.trial.TrialState.PRUNED
    assert t.user_attrs[attrs.FAIL_REASON].startswith("pruned: pruned after epoch 1 of 2")
    assert result["trial_states"]["pruned"] == 1


def test_a_finished_run_is_never_pruned(tmp_path, tiny_model_dir, tiny_model, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """After the last epoch pruning would save nothing: the run is kept whatever the pruner says."""
    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda self: True)
    spec = _spec(tmp_path, tiny_model_dir, trials=3, methods=["lora"], epochs=[1, 1], prune_after=0)
    result, _ = _run(spec, tiny_model)
    assert result["trial_states"] == {"complete": 3}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"virtual_tokens": [0]}, "strategy.virtual_tokens: .*virtual tokens must be at least 1, got 0"),
        ({"lr": {"prompt_tuning": [-0.1, 0.1]}}, "strategy.lr: .*learning rates must be positive; prompt_tuning"),
        ({"lr": {"lora": 0}}, "strategy.lr: .*learning rates must be positive; lora"),
        ({"lr": {"lora": [0.1, 0.01]}}, "low 0.1 is above high 0.01"),
        ({"epochs": 0}, "strategy.epochs: .*epochs must be at least 1"),
        ({"lora_r": [0]}, "strategy.lora_r: .*LoRA rank must be at least 1"),
        ({"methods": ["soft_lora"]}, "strategy.methods.0"),
        ({"batch_size": 0}, "strategy.batch_size"),
        (
            {"template": "no/such/study"},
            "strategy.template: 'no/such/study' is neither 'baseline' nor a finished study",
        ),
    ],
)
def test_bad_hyperparameters_are_clear_errors(tmp_path, tiny_model_dir, tiny_model, options, message) -> None:  # type: ignore[no-untyped-def]
    spec = _spec(tmp_path, tiny_model_dir, **options)
    with pytest.raises(ConfigError, match=message):
        StudyRunner(spec, model=tiny_model, progress=False).run().to_dict()


def test_bad_candidate_hyperparameters_are_clear_errors(soft_runner) -> None:  # type: ignore[no-untyped-def]
    from optprompt.adapters.methods import attached

    zero = SoftCandidate.create(
        soft_runner.baseline, "prefix_tuning", {"num_virtual_tokens": 0, "lr": 0.1, "epochs": 1}
    )
    with pytest.raises(ConfigError, match="'num_virtual_tokens' .* must be at least 1, got 0"):
        with attached(soft_runner.model, zero):
            pass
    with pytest.raises(ConfigError, match="unknown adapter method 'ia3'"):
        SoftCandidate.create(soft_runner.baseline, "ia3", {})


def test_study_pruning_setting_must_leave_pruning_to_the_strategy(tmp_path, tiny_model_dir, tiny_model) -> None:  # type: ignore[no-untyped-def]
    raw = soft_study_dict(write_sentiment_jsonl(tmp_path / "d.jsonl"), tiny_model_dir, tmp_path / "o")
    raw["pruning"] = {"pruner": "wilcoxon"}
    with pytest.raises(ConfigError, match="soft_prompt prunes training runs per epoch itself"):
        StudyRunner(spec_from_dict(raw), model=tiny_model, progress=False).run().to_dict()


@pytest.mark.parametrize("how", ["ctrl-c", "killed"])
def test_resume_reruns_the_interrupted_training_and_ends_like_an_uninterrupted_run(
    tmp_path, tiny_model_dir, tiny_model, monkeypatch, how
) -> None:  # type: ignore[no-untyped-def]
    import optprompt.adapters.training as training

    options = {"trials": 4, **FAST}
    reference, _ = _run(_spec(tmp_path, tiny_model_dir, "reference", **options), tiny_model)
    spec = _spec(tmp_path, tiny_model_dir, "interrupted", **options)
    real = training.train_adapter
    calls = [0]

    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls[0] += 1
        if calls[0] == 2:  # inside the second training run, after its first step
            on_step = kwargs["on_step"]

            def stop(step: int, loss: float) -> None:
                on_step(step, loss)
                raise KeyboardInterrupt if how == "ctrl-c" else SystemExit(9)

            kwargs["on_step"] = stop
        return real(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(training, "train_adapter", interrupted)
        with pytest.raises(KeyboardInterrupt if how == "ctrl-c" else SystemExit):
            _run(spec, tiny_model)
    first = _trials(spec)
    assert [t.state for t in first[:2]] == [optuna.trial.TrialState.COMPLETE] * 2
    if how == "killed":  # what the heartbeat check does to a dead worker's trial
        assert first[2].state == optuna.trial.TrialState.RUNNING
        study = optuna.load_study(study_name=spec.name, storage=f"sqlite:///{Path(spec.output) / 'study.db'}")
        study._storage.set_trial_state_values(first[2]._trial_id, optuna.trial.TrialState.FAIL)
    result, _ = _run(spec, tiny_model)
    after = _trials(spec)
    assert [(t.number, t.value) for t in after[:2]] == [(t.number, t.value) for t in first[:2]]  # kept
    done = [t for t in after if t.state == optuna.trial.TrialState.COMPLETE]
    ref = [
        t
        for t in _trials(_spec(tmp_path, tiny_model_dir, "reference", **options))
        if t.state == optuna.trial.TrialState.COMPLETE
    ]
    assert [(t.user_attrs[attrs.HASH], t.value) for t in done] == [(t.user_attrs[attrs.HASH], t.value) for t in ref]
    for split in ("dev", "test"):
        assert result["best"][split]["metrics"] == reference["best"][split]["metrics"]
    assert not list((Path(spec.output) / "artifacts" / "adapters").glob(".*"))  # no half-written adapter left


def test_template_from_a_finished_template_study(tmp_path, tiny_model_dir, tiny_model, study_dict) -> None:  # type: ignore[no-untyped-def]
    discrete = spec_from_dict({**study_dict, "strategy": {"name": "template_search", "trials": 4, "max_demos": 1}})
    found, _ = _run(discrete, tiny_model)
    raw = {**study_dict, "name": "soft-on-template", "output": str(tmp_path / "soft-on-template")}
    raw["strategy"] = {
        "name": "soft_prompt",
        "trials": 2,
        "methods": ["lora"],
        "epochs": [1, 1],
        "template": discrete.output,
    }
    result, _ = _run(spec_from_dict(raw), tiny_model)
    want = found["best"]["candidate"]
    got = (
        result["best"]["candidate"]
        if result["best"]["trial"]
        else _trials(spec_from_dict(raw))[1].user_attrs[attrs.CANDIDATE]
    )
    for key in ("instruction", "template", "demo_ids", "verbalizer"):
        assert got[key] == want[key]


def test_generation_task_trains_on_the_reference(tmp_path, tiny_model_dir, tiny_model) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "qa.jsonl"
    with data.open("w") as f:
        for i in range(24):
            f.write(json.dumps({"id": f"q{i}", "question": f"say good {i % 3}", "answer": "good"}) + "\n")
    raw = soft_study_dict(
        data,
        tiny_model_dir,
        tmp_path / "gen",
        trials=2,
        methods=["prompt_tuning"],
        epochs=[2, 2],
        virtual_tokens=[4],
        lr={"prompt_tuning": 0.3},
        init=["vocab"],
    )
    raw["task"] = {
        "data": str(data),
        "type": "generation",
        "input": "question",
        "label": "answer",
        "id": "id",
        "prompt": "Answer the question.",
        "metric": "exact_match",
        "max_new_tokens": 3,
    }
    result, _ = _run(spec_from_dict(raw), tiny_model)
    t = _trials(spec_from_dict(raw))[1]
    history = t.user_attrs[HISTORY_ATTR]
    assert t.state == optuna.trial.TrialState.COMPLETE and len(history) == 2
    assert history[1]["train_loss"] < history[0]["train_loss"]
    assert "test" in result["best"]


def test_registered_through_the_entry_point_group() -> None:
    entry = load_plugins().strategies.get("soft_prompt")
    assert entry.obj is SoftPrompt
    assert "entry point optprompt:soft_prompt" in entry.source


def test_multi_objective_soft_study_exports_its_winner_not_a_front(
    tmp_path, tiny_model_dir, tiny_model, capsys
) -> None:  # type: ignore[no-untyped-def]
    raw = soft_study_dict(
        write_sentiment_jsonl(tmp_path / "d.jsonl"),
        tiny_model_dir,
        tmp_path / "mo",
        trials=3,
        methods=["prompt_tuning"],
        epochs=[1, 1],
        virtual_tokens=[2, 8],
    )
    raw["objectives"] = ["score", "prompt_tokens"]
    spec = spec_from_dict(raw)
    result, _ = _run(spec, tiny_model)
    assert result["pareto"]
    assert cli_main(["export", spec.output, "--to", str(tmp_path / "front"), "--front"]) != 0
    assert "the Pareto front holds trained adapters" in capsys.readouterr().err
    assert cli_main(["export", spec.output, "--to", str(tmp_path / "winner")]) == 0
