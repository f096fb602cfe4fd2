"""The end of a study: the winner picked, scored on test, compared, recorded.

:func:`finish_study` runs a list of small steps (:mod:`.pipeline`), each returning one
typed part of :class:`~optprompt.results.StudyResult`: picking the winner (:mod:`.pick`,
on fresh evidence: :mod:`.selection`), test scores (:mod:`.on_test`), each family's best
(:mod:`.families`), a teacher's answers (:mod:`.teacher`), constrained generation
(:mod:`.constrained`), the context limit (:mod:`.context_limit`), the winner's
distillation (:mod:`.distillation`, :mod:`.student`) and the record (:mod:`.record`).
"""

from optprompt.results import PREDICTIONS_FILE, RESULT_FILE
from optprompt.study.end.context import EndState, EndTrials, Pick, StudyEnd
from optprompt.study.end.pipeline import default_steps, finish_study
from optprompt.study.end.step import EndStep

__all__ = [
    "EndState",
    "EndStep",
    "EndTrials",
    "Pick",
    "PREDICTIONS_FILE",
    "RESULT_FILE",
    "StudyEnd",
    "default_steps",
    "finish_study",
]
