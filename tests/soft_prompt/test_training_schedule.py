"""The training schedule of trained candidates on small train splits: enough optimisation
steps (``min_steps`` raises the epochs), early stopping that waits while the dev loss still
falls, and the train rows a run left out counted as fresh evidence at selection."""

from __future__ import annotations

import math

import optuna
import pytest

from optprompt.adapters.candidate import SoftCandidate
from optprompt.kinds.soft import SoftKind
from optprompt.kinds.soft.training import dev_loss, training_seed
from optprompt.prompts import PromptCandidate
from optprompt.scoring.evaluate import Evaluation, ExamplePrediction


def _configured(strategy, **options):  # type: ignore[no-untyped-def]
    strategy.config = strategy.config.model_copy(update=options)
    return strategy


def test_epochs_are_raised_until_a_run_takes_min_steps(soft_runner) -> None:  # type: ignore[no-untyped-def]
    strategy = _configured(soft_runner.strategy, min_steps=60, max_epochs=30, batch_size=8)
    n = strategy.train_size()
    assert n == len(soft_runner.task.train) > 0
    per_epoch = math.ceil(n / 8)
    needed = math.ceil(60 / per_epoch)
    assert needed > 2  # the tiny split: two epochs are too few steps
    assert strategy.epochs_for(2) == needed
    assert strategy.epochs_for(needed + 5) == needed + 5  # more epochs than needed are kept
    assert _configured(strategy, max_epochs=3).epochs_for(2) == 3  # at most max_epochs
    assert _configured(strategy, min_steps=0).epochs_for(2) == 2  # off: the sampled epochs
    # A large split already takes min_steps in the sampled epochs.
    assert _configured(strategy, min_steps=60, batch_size=1).epochs_for(2) == max(2, math.ceil(60 / n))


def test_proposals_carry_the_raised_epochs(soft_runner) -> None:  # type: ignore[no-untyped-def]
    strategy = _configured(soft_runner.strategy, min_steps=50, methods=["lora"], epochs=(2, 2), batch_size=4)
    cand = strategy.propose(optuna.create_study().ask())
    assert cand.param_map["epochs"] == strategy.epochs_for(2) == math.ceil(50 / math.ceil(strategy.train_size() / 4))
    # Demonstrations shown by the template are not trained on: fewer rows, more epochs.
    shown = [ex.id for ex in soft_runner.task.train[:3]]
    strategy.use_template(
        PromptCandidate(instruction="Decide.", template="T: {input}\nA:", demo_ids=tuple(shown)), trial=1, dev=0.5
    )
    assert strategy.train_size() == len(soft_runner.task.train) - 3
    _configured(strategy, max_train_examples=5)
    assert strategy.train_size() == 5 and strategy.epochs_for(1) == math.ceil(50 / 2)


def test_dev_loss_is_the_cross_entropy_of_the_right_answer() -> None:
    preds = [
        ExamplePrediction("a", 0, 0, 1.0, logliks=(math.log(0.75), math.log(0.25))),
        ExamplePrediction("b", 1, 0, 0.0, logliks=(-1.0, -1.0)),
    ]
    ev = Evaluation("h", "dev", "accuracy", {"accuracy": 0.5}, preds)
    assert dev_loss(ev) == pytest.approx((-math.log(0.75) + math.log(2)) / 2)
    generated = Evaluation("h", "dev", "exact", {"exact": 1.0}, [ExamplePrediction("c", "x", "x", 1.0)])
    assert dev_loss(generated) is None  # no ranked answers: no loss


def test_train_rows_a_run_left_out_are_fresh_evidence(soft_runner) -> None:  # type: ignore[no-untyped-def]
    ctx = soft_runner.kind_context
    train = list(soft_runner.task.train)
    kind = SoftKind()
    demo = train[0].id
    prompt = PromptCandidate(instruction="Decide.", template="T: {input}\nA:", demo_ids=(demo,))
    every = SoftCandidate.create(prompt, "lora", {"lora_r": 4, "lr": 0.01, "epochs": 1})
    assert kind.fresh(every, ctx, train) == []  # trained on every row but its demonstration
    sampled = SoftCandidate.create(prompt, "lora", {"lora_r": 4, "lr": 0.01, "epochs": 1, "max_train_examples": 6})
    trained = {ex.id for ex in kind._train_examples(sampled, ctx, training_seed(ctx.seed, sampled))}
    fresh = kind.fresh(sampled, ctx, train)
    assert len(trained) == 6
    assert {ex.id for ex in fresh} == {ex.id for ex in train} - trained - {demo}
    assert [ex.id for ex in fresh] == [ex.id for ex in train if ex in fresh]  # train's order


def test_a_study_on_a_small_split_runs_the_raised_epochs_with_its_dev_loss(
    tmp_path, tiny_model_dir, tiny_model
) -> None:  # type: ignore[no-untyped-def]
    from optprompt_plugins.soft_prompt.strategy import HISTORY_ATTR, TRAINING_ATTR
    from optprompt_testdata import soft_study_dict, write_sentiment_jsonl

    from optprompt.config import spec_from_dict
    from optprompt.study import StudyRunner

    data = write_sentiment_jsonl(tmp_path / "d.jsonl", n=48)
    raw = soft_study_dict(data, tiny_model_dir, tmp_path / "out", trials=2, methods=["lora"], epochs=[1, 1])
    raw["strategy"].update(min_steps=12, batch_size=8, patience=30, lr={"lora": 0.01})
    runner = StudyRunner(spec_from_dict(raw), model=tiny_model, progress=False)
    runner.run()
    per_epoch = math.ceil(len(runner.task.train) / 8)
    study = optuna.load_study(study_name="soft", storage=f"sqlite:///{tmp_path / 'out' / 'study.db'}")
    trained = study.trials[1]
    assert trained.user_attrs[TRAINING_ATTR]["steps"] == math.ceil(12 / per_epoch) * per_epoch >= 12
    history = trained.user_attrs[HISTORY_ATTR]
    assert len(history) == math.ceil(12 / per_epoch) > 1
    assert all(h["dev_loss"] > 0 for h in history)  # classification: the dev loss is in the curve
