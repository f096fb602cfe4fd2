"""Distillation: a teacher labels train and unlabelled inputs; the student trains on them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest
import torch
from optprompt_plugins.soft_prompt.strategy import HISTORY_ATTR
from optprompt_testdata import soft_study_dict, write_sentiment_jsonl

from optprompt.adapters.training import loss_of, training_items
from optprompt.config import spec_from_dict
from optprompt.errors import ConfigError
from optprompt.study.runner import StudyRunner


def _unlabeled(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def test_teacher_labels_train_and_unlabelled_inputs_and_the_student_trains_on_them(
    tmp_path: Path, tiny_model_dir: Path, tiny_model
) -> None:  # type: ignore[no-untyped-def]
    data = write_sentiment_jsonl(tmp_path / "d.jsonl", n=40)
    extra = ["the soup was cold and late", "lovely staff and a quiet room", "never again", "great value"]
    raw = soft_study_dict(
        data,
        tiny_model_dir,
        tmp_path / "out",
        trials=2,
        methods=["prompt_tuning"],
        epochs=[2, 2],
        virtual_tokens=[4],
        lr={"prompt_tuning": 0.3},
        init=["vocab"],
    )
    raw["teacher"] = str(tiny_model_dir)
    raw["task"]["unlabeled"] = str(_unlabeled(tmp_path / "u.jsonl", extra))
    spec = spec_from_dict(raw)
    runner = StudyRunner(spec, model=tiny_model, progress=False)
    result = runner.run().to_dict()

    gold_train = StudyRunner(spec_from_dict({**raw, "teacher": None, "task": {**raw["task"], "unlabeled": None}}))
    n_train = len(gold_train.task.train)
    teacher = runner.teacher
    # Every train input and every unlabelled one is labelled (ranking always answers) ...
    assert teacher.train == n_train and teacher.unlabeled == len(extra) and teacher.dropped == 0
    assert len(runner.task.train) == n_train + len(extra)
    assert [ex.input for ex in runner.task.train][-len(extra) :] == extra
    # ... with exactly what the teacher predicts, not the gold label.
    predicted = teacher.predictor.predict([ex.input for ex in runner.task.train])
    assert [ex.target for ex in runner.task.train] == predicted
    assert all(ex.target_index == runner.task.labels.index(ex.target) for ex in runner.task.train)
    assert runner.task.fingerprint != gold_train.task.fingerprint
    gold = {ex.id: ex.target for ex in gold_train.task.train}
    agreement = sum(gold[ex.id] == ex.target for ex in runner.task.train[:n_train]) / n_train
    assert result["teacher"]["train_agreement_with_gold"] == pytest.approx(agreement, abs=1e-4)

    # Soft labels: the teacher's answer distribution (softmax of its answers' log-likelihoods),
    # whose most likely answer is the hard label; the trainer gets these distributions.
    assert result["teacher"]["labels"] == "soft"
    logliks = teacher.predictor.loglikelihoods([ex.input for ex in runner.task.train])
    for ex, ll in zip(runner.task.train, logliks):
        want = torch.softmax(torch.tensor(ll, dtype=torch.float64), dim=0).tolist()
        assert ex.soft_target == pytest.approx(want)
        assert max(range(len(want)), key=want.__getitem__) == ex.target_index
    _, targets = training_items(runner.baseline, runner.task.train, runner.renderer, tiny_model.tokenizer, chat=True)
    assert targets == [ex.soft_target for ex in runner.task.train]

    # The student trained (soft prompt) on those labels and was scored on the gold test split.
    trial = optuna.load_study(study_name=spec.name, storage=f"sqlite:///{Path(spec.output) / 'study.db'}").trials[1]
    assert len(trial.user_attrs[HISTORY_ATTR]) == 2
    # The teacher is scored on test like the student, and compared with both.
    t = result["teacher"]
    test_pred = teacher.predictor.predict([ex.input for ex in runner.task.test])
    accuracy = sum(p == ex.target for p, ex in zip(test_pred, runner.task.test)) / len(runner.task.test)
    assert t["test"]["value"] == pytest.approx(accuracy)
    assert t["comparison"]["baseline"]["estimate"] == pytest.approx(result["baseline"]["test"]["value"])
    assert t["comparison"]["winner"]["estimate"] == pytest.approx(accuracy)
    assert t["student_vs_teacher"]["winner"]["estimate"] == pytest.approx(result["best"]["test"]["value"])


def test_unlabelled_inputs_need_a_teacher(tmp_path: Path, tiny_model_dir: Path) -> None:
    raw = soft_study_dict(write_sentiment_jsonl(tmp_path / "d.jsonl"), tiny_model_dir, tmp_path / "o", trials=2)
    raw["task"]["unlabeled"] = "u.jsonl"
    with pytest.raises(ConfigError, match="task.unlabeled inputs are labelled by a teacher"):
        spec_from_dict(raw)


def test_the_loss_towards_a_teacher_distribution_is_its_kl_divergence() -> None:
    sums = [torch.tensor([-1.0, -2.0, -0.5]), torch.tensor([-3.0, -0.1])]
    p = [(0.2, 0.3, 0.5), (1.0, 0.0)]
    q = [torch.softmax(s, dim=0) for s in sums]
    kl = [sum(pi * math.log(pi / qi) for pi, qi in zip(dist, qs.tolist()) if pi > 0) for dist, qs in zip(p, q)]
    assert float(loss_of(sums, p)) == pytest.approx(sum(kl) / 2, rel=1e-6)
    # A one-hot distribution is the cross-entropy of its answer.
    assert float(loss_of(sums[1:], [(1.0, 0.0)])) == pytest.approx(float(loss_of(sums[1:], [0])), rel=1e-6)


def test_hard_teacher_labels_carry_no_distribution(tmp_path: Path, tiny_model_dir: Path, tiny_model) -> None:  # type: ignore[no-untyped-def]
    raw = soft_study_dict(write_sentiment_jsonl(tmp_path / "d.jsonl", n=24), tiny_model_dir, tmp_path / "o", trials=1)
    raw["teacher"] = str(tiny_model_dir)
    raw["teacher_labels"] = "hard"
    runner = StudyRunner(spec_from_dict(raw), model=tiny_model, progress=False)
    runner.setup()
    assert runner.teacher.summary()["labels"] == "hard"
    assert all(ex.soft_target == () for ex in runner.task.train)


def test_a_teacher_that_is_the_study_model_is_loaded_once(tmp_path: Path, tiny_model_dir: Path) -> None:
    raw = soft_study_dict(write_sentiment_jsonl(tmp_path / "d.jsonl", n=24), tiny_model_dir, tmp_path / "o", trials=1)
    raw["teacher"] = str(tiny_model_dir)
    runner = StudyRunner(spec_from_dict(raw), progress=False)
    runner.setup()
    assert runner.teacher.predictor.loaded is runner.model
