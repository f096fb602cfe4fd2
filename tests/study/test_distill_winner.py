"""Context distillation of a winner: the student learns the winner's answer distribution
under a short prompt, is saved as an adapter, and both are compared on test."""

from __future__ import annotations

import dataclasses
import math

import pytest

from optprompt.config import DistillSpec
from optprompt.kinds.prompt import PromptKind
from optprompt.study.end.student import (
    distill_winner,
    short_prompt,
    student_candidate,
    student_targets,
    teacher_distributions,
)
from optprompt.tasks import Example


def _winner(runner):  # type: ignore[no-untyped-def]
    demos = tuple(ex.id for ex in runner.task.train[:3])
    return dataclasses.replace(runner.baseline, demo_ids=demos, calibration="mean")


def test_teacher_distributions_are_its_calibrated_ranking(soft_runner) -> None:
    runner = soft_runner
    ctx = runner.kind_context
    winner = _winner(runner)
    ev = ctx.evaluator.evaluate(winner, runner.task.train[:6], "train")
    dists = teacher_distributions(ev)
    assert ev.offsets is not None  # mean calibration: the offsets are part of its ranking
    for d, p in zip(dists, ev.predictions):
        assert math.isclose(sum(d), 1.0, rel_tol=1e-9)
        assert max(range(len(d)), key=d.__getitem__) == p.pred  # the distribution ranks as the winner does


def test_a_winner_is_distilled_into_a_soft_prompt_under_a_short_prompt(soft_runner) -> None:
    from optprompt.adapters.artifact import read_manifest

    runner = soft_runner
    ctx = runner.kind_context
    winner = _winner(runner)
    student_prompt = short_prompt(winner, runner.baseline)
    assert student_prompt.demo_ids == () and student_prompt.calibration == "none"
    out = distill_winner(
        winner,
        PromptKind(),
        ctx,
        student=student_candidate(student_prompt, DistillSpec(virtual_tokens=4, epochs=1, batch_size=8)),
    )
    assert out.distilled_inputs == len(runner.task.train) + len(runner.task.unlabeled)
    assert out.training["steps"] == math.ceil(out.distilled_inputs / 8)
    assert len(out.student_test.predictions) == len(out.teacher_test.predictions) == len(runner.task.test)
    # The student reads no demonstrations: fewer tokens per prediction than the winner.
    assert out.tokens_per_prediction["student"] < out.tokens_per_prediction["teacher"]
    assert 0.0 <= out.comparison.p_value <= 1.0
    manifest = read_manifest(ctx.output / out.artifact)
    assert manifest is not None


def test_generation_students_learn_the_winners_written_answers() -> None:
    """Multi-label: each input relabelled with the winner's list, read back as the task
    reads another model's answer (canonical order, unknown labels dropped); unreadable
    answers left out; gold kept on the ``gold`` share of the labelled inputs only."""
    from optprompt.study.end.student import gold_share, student_answers
    from optprompt.tasks.types import MultiLabel

    labels = ("billing", "bug", "login")
    task = type("T", (), {"task_type": MultiLabel(), "labels": labels})()
    inputs = [Example(f"t{i}", f"ticket {i}", "billing", -1) for i in range(40)]
    inputs += [Example(f"u{i}", f"unlabelled {i}", "", -1) for i in range(20)]
    answers = ["login, Billing, weather" if i % 4 else None for i in range(60)]  # None: a format failure
    labelled = {ex.id for ex in inputs[:40]}
    pure = student_answers(task, inputs, answers, 0.0, labelled)
    assert [ex.id for ex in pure] == [ex.id for i, ex in enumerate(inputs) if i % 4]  # unreadable: left out
    assert {ex.target for ex in pure} == {"billing, login"}
    mixed = student_answers(task, inputs, answers, 0.5, labelled)
    kept = {ex.id for ex in mixed if ex.target == "billing" and ex.id in labelled}
    assert kept == {ex.id for ex in inputs[:40] if gold_share(ex.id) < 0.5}
    assert 8 <= len(kept) <= 32  # about half, the same ones every run
    assert all(ex.target == "billing, login" for ex in mixed if ex.id.startswith("u"))
    assert {ex.id for ex in student_answers(task, inputs, answers, 1.0, labelled)} >= labelled


def test_the_students_instruction_can_be_replaced_or_dropped(soft_runner) -> None:
    winner = _winner(soft_runner)
    kept = short_prompt(winner, soft_runner.baseline)
    assert kept.instruction == winner.instruction and kept.demo_ids == ()
    own = short_prompt(winner, soft_runner.baseline, instruction="Sentiment?")
    assert own.instruction == "Sentiment?" and own.template == winner.template and own.demo_ids == ()
    none = short_prompt(winner, soft_runner.baseline, instruction="")
    assert none.instruction == "" and none.verbalizer == winner.verbalizer
    # The rendered request has no instruction left: fewer tokens, same query.
    renderer = soft_runner.kind_context.renderer
    ex = soft_runner.task.test[0]
    short_request, full_request = renderer.request(none, ex), renderer.request(kept, ex)
    assert len(short_request.prefix) < len(full_request.prefix)
    assert short_request.suffix == full_request.suffix


def test_gold_labels_mix_into_the_targets_of_train_inputs_only() -> None:
    train = Example("a", "x", "pos", 1, (), "a")
    unlabelled = Example("u", "y", "", 0, (), "u")
    teacher = [(0.6, 0.4), (0.3, 0.7)]
    assert student_targets([train, unlabelled], teacher, 0.0, {"a"}) == [(0.6, 0.4), (0.3, 0.7)]
    mixed = student_targets([train, unlabelled], teacher, 0.5, {"a"})
    assert mixed[0] == pytest.approx((0.3, 0.7)) and mixed[1] == (0.3, 0.7)
    assert student_targets([train], teacher[:1], 1.0, {"a"})[0] == pytest.approx((0.0, 1.0))
