"""Each family's best on test, for strategies whose trials span several families of
candidates (``auto``): what each family reached, side by side with the winner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optprompt.results import FamilyResult
from optprompt.stats import compare_evaluations
from optprompt.study.end.context import EndState, StudyEnd, entry_of
from optprompt.study.end.on_test import ScoreTest, score_on_test
from optprompt.study.end.pick import PickWinner
from optprompt.study.end.step import EndStep

if TYPE_CHECKING:
    from optprompt.trials import TrialRecord

__all__ = ["FamilyBests"]


def _by_family(trials: tuple[TrialRecord, ...]) -> dict[str, list[TrialRecord]]:
    """Trials by the family a strategy tagged them with (:attr:`TrialRecord.family`), in order."""
    out: dict[str, list[TrialRecord]] = {}
    for r in trials:
        if r.family:
            out.setdefault(r.family, []).append(r)
    return out


class FamilyBests(EndStep[dict[str, FamilyResult]]):
    """Each family's best candidate on dev, scored on test and compared with the baseline
    (a candidate already scored there, the winner say, is not scored again)."""

    def applies(self, end: StudyEnd, state: EndState) -> bool:
        return any(r.family for r in state.trials.all)

    def run(self, end: StudyEnd, state: EndState) -> dict[str, FamilyResult]:
        test = state.part(ScoreTest)
        pick = state.part(PickWinner)
        scored = {end.baseline.hash: test.baseline, pick.candidate.hash: test.winner}
        out: dict[str, FamilyResult] = {}
        for name, members in _by_family(state.trials.all).items():
            used = sum(r.uses_budget for r in members)
            done = [r for r in members if r.is_complete]
            if not done:
                out[name] = FamilyResult(trials=used)
                continue
            top = state.trials.best_on_dev(done)
            cand = end.candidate(top)
            if cand.hash not in scored:
                with end.progress.step(f"scoring the best of {name} on test"):
                    scored[cand.hash] = score_on_test(end, cand, top.offsets)
            ev = scored[cand.hash]
            out[name] = FamilyResult(
                trials=used,
                best=entry_of(end, state.trials, top, cand, ev),
                comparison=compare_evaluations(test.baseline, ev),
            )
        return out

    def result_fields(self, part: dict[str, FamilyResult]) -> dict[str, Any]:
        return {"families": part}
