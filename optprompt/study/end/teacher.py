"""A teacher model's answers on test, when a teacher labelled the study's train split."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from optprompt.results import TeacherInfo
from optprompt.stats import compare_evaluations
from optprompt.study.end.context import EndState, StudyEnd
from optprompt.study.end.on_test import ScoreTest
from optprompt.study.end.step import EndStep

if TYPE_CHECKING:
    from optprompt.study.teacher_labels import TeacherLabels

__all__ = ["TeacherOnTest"]


class TeacherOnTest(EndStep[TeacherInfo]):
    """The teacher scored on test, against the student's baseline prompt (``comparison``)
    and against the student's winner (``student_vs_teacher``: winner minus teacher)."""

    def applies(self, end: StudyEnd, state: EndState) -> bool:
        return end.teacher is not None

    def run(self, end: StudyEnd, state: EndState) -> TeacherInfo:
        teacher = cast("TeacherLabels", end.teacher)  # applies() checked it is there
        task, tests = end.task, state.part(ScoreTest)
        options = [list(ex.options) for ex in task.test] if task.has_options else None
        answers = teacher.predictor.predict([ex.input for ex in task.test], options)
        test = end.kind_context.evaluator.evaluate_answers(task.test, answers, "test", name="teacher")
        return TeacherInfo(
            **teacher.summary(),
            test=test.to_dict(),
            comparison=compare_evaluations(tests.baseline, test),
            student_vs_teacher=compare_evaluations(test, tests.winner),
        )

    def result_fields(self, part: TeacherInfo) -> dict[str, Any]:
        return {"teacher": part}
