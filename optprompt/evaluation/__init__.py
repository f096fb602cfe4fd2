"""Score an exported prompt, adapter or ensemble (or a study's winner) on new data, on its
own model or another one: ``optprompt.evaluate(...)`` and ``optprompt evaluate``."""

from optprompt.evaluation.report import (
    EVALUATION_FILE,
    EVALUATION_FORMAT,
    Comparison,
    Constrained,
    EvaluationReport,
    Interval,
    Scored,
)
from optprompt.evaluation.run import BASELINE, evaluate
from optprompt.kinds.prompt.constrained import constrained_predict

__all__ = [
    "BASELINE",
    "EVALUATION_FILE",
    "EVALUATION_FORMAT",
    "Comparison",
    "Constrained",
    "EvaluationReport",
    "Interval",
    "Scored",
    "constrained_predict",
    "evaluate",
]
