"""``ensemble_search``: proposes pairs of instructions around the baseline's template."""

from __future__ import annotations

from typing import Any

from optprompt.prompts import PromptCandidate
from optprompt.strategies import BaseStrategy
from optprompt_ensemble_kind.kind import EnsembleCandidate

INSTRUCTIONS = (
    "Classify the sentiment of the review.",
    "Is this review positive or negative?",
    "Answer with one of: {labels}.",
    "Read the text and give its label.",
)


class EnsembleSearch(BaseStrategy):
    """Ensembles of two instructions (a test plugin)."""

    name = "ensemble_search"

    def propose(self, trial: Any) -> EnsembleCandidate:
        first = trial.suggest_categorical("first", list(INSTRUCTIONS))
        second = trial.suggest_categorical("second", list(INSTRUCTIONS))
        base = self.context.baseline
        members = tuple(
            PromptCandidate(instruction=i, template=base.template, verbalizer=base.verbalizer)
            for i in sorted({first, second})
        )
        return EnsembleCandidate(members)
