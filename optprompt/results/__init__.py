"""A finished study's ``result.json`` as a typed, versioned model (:class:`StudyResult`)."""

from optprompt.results.model import (
    PREDICTIONS_FILE,
    RESULT_FILE,
    RESULT_FORMAT,
    Calibration,
    FamilyResult,
    ModelInfo,
    ResultEntry,
    Score,
    StrategyInfo,
    StudyResult,
    load_result,
)

__all__ = [
    "PREDICTIONS_FILE",
    "RESULT_FILE",
    "RESULT_FORMAT",
    "Calibration",
    "FamilyResult",
    "ModelInfo",
    "ResultEntry",
    "Score",
    "StrategyInfo",
    "StudyResult",
    "load_result",
]
