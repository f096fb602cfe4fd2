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
from optprompt.stats.answers import AnswerProfile, describe, ignores_input
from optprompt.study.end.evidence import FreshEvidence, answer_fields, answer_spread, profile, subset, train_pool, value
from optprompt.study.end.finalists import combined_from, finalists_of
from optprompt.trials import TrialRecord

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
    pool = train_pool(train, spec.train, ctx.seed) if spec.train else []
    fresh = FreshEvidence(holdout, pool, kinds, ctx)
    ctx.note(f"selection: scoring the finalists on {len(holdout)} held-out dev and up to {len(pool)} train examples")
    base_cand, base, base_train = fresh.score(baseline)
    base_ids = {p.id for p in base.predictions}
    holdout_ids = [ex.id for ex in holdout]
    finalists = finalists_of(complete, baseline.hash or "", spec.finalists)
    contenders: list[Contender] = []
    rows: list[Finalist] = []
    for record in finalists + combined_from(study, complete, finalists, spec, kinds, ctx):
        cand, ev, fresh_train = fresh.score(record)
        shared = holdout_ids + [i for i in fresh_train if i in base_ids]
        mine, theirs = subset(ev, shared), subset(base, shared)
        gain = value(mine, ctx) - value(theirs, ctx)
        answers, balanced_gain = answer_spread(mine, theirs, ctx)
        contenders.append(Contender(record, cand, mine, theirs, gain, answers, balanced_gain))
        rows.append(
            Finalist(
                trial=record.number,
                dev=record.value or 0.0,
                holdout=value(subset(ev, holdout_ids), ctx),
                evidence=len(shared),
                gain=round(gain, 6),
                **answer_fields(answers, balanced_gain),
                **({"combined": kinds.of_dict(record.candidate or {}).label} if record.is_combined else {}),
            )
        )
    info = SelectionInfo(
        holdout=len(holdout),
        searched=len(ctx.dev),
        train=len(base_train),
        baseline_holdout=value(subset(base, holdout_ids), ctx),
        **({"baseline_answers": p.to_dict()} if (p := profile(base, ctx)) is not None else {}),
        finalists=rows,
        do_no_harm=spec.do_no_harm,
        alpha=spec.alpha,
        **({"notes": fresh.notes} if fresh.notes else {}),
    )
    return _decide(spec, baseline, base_cand, contenders, info, len(holdout), ctx)


def _prefer_single(
    spec: SelectionSpec, contenders: Sequence[Contender], eligible: Sequence[int], best: int, ctx: KindContext
) -> tuple[int, str]:
    """A candidate combined from the finalists (a prompt ensemble: several prompts' tokens
    per prediction) is picked only when it beats the best single finalist on their shared
    fresh evidence by more than noise (one-sided paired p below ``spec.alpha``); else that
    finalist is. Returns the pick and, when it changed, why."""
    top = contenders[best]
    singles = [k for k in eligible if not contenders[k].record.is_combined]
    if not top.record.is_combined or not singles:
        return best, ""
    alone_k = max(singles, key=lambda k: _rank(contenders[k]))
    alone = contenders[alone_k]
    ids = [p.id for p in alone.evidence.predictions]
    mine = {p.id for p in top.evidence.predictions}
    shared = [i for i in ids if i in mine]
    if not shared:
        return best, ""
    theirs, ours = subset(alone.evidence, shared), subset(top.evidence, shared)
    p = one_sided_p(theirs, ours)
    if p < spec.alpha:
        return best, ""
    diff = value(ours, ctx) - value(theirs, ctx)
    return alone_k, (
        f"trial {top.record.number} (combined from the finalists) is {diff:+.3f} against trial "
        f"{alone.record.number} alone on {len(shared)} shared fresh examples (one-sided p = {p:.3g}): no more than "
        "noise, so the single prompt is picked"
    )


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
    ctx: KindContext,
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
    best, simpler = _prefer_single(spec, contenders, eligible, best, ctx)
    top = contenders[best]
    p, test = _adjusted_p(spec, contenders, best, ctx.seed)
    n = len(top.evidence.predictions)
    figures = (
        f"trial {top.record.number}: {top.gain:+.3f} over the baseline on {n} fresh examples "
        f"({n_holdout} held-out dev, {n - n_holdout} train), adjusted one-sided p = {p:.3g}"
    )
    decided = {"picked": top.record.number, "p_value": p, "test": test, "evidence": n}
    if passed_over:
        figures += "; passed over: " + "; ".join(_not_eligible(c) for c in passed_over)
    if simpler:
        figures += f"; {simpler}"
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
