"""The end of a study as a list of small steps.

Each step has one job and returns one typed part (the winner, the test scores, each family's
best...); :func:`finish_study` runs them in order and the last one writes ``result.json``.
A step reads earlier steps' parts from the :class:`EndState` (``state.part(ScoreTest)``) and
says which fields of :class:`~optprompt.results.StudyResult` its part fills
(:meth:`EndStep.result_fields`). A new end step is one class and one line in
:func:`default_steps`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from optprompt.study.end.context import EndState, EndTrials, StudyEnd
from optprompt.study.end.step import EndStep

if TYPE_CHECKING:
    import optuna

    from optprompt.results import StudyResult

__all__ = ["EndStep", "default_steps", "finish_study"]


def default_steps() -> list[EndStep[Any]]:
    """The end of a study, in order."""
    from optprompt.study.end.answers import AnswersOnTest
    from optprompt.study.end.constrained import ConstrainedGeneration
    from optprompt.study.end.context_limit import ContextLimit
    from optprompt.study.end.distillation import DistillWinner
    from optprompt.study.end.families import FamilyBests
    from optprompt.study.end.on_test import ScoreTest
    from optprompt.study.end.pick import PickWinner
    from optprompt.study.end.record import WriteResult
    from optprompt.study.end.teacher import TeacherOnTest

    return [
        PickWinner(),  # the winner: the best on dev, on fresh evidence, or by the select rule
        ScoreTest(),  # the baseline and the winner, once, on test
        AnswersOnTest(),  # how their answers spread over the labels (a constant winner is flagged)
        FamilyBests(),  # each family's best on test (strategies spanning several)
        TeacherOnTest(),  # a teacher model's answers on test
        ConstrainedGeneration(),  # the winner answering by guided decoding
        ContextLimit(),  # what task.truncate cut
        DistillWinner(),  # the winner distilled into an adapter under a short prompt
        WriteResult(),  # result.json and predictions.jsonl
    ]


def finish_study(end: StudyEnd, study: optuna.Study, steps: Sequence[EndStep[Any]] | None = None) -> StudyResult:
    """Run the end of the study (``steps``, default :func:`default_steps`) on its finished
    trials; return the typed result the last step wrote."""
    state = EndState(trials=EndTrials.read(study), study=study, warnings=list(end.notes))
    part: Any = None
    for step in steps if steps is not None else default_steps():
        if not step.applies(end, state):
            continue
        title = step.title(end, state)
        if title is None:
            part = step.run(end, state)
        else:
            with end.progress.step(title) as shown:
                part = step.run(end, state)
                if part is None:
                    shown.skip()
        state.parts[type(step)] = part
        state.ran.append((step, part))
    return part  # type: ignore[no-any-return]
