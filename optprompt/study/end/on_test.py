"""Scoring the baseline and the winner once on test, after the winner is chosen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optprompt.stats import compare_evaluations
from optprompt.study.end.context import EndState, StudyEnd, entry_of
from optprompt.study.end.pick import PickWinner
from optprompt.study.end.step import EndStep

if TYPE_CHECKING:
    from optprompt.scoring.evaluate import Evaluation
    from optprompt.stats import PairedComparison

__all__ = ["ScoreTest", "TestScores", "score_on_test"]


@dataclass(frozen=True)
class TestScores:
    """The baseline's and the winner's test evaluations and their paired comparison."""

    __test__ = False  # not a pytest test class

    baseline: Evaluation
    winner: Evaluation
    comparison: PairedComparison


def score_on_test(end: StudyEnd, candidate: Any, offsets: Any = None) -> Evaluation:
    """``candidate`` scored on the test split through its kind (with its dev calibration)."""
    kind = end.kind_of(candidate)
    with kind.scorer(candidate, end.kind_context) as evaluator:
        return evaluator.evaluate(candidate, end.task.test, "test", offsets=offsets)


class ScoreTest(EndStep[TestScores]):
    """The baseline and the winner on test (once: the winner is already chosen), compared."""

    def title(self, end: StudyEnd, state: EndState) -> str | None:
        return f"scoring the baseline and the winner on test ({len(end.task.test)} examples)"

    def run(self, end: StudyEnd, state: EndState) -> TestScores:
        from optprompt.stats import doubtful_win_warnings

        pick = state.part(PickWinner)
        baseline = score_on_test(end, end.baseline)
        same = pick.candidate.hash == end.baseline.hash
        winner = baseline if same else score_on_test(end, pick.candidate, pick.offsets)
        comparison = compare_evaluations(baseline, winner)
        if not same and 0 <= baseline.value <= 1:
            trials = state.trials
            state.warnings.extend(
                doubtful_win_warnings(
                    dev_baseline=trials.baseline.value,
                    dev_winner=pick.winner.value,
                    test_baseline=baseline.value,
                    test_winner=winner.value,
                    n_candidates=len({r.hash for r in trials.complete}),
                    n_dev=len(end.task.dev),
                    p_value=comparison.p_value,
                )
            )
        return TestScores(baseline, winner, comparison)

    def result_fields(self, part: TestScores) -> dict[str, Any]:
        failures = {"test_baseline": part.baseline.format_failures, "test_best": part.winner.format_failures}
        return {"comparison": part.comparison, "format_failures": {k: v for k, v in failures.items() if v}}


def entries(end: StudyEnd, state: EndState) -> dict[str, Any]:
    """result.json's ``baseline`` and ``best`` entries."""
    test = state.part(ScoreTest)
    trials, pick = state.trials, state.part(PickWinner)
    return {
        "baseline": entry_of(end, trials, trials.baseline, end.baseline, test.baseline),
        "best": entry_of(end, trials, pick.winner, pick.candidate, test.winner),
    }
