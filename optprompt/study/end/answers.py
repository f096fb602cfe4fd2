"""Single-label tasks: how the baseline's and the winner's test answers spread over the
labels (the most common answer and its share, per-label recall, balanced accuracy), and a
warning when the winner answers (nearly) one label for every input or gains only on the
label imbalance."""

from __future__ import annotations

from typing import Any

from optprompt.stats.answers import AnswerProfile, answer_profile, describe, ignores_input
from optprompt.study.end.context import EndState, StudyEnd
from optprompt.study.end.on_test import ScoreTest
from optprompt.study.end.pick import PickWinner
from optprompt.study.end.step import EndStep

__all__ = ["AnswersOnTest"]


class AnswersOnTest(EndStep[dict[str, AnswerProfile]]):
    """The answer profiles of the baseline and the winner on test (``result.json["answers"]``)."""

    def applies(self, end: StudyEnd, state: EndState) -> bool:
        return end.task.has_fixed_labels and not end.task.generates and bool(end.task.test)

    def run(self, end: StudyEnd, state: EndState) -> dict[str, AnswerProfile]:
        test, labels = state.part(ScoreTest), end.task.labels
        profiles = {
            side: answer_profile([p.gold for p in ev.predictions], [p.pred for p in ev.predictions], labels)
            for side, ev in (("baseline", test.baseline), ("best", test.winner))
        }
        base, best = profiles["baseline"], profiles["best"]
        if state.part(PickWinner).candidate.hash != end.baseline.hash:
            gain = test.winner.value - test.baseline.value
            balanced = best.balanced_accuracy - base.balanced_accuracy
            if ignores_input(best):
                state.warnings.append(
                    f"the winner {describe(best, 'test')}: it ignores its input; its balanced accuracy is "
                    f"{best.balanced_accuracy:.3f} against the baseline's {base.balanced_accuracy:.3f}"
                )
            elif gain > 0 and balanced <= 0:
                state.warnings.append(
                    f"the winner gains {gain:+.3f} on test but {balanced:+.3f} in balanced accuracy: the gain is the "
                    "label imbalance, not the input"
                )
        if ignores_input(base):
            state.warnings.append(f"the baseline {describe(base, 'test')}")
        return profiles

    def result_fields(self, part: dict[str, AnswerProfile]) -> dict[str, Any]:
        return {"answers": {side: profile.to_dict() for side, profile in part.items()}}
