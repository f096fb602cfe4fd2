"""Picking a winner that holds up on unseen data (``selection`` in the study file).

The search only ever scores part of dev. At the end, the best distinct candidates there
(the *finalists*) and the baseline are scored on the held-out rest, which no trial has
seen, and the best finalist there is the candidate. With ``do_no_harm`` it wins only if
it beats the baseline significantly on that held-out part (one-sided, paired: McNemar
for 0/1 scores, a paired bootstrap otherwise); otherwise the baseline stays the winner
and the result says why. Test stays untouched until the winner is chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optprompt.results import Finalist, SelectionInfo
from optprompt.stats import one_sided_p
from optprompt.stats.answers import AnswerProfile, answer_profile, describe, ignores_input
from optprompt.trials import Role, TrialRecord, encode, records

if TYPE_CHECKING:
    import optuna

    from optprompt.config.spec import SelectionSpec
    from optprompt.kinds.base import KindContext
    from optprompt.kinds.registry import CandidateKinds
    from optprompt.scoring.evaluate import Evaluation
    from optprompt.tasks.task import Example

__all__ = ["Selection", "Contender", "select_winner"]


@dataclass(frozen=True)
class Contender:
    """A finalist (or a candidate combined from the finalists) scored on fresh evidence.

    Attributes:
        record: Its trial.
        candidate: Its candidate.
        evidence: Its evaluation on the examples fresh for it and the baseline.
        baseline: The baseline's evaluation on the same examples, in the same order.
        gain: Its metric minus the baseline's there.
        answers: How its answers spread over the labels there (single-label tasks).
        balanced_gain: Its balanced accuracy minus the baseline's there (single-label tasks).
    """

    record: TrialRecord
    candidate: Any
    evidence: Evaluation
    baseline: Evaluation
    gain: float
    answers: AnswerProfile | None = None
    balanced_gain: float | None = None

    @property
    def ignores_input(self) -> bool:
        """Whether its answers on the evidence are (nearly) all one label (single-label tasks)."""
        return self.answers is not None and ignores_input(self.answers)

    @property
    def eligible(self) -> bool:
        """Whether it may be declared better than the baseline: on single-label tasks its
        answers depend on the input and it gains on balanced accuracy too (a statistic a
        constant answer cannot win)."""
        return not self.ignores_input and (self.balanced_gain is None or self.balanced_gain > 0)


@dataclass(frozen=True)
class Selection:
    """What selection on fresh evidence decided.

    Attributes:
        winner: The picked trial's record (the baseline's when do no harm kept it).
        candidate: Its candidate.
        kept_baseline: Whether do no harm kept the baseline.
        why: One sentence for the summary and result.json's warnings.
        info: ``result.json["selection"]``.
        contenders: Every finalist as scored on fresh evidence (best on dev first).
    """

    winner: TrialRecord
    candidate: Any
    kept_baseline: bool
    why: str
    info: SelectionInfo
    contenders: tuple[Contender, ...] = ()


def _finalists(complete: Sequence[TrialRecord], baseline_hash: str, n: int) -> list[TrialRecord]:
    """The ``n`` best distinct candidates on dev (the baseline's hash excluded), best first."""
    out: list[TrialRecord] = []
    seen = {baseline_hash}
    for t in sorted(complete, key=lambda t: (-(t.value or 0.0), t.number)):
        h = t.hash
        if h in seen:
            continue
        seen.add(h)
        out.append(t)
        if len(out) == n:
            break
    return out


def _combined(
    study: optuna.Study | None,
    complete: Sequence[TrialRecord],
    finalists: Sequence[TrialRecord],
    spec: SelectionSpec,
    kinds: CandidateKinds,
    ctx: KindContext,
) -> list[TrialRecord]:
    """Candidates kinds build from the finalists (a prompt ensemble...), scored on dev and
    recorded as trials of the study (role ``combined``: they do not count against the
    budget; ``optprompt show`` lists them, and an end run again finds them in ``complete``)."""
    import optuna

    if study is None or spec.ensemble < 2:
        return []
    pairs = [(kinds.from_dict(r.candidate or {}), r.offsets) for r in finalists]
    known = {r.hash: r for r in complete}
    out = []
    for name in kinds.names():
        kind = kinds.get(name)
        cand = kind.combine(pairs, ctx, spec.ensemble)
        if cand is None:
            continue
        if cand.hash in known:  # another worker, or an earlier end of this study, built it
            out.append(known[cand.hash])
            continue
        with kind.scorer(cand, ctx) as evaluator:
            ev = evaluator.evaluate(cand, ctx.dev, "dev")
        attrs = encode(role=Role.COMBINED, candidate=cand.to_dict(), hash=cand.hash, metrics=ev.metrics, dev_scored=0)
        study.add_trial(optuna.trial.create_trial(value=ev.value, user_attrs=attrs))
        # Its number is the storage's to give: read the trial just added, once.
        out.append([r for r in records(study) if r.is_combined and r.hash == cand.hash][-1])
    return out


def _subset(ev: Evaluation, ids: Sequence[str]) -> Evaluation:
    """``ev`` restricted to the examples ``ids``, in that order (for paired comparisons)."""
    import dataclasses

    where = {p.id: i for i, p in enumerate(ev.predictions)}
    keep = [where[i] for i in ids]
    return dataclasses.replace(
        ev,
        predictions=[ev.predictions[i] for i in keep],
        counts=[ev.counts[i] for i in keep] if ev.counts is not None else None,
    )


def _train_pool(train: Sequence[Example], n: int, seed: int) -> list[Example]:
    """At most ``n`` train rows, a seeded sample in the train split's order."""
    import random

    if len(train) <= n:
        return list(train)
    keep = set(random.Random(seed).sample(range(len(train)), n))
    return [ex for i, ex in enumerate(train) if i in keep]


class _FreshEvidence:
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


def _adjusted_p(spec: SelectionSpec, contenders: Sequence[Contender], best: int, seed: int) -> tuple[float, str]:
    """The picked contender's one-sided p-value against the baseline, with the pick paid
    for, and how it was computed."""
    from optprompt.stats import bonferroni, max_t_sign_flip

    top = contenders[best]
    if not spec.adjust:
        return one_sided_p(
            top.baseline, top.evidence
        ), "one-sided paired test of the picked finalist (not adjusted for the pick)"
    if top.evidence.counts is not None:
        n = len(contenders)
        p = bonferroni(one_sided_p(top.baseline, top.evidence), n)
        return p, f"paired bootstrap of the corpus metric, Bonferroni over {n} finalists"
    diffs = [
        {pm.id: pm.score - pb.score for pm, pb in zip(c.evidence.predictions, c.baseline.predictions)}
        for c in contenders
    ]
    return max_t_sign_flip(diffs, best, seed=seed), f"max-T sign-flip permutation over {len(contenders)} finalists"


def select_winner(
    spec: SelectionSpec,
    complete: Sequence[TrialRecord],
    baseline: TrialRecord,
    holdout: Sequence[Example],
    kinds: CandidateKinds,
    ctx: KindContext,
    study: optuna.Study | None = None,
    train: Sequence[Example] = (),
) -> Selection:
    """Score the finalists (and what kinds combine from them, when ``study`` is given to
    record it in) and the baseline on fresh evidence, and pick the winner.

    Each candidate's evidence is ``holdout`` plus the rows of ``train`` (at most
    ``spec.train``) its kind says did not choose it (:meth:`CandidateKind.fresh`). A
    finalist is compared with the baseline on the examples fresh for both; the one with
    the largest gain is picked, and do no harm tests that gain with the pick accounted
    for (:func:`optprompt.stats.max_t_sign_flip`; Bonferroni over the finalists for
    corpus-level metrics)."""
    pool = _train_pool(train, spec.train, ctx.seed) if spec.train else []
    fresh = _FreshEvidence(holdout, pool, kinds, ctx)
    ctx.note(f"selection: scoring the finalists on {len(holdout)} held-out dev and up to {len(pool)} train examples")
    base_cand, base, base_train = fresh.score(baseline)
    base_ids = {p.id for p in base.predictions}
    holdout_ids = [ex.id for ex in holdout]
    finalists = _finalists(complete, baseline.hash or "", spec.finalists)
    contenders: list[Contender] = []
    rows: list[Finalist] = []
    for record in finalists + _combined(study, complete, finalists, spec, kinds, ctx):
        cand, ev, fresh_train = fresh.score(record)
        shared = holdout_ids + [i for i in fresh_train if i in base_ids]
        mine, theirs = _subset(ev, shared), _subset(base, shared)
        gain = _value(mine, ctx) - _value(theirs, ctx)
        answers, balanced_gain = _answers(mine, theirs, ctx)
        contenders.append(Contender(record, cand, mine, theirs, gain, answers, balanced_gain))
        rows.append(
            Finalist(
                trial=record.number,
                dev=record.value or 0.0,
                holdout=_value(_subset(ev, holdout_ids), ctx),
                evidence=len(shared),
                gain=round(gain, 6),
                **_answer_fields(answers, balanced_gain),
                **({"combined": kinds.of_dict(record.candidate or {}).label} if record.is_combined else {}),
            )
        )
    info = SelectionInfo(
        holdout=len(holdout),
        searched=len(ctx.dev),
        train=len(base_train),
        baseline_holdout=_value(_subset(base, holdout_ids), ctx),
        **({"baseline_answers": p.to_dict()} if (p := _profile(base, ctx)) is not None else {}),
        finalists=rows,
        do_no_harm=spec.do_no_harm,
        alpha=spec.alpha,
        **({"notes": fresh.notes} if fresh.notes else {}),
    )
    return _decide(spec, baseline, base_cand, contenders, info, len(holdout), ctx.seed)


def _profile(ev: Evaluation, ctx: KindContext) -> AnswerProfile | None:
    """How ``ev``'s answers spread over the labels, on single-label tasks (else None)."""
    task = ctx.task
    if not task.has_fixed_labels or task.generates or not ev.predictions:
        return None
    return answer_profile([p.gold for p in ev.predictions], [p.pred for p in ev.predictions], task.labels)


def _answers(mine: Evaluation, theirs: Evaluation, ctx: KindContext) -> tuple[AnswerProfile | None, float | None]:
    """A contender's answer profile on its evidence and its balanced-accuracy gain over the
    baseline's on the same examples (None, None: not a single-label task)."""
    answers, base = _profile(mine, ctx), _profile(theirs, ctx)
    if answers is None or base is None:
        return None, None
    return answers, answers.balanced_accuracy - base.balanced_accuracy


def _answer_fields(answers: AnswerProfile | None, balanced_gain: float | None) -> dict[str, Any]:
    if answers is None or balanced_gain is None:
        return {}
    return {
        "top_answer": answers.top_answer,
        "top_share": round(answers.top_share, 4),
        "balanced_gain": round(balanced_gain, 6),
    }


def _not_eligible(c: Contender) -> str:
    """Why ``c`` cannot be declared better than the baseline, in words."""
    n = len(c.evidence.predictions)
    if c.ignores_input and c.answers is not None:
        return f"trial {c.record.number} {describe(c.answers, f'its {n} fresh examples')}: it ignores its input"
    return (
        f"trial {c.record.number} gains {c.gain:+.3f} but {c.balanced_gain or 0.0:+.3f} in balanced accuracy "
        "(the gain is the label imbalance, not the input)"
    )


def _rank(c: Contender) -> tuple[float, float, int]:
    """The largest gain first; then the best on dev; then the earliest trial."""
    return c.gain, c.record.value or 0.0, -c.record.number


def _decide(
    spec: SelectionSpec,
    baseline: TrialRecord,
    base_cand: Any,
    contenders: Sequence[Contender],
    info: SelectionInfo,
    n_holdout: int,
    seed: int,
) -> Selection:
    """The contender with the largest gain, if do no harm lets it win; else the baseline."""
    if not contenders:
        why = "no candidate other than the baseline finished"
        return Selection(baseline, base_cand, True, why, info.model_copy(update={"why": why}))
    # A constant answer (or a gain that is only the label imbalance) is never the pick: the
    # best contender whose answers read the input, if one gains at all.
    eligible = [k for k in range(len(contenders)) if contenders[k].eligible]
    if not eligible:
        why = "do no harm: " + "; ".join(_not_eligible(c) for c in contenders) + "; the winner is the baseline"
        info = info.model_copy(update={"kept_baseline": True, "why": why})
        return Selection(baseline, base_cand, True, why, info, tuple(contenders))
    best = max(eligible, key=lambda k: _rank(contenders[k]))
    passed_over = [c for c in contenders if not c.eligible and _rank(c) > _rank(contenders[best])]
    top = contenders[best]
    p, test = _adjusted_p(spec, contenders, best, seed)
    n = len(top.evidence.predictions)
    figures = (
        f"trial {top.record.number}: {top.gain:+.3f} over the baseline on {n} fresh examples "
        f"({n_holdout} held-out dev, {n - n_holdout} train), adjusted one-sided p = {p:.3g}"
    )
    decided = {"picked": top.record.number, "p_value": p, "test": test, "evidence": n}
    if passed_over:
        figures += "; passed over: " + "; ".join(_not_eligible(c) for c in passed_over)
    if spec.do_no_harm and (top.gain <= 0 or p >= spec.alpha):
        why = (
            f"do no harm: the best finalist ({figures}) does not beat the baseline significantly "
            f"(alpha {spec.alpha}; {test}); the winner is the baseline"
        )
        info = info.model_copy(update={**decided, "kept_baseline": True, "why": why})
        return Selection(baseline, base_cand, True, why, info, tuple(contenders))
    why = f"picked on fresh evidence ({figures}; {test})"
    info = info.model_copy(update={**decided, "kept_baseline": False, "why": why})
    return Selection(top.record, top.candidate, False, why, info, tuple(contenders))


def _value(ev: Evaluation, ctx: KindContext) -> float:
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
