"""The winner answering by greedy generation constrained to the answer set, on test: what
a serving stack with guided decoding would measure (uncalibrated), beside the ranked score."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optprompt.stats import compare_evaluations
from optprompt.study.end.context import EndState, StudyEnd
from optprompt.study.end.on_test import ScoreTest
from optprompt.study.end.pick import PickWinner
from optprompt.study.end.step import EndStep

if TYPE_CHECKING:
    from optprompt.kinds.base import Candidate, CandidateKind, KindContext
    from optprompt.scoring.evaluate import Evaluation

__all__ = ["ConstrainedGeneration", "constrained_generation", "constrained_warnings"]


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


class ConstrainedGeneration(EndStep["dict[str, Any] | None"]):
    """Tasks with a closed answer set: the winner under guided decoding on test (None when
    its kind does not measure it, an adapter say)."""

    def applies(self, end: StudyEnd, state: EndState) -> bool:
        return end.task.closed_answers

    def title(self, end: StudyEnd, state: EndState) -> str | None:
        return "the winner answering by generation constrained to the answers, on test"

    def run(self, end: StudyEnd, state: EndState) -> dict[str, Any] | None:
        pick, ranked = state.part(PickWinner), state.part(ScoreTest).winner
        constrained = constrained_generation(end.kind_of(pick.candidate), pick.candidate, end.kind_context, ranked)
        state.warnings.extend(constrained_warnings(constrained, ranked.value))
        return constrained

    def result_fields(self, part: dict[str, Any] | None) -> dict[str, Any]:
        return {"constrained_generation": part} if part else {}
