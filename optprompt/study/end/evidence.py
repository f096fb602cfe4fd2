"""The evidence selection weighs candidates on: the held-out part of dev plus the train rows
that did not choose a candidate (fresh for it), the task metric recomputed on any part of
it, and, on single-label tasks, how the answers spread over the labels there."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from optprompt.stats.answers import AnswerProfile, answer_profile

if TYPE_CHECKING:
    from optprompt.kinds.base import KindContext
    from optprompt.kinds.registry import CandidateKinds
    from optprompt.scoring.evaluate import Evaluation
    from optprompt.tasks.task import Example
    from optprompt.trials import TrialRecord

__all__ = ["FreshEvidence", "subset", "train_pool", "value", "profile", "answer_spread", "answer_fields"]


def subset(ev: Evaluation, ids: Sequence[str]) -> Evaluation:
    """``ev`` restricted to the examples ``ids``, in that order (for paired comparisons)."""
    import dataclasses

    where = {p.id: i for i, p in enumerate(ev.predictions)}
    keep = [where[i] for i in ids]
    return dataclasses.replace(
        ev,
        predictions=[ev.predictions[i] for i in keep],
        counts=[ev.counts[i] for i in keep] if ev.counts is not None else None,
    )


def train_pool(train: Sequence[Example], n: int, seed: int) -> list[Example]:
    """At most ``n`` train rows, a seeded sample in the train split's order."""
    import random

    if len(train) <= n:
        return list(train)
    keep = set(random.Random(seed).sample(range(len(train)), n))
    return [ex for i, ex in enumerate(train) if i in keep]


class FreshEvidence:
    """Scores candidates on their fresh evidence: the held-out dev examples plus the rows of
    the train pool their kind says did not choose them (:meth:`CandidateKind.fresh`)."""

    def __init__(self, holdout: Sequence[Example], pool: Sequence[Example], kinds: CandidateKinds, ctx: KindContext):
        self.holdout = holdout
        self.pool = pool
        self.kinds = kinds
        self.ctx = ctx
        self.notes: list[str] = []

    def score(self, record: TrialRecord) -> tuple[Any, Evaluation, list[str]]:
        """``record``'s candidate, its evaluation there, and the ids of its fresh train rows."""
        from optprompt.errors import DataError

        cand = self.kinds.from_dict(record.candidate or {})
        kind = self.kinds.of(cand)
        fresh = kind.fresh(cand, self.ctx, self.pool) if self.pool else []
        with kind.scorer(cand, self.ctx) as evaluator:
            try:
                ev = evaluator.evaluate(cand, [*self.holdout, *fresh], "selection", offsets=record.offsets)
            except DataError as e:  # a train row that does not fit the context (task.truncate: error)
                self.notes.append(f"trial {record.number}: scored on the held-out part of dev alone ({e})")
                ev = evaluator.evaluate(cand, self.holdout, "selection", offsets=record.offsets)
                fresh = []
        return cand, ev, [ex.id for ex in fresh]


def profile(ev: Evaluation, ctx: KindContext) -> AnswerProfile | None:
    """How ``ev``'s answers spread over the labels, on single-label tasks (else None)."""
    task = ctx.task
    if not task.has_fixed_labels or task.generates or not ev.predictions:
        return None
    return answer_profile([p.gold for p in ev.predictions], [p.pred for p in ev.predictions], task.labels)


def answer_spread(mine: Evaluation, theirs: Evaluation, ctx: KindContext) -> tuple[AnswerProfile | None, float | None]:
    """A contender's answer profile on its evidence and its balanced-accuracy gain over the
    baseline's on the same examples (None, None: not a single-label task)."""
    answers, base = profile(mine, ctx), profile(theirs, ctx)
    if answers is None or base is None:
        return None, None
    return answers, answers.balanced_accuracy - base.balanced_accuracy


def answer_fields(answers: AnswerProfile | None, balanced_gain: float | None) -> dict[str, Any]:
    if answers is None or balanced_gain is None:
        return {}
    return {
        "top_answer": answers.top_answer,
        "top_share": round(answers.top_share, 4),
        "balanced_gain": round(balanced_gain, 6),
    }


def value(ev: Evaluation, ctx: KindContext) -> float:
    """The task metric on ``ev``'s examples, recomputed (``ev`` may be a subset): the corpus
    statistic of the summed counts (entity F1), the ranking metric of the chosen answers
    (accuracy, macro F1), else the mean per-example score (generation metrics)."""
    if not ev.predictions:
        return 0.0
    if ev.counts is not None and ev.statistic is not None:
        import numpy as np

        return float(ev.statistic(np.sum(np.asarray(ev.counts, dtype=np.float64), axis=0)))
    if not ctx.task.generates:
        examples = [ctx.task.example(p.id) for p in ev.predictions]
        return ctx.evaluator.measure(examples, [p.pred for p in ev.predictions])[ev.metric]
    return sum(ev.scores) / len(ev.predictions)
