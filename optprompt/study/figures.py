"""Figures the end of a study adds beside the winner's test score: a distillation teacher's,
each family's (strategies spanning several), and the winner's under constrained generation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optprompt.results import TeacherInfo
from optprompt.study.selection import compare_evaluations
from optprompt.trials import TrialRecord

if TYPE_CHECKING:
    import optuna

    from optprompt.kinds.base import Candidate, CandidateKind, KindContext
    from optprompt.scoring.evaluate import Evaluation
    from optprompt.study.distill import TeacherLabels
    from optprompt.tasks.task import Task

__all__ = ["teacher_figures", "families_of", "constrained_generation", "constrained_warnings"]


def teacher_figures(
    teacher: TeacherLabels, task: Task, ctx: KindContext, test_base: Evaluation, test_best: Evaluation
) -> TeacherInfo:
    """Distillation: the teacher scored on test, against the student's baseline prompt
    (``comparison``) and against the student's winner (``student_vs_teacher``: winner minus
    teacher)."""
    options = [list(ex.options) for ex in task.test] if task.has_options else None
    answers = teacher.predictor.predict([ex.input for ex in task.test], options)
    test = ctx.evaluator.evaluate_answers(task.test, answers, "test", name="teacher")
    return TeacherInfo(
        **teacher.summary(),
        test=test.to_dict(),
        comparison=compare_evaluations(test_base, test),
        student_vs_teacher=compare_evaluations(test, test_best),
    )


def families_of(trials: list[optuna.trial.FrozenTrial]) -> dict[str, Any]:
    """Trials by the family a strategy tagged them with (:attr:`TrialRecord.family`), in order."""
    out: dict[str, Any] = {}
    for t in trials:
        family = TrialRecord.from_frozen(t).family
        if family:
            out.setdefault(family, []).append(t)
    return out


def constrained_generation(
    kind: CandidateKind, best: Candidate, ctx: KindContext, ranked: Evaluation
) -> dict[str, Any] | None:
    """The winner's test score when it answers by greedy generation constrained to the answer
    set (as a serving stack with guided decoding does), beside the ranked score; None when
    its kind does not measure it."""
    answers = kind.constrained_answers(best, ctx, ctx.task.test)
    if answers is None:
        return None
    ev = ctx.evaluator.evaluate_answers(ctx.task.test, answers, "test", name="constrained generation")
    agree = sum(a.pred == b.pred for a, b in zip(ranked.predictions, ev.predictions, strict=True))
    return {
        "value": ev.value,
        "metric": ev.metric,
        "metrics": dict(ev.metrics),
        "interval": compare_evaluations(ev, ev).winner.to_dict(),
        "agreement": agree / max(1, len(ev.predictions)),
        "n": len(ev.predictions),
        "calibrated": False,
    }


def constrained_warnings(constrained: dict[str, Any] | None, ranked: float) -> list[str]:
    """A warning when the winner served by guided decoding is clearly worse than ranked (the
    constrained score's 95% interval ends below the ranked score)."""
    if not constrained or constrained["interval"]["high"] >= ranked:
        return []
    return [
        f"served by guided decoding (greedy generation constrained to the answers, uncalibrated) the winner "
        f"scores {constrained['value']:.3f} on test against {ranked:.3f} ranked: serve it by ranking its answers "
        "(optprompt.load(DIR).predict, or each answer's log-probability from the serving stack through "
        "card.predict_from_logliks), not by guided decoding"
    ]
