"""The prompt-ensemble candidate kind: several discrete prompts averaging their calibrated
answer probabilities (classification and multiple choice).

The study builds one from its best discrete finalists when it picks the winner (see
:mod:`optprompt.study.end.selection`); it is scored like any candidate and exported as a
directory of member prompt cards that ``optprompt.load`` reads back into a predictor.
"""

from optprompt.kinds.ensemble.kind import (
    ENSEMBLE_FILE,
    EnsembleCandidate,
    EnsembleKind,
    EnsemblePredictor,
    MembersMixin,
    average_probabilities,
)
from optprompt.plugins.hookspecs import hookimpl

__all__ = [
    "ENSEMBLE_FILE",
    "EnsembleCandidate",
    "EnsembleKind",
    "EnsemblePredictor",
    "MembersMixin",
    "average_probabilities",
]


@hookimpl
def register_candidate_kinds(register):  # type: ignore[no-untyped-def]
    register(EnsembleKind)
