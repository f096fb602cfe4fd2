"""Picking the winner: by the ``select`` rule on the Pareto front (several objectives), on
fresh evidence (``selection``, when dev has a held-out part), or the best on dev."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optprompt.study.end.context import EndState, Pick, StudyEnd, entry_of
from optprompt.study.end.step import EndStep

if TYPE_CHECKING:
    from optprompt.study.end.selection import Selection

__all__ = ["PickWinner", "Picked"]


@dataclass(frozen=True)
class Picked(Pick):
    """:class:`Pick` plus what result.json shows of how: the Pareto front and the ``select``
    rule, or the selection on fresh evidence.

    Attributes:
        pareto: The Pareto front's members as result.json shows them (several objectives).
        rule: The ``select`` rule the winner was picked from the front by.
        selection: What selection on fresh evidence decided (a held-out part of dev).
    """

    pareto: tuple[dict[str, Any], ...] = ()
    rule: str | None = None
    selection: Selection | None = None


class PickWinner(EndStep[Picked]):
    """The winner, picked the study's way; test is still untouched."""

    def title(self, end: StudyEnd, state: EndState) -> str | None:
        if len(end.spec.objectives) == 1 and end.holdout:
            return "picking the winner on fresh evidence (held-out dev, fresh train rows)"
        return None

    def run(self, end: StudyEnd, state: EndState) -> Picked:
        if len(end.spec.objectives) > 1:
            picked = self._on_pareto_front(end, state)
        elif end.holdout:
            picked = self._on_fresh_evidence(end, state)
        else:
            best = state.trials.best_on_dev()
            picked = Picked(best, end.candidate(best))
        state.warnings.extend(picked.notes)
        return picked

    def _on_pareto_front(self, end: StudyEnd, state: EndState) -> Picked:
        from optprompt.study.objectives import parse_rule, select

        trials = state.trials
        front = sorted(t.number for t in state.study.best_trials)
        by_number = {r.number: r for r in trials.complete}
        members = [entry_of(end, trials, by_number[n], end.candidate(by_number[n])) for n in front]
        rule = end.spec.select
        chosen = select(members, parse_rule(rule, end.spec.objectives))
        notes: tuple[str, ...] = ()
        if chosen is None:
            notes = (f"no Pareto-front prompt meets select {rule!r}; the winner is the best score on the front",)
            chosen = select(members, [])
        winner = by_number[chosen["trial"]]  # type: ignore[index]
        return Picked(winner, end.candidate(winner), notes, pareto=tuple(members), rule=rule)

    def _on_fresh_evidence(self, end: StudyEnd, state: EndState) -> Picked:
        from optprompt.study.end.selection import select_winner

        trials = state.trials
        chosen = select_winner(
            end.spec.selection,
            trials.complete,
            trials.baseline,
            end.holdout,
            end.kinds,
            end.kind_context,
            state.study,
            train=end.task.train,
        )
        notes = (chosen.why,) if chosen.kept_baseline else ()
        return Picked(chosen.winner, chosen.candidate, notes, selection=chosen)

    def result_fields(self, part: Picked) -> dict[str, Any]:
        if part.pareto:
            return {"pareto": list(part.pareto), "select": part.rule}
        if part.selection is not None:
            return {"selection": part.selection.info}
        return {}
