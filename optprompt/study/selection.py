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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from optprompt.trials import Role, TrialRecord, encode

if TYPE_CHECKING:
    import optuna

    from optprompt.config.spec import SelectionSpec
    from optprompt.kinds.base import Candidate, KindContext
    from optprompt.kinds.registry import CandidateKinds
    from optprompt.scoring.evaluate import Evaluation
    from optprompt.stats import PairedComparison
    from optprompt.tasks.task import Example

__all__ = ["Selection", "select_winner", "one_sided_p", "compare_evaluations"]


@dataclass
class Selection:
    """What held-out selection decided (``result.json["selection"]``)."""

    winner: optuna.trial.FrozenTrial
    kept_baseline: bool
    why: str
    info: dict[str, Any] = field(default_factory=dict)


def compare_evaluations(baseline: Evaluation, winner: Evaluation) -> PairedComparison:
    """The paired test of two evaluations on the same examples: a paired bootstrap of the
    corpus-level metric when they carry per-example counts (entity F1), else McNemar / the
    paired bootstrap of per-example scores."""
    from optprompt.stats import compare, paired_bootstrap_corpus

    if baseline.counts is not None and winner.counts is not None and baseline.statistic is not None:
        return paired_bootstrap_corpus(baseline.counts, winner.counts, baseline.statistic)
    return compare(baseline.scores, winner.scores)


def one_sided_p(baseline: Evaluation, challenger: Evaluation) -> float:
    """p-value of "the challenger is better than the baseline", from the same paired test
    the study's test comparison uses (two-sided there, halved here)."""
    result = compare_evaluations(baseline, challenger)
    if result.difference.estimate == 0:
        return 1.0
    return result.p_value / 2 if result.difference.estimate > 0 else 1.0 - result.p_value / 2


def _finalists(
    complete: Sequence[optuna.trial.FrozenTrial], baseline_hash: str, n: int
) -> list[optuna.trial.FrozenTrial]:
    """The ``n`` best distinct candidates on dev (the baseline's hash excluded), best first."""
    out: list[optuna.trial.FrozenTrial] = []
    seen = {baseline_hash}
    for t in sorted(complete, key=lambda t: (-t.values[0], t.number)):
        h = TrialRecord.from_frozen(t).hash
        if h in seen:
            continue
        seen.add(h)
        out.append(t)
        if len(out) == n:
            break
    return out


def _combined(
    study: optuna.Study | None,
    finalists: Sequence[optuna.trial.FrozenTrial],
    spec: SelectionSpec,
    kinds: CandidateKinds,
    ctx: KindContext,
) -> list[optuna.trial.FrozenTrial]:
    """Candidates kinds build from the finalists (a prompt ensemble...), scored on dev and
    recorded as trials of the study (role ``combined``: they do not count against the budget)."""
    import optuna

    if study is None or spec.ensemble < 2:
        return []
    chosen = [TrialRecord.from_frozen(t) for t in finalists]
    pairs = [(kinds.from_dict(r.candidate), r.offsets) for r in chosen]
    known = {r.hash: t for t in study.get_trials(deepcopy=False) if (r := TrialRecord.from_frozen(t)).is_complete}
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
        study.add_trial(
            optuna.trial.create_trial(
                value=ev.value,
                user_attrs=encode(
                    role=Role.COMBINED, candidate=cand.to_dict(), hash=cand.hash, metrics=ev.metrics, dev_scored=0
                ),
            )
        )
        added = [t for t in study.get_trials(deepcopy=False) if TrialRecord.from_frozen(t).hash == cand.hash]
        out.append(added[-1])
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


def select_winner(
    spec: SelectionSpec,
    complete: Sequence[optuna.trial.FrozenTrial],
    baseline_trial: optuna.trial.FrozenTrial,
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
    from optprompt.errors import DataError
    from optprompt.stats import bonferroni, max_t_sign_flip

    pool = _train_pool(train, spec.train, ctx.seed) if spec.train else []

    def score(t: optuna.trial.FrozenTrial) -> tuple[Evaluation, list[str]]:
        record = TrialRecord.from_frozen(t)
        cand: Candidate = kinds.from_dict(record.candidate)
        fresh = kinds.of(cand).fresh(cand, ctx, pool) if pool else []
        with kinds.of(cand).scorer(cand, ctx) as evaluator:
            try:
                ev = evaluator.evaluate(cand, [*holdout, *fresh], "selection", offsets=record.offsets)
            except DataError as e:  # a train row that does not fit the context (task.truncate: error)
                notes.append(f"trial {t.number}: scored on the held-out part of dev alone ({e})")
                ev = evaluator.evaluate(cand, holdout, "selection", offsets=record.offsets)
                fresh = []
        return ev, [ex.id for ex in fresh]

    notes: list[str] = []
    ctx.note(f"selection: scoring the finalists on {len(holdout)} held-out dev and up to {len(pool)} train examples")
    base, base_train = score(baseline_trial)
    base_ids = {p.id for p in base.predictions}
    holdout_ids = [ex.id for ex in holdout]
    rows: list[dict[str, Any]] = []
    scored: list[tuple[optuna.trial.FrozenTrial, Evaluation, Evaluation, float]] = []
    finalists = _finalists(complete, TrialRecord.from_frozen(baseline_trial).hash or "", spec.finalists)
    for t in finalists + _combined(study, finalists, spec, kinds, ctx):
        ev, fresh_train = score(t)
        shared = holdout_ids + [i for i in fresh_train if i in base_ids]
        mine, theirs = _subset(ev, shared), _subset(base, shared)
        gain = _value(mine, ctx) - _value(theirs, ctx)
        scored.append((t, mine, theirs, gain))
        held = _value(_subset(ev, holdout_ids), ctx)
        rows.append(
            {"trial": t.number, "dev": t.values[0], "holdout": held, "evidence": len(shared), "gain": round(gain, 6)}
        )
        record = TrialRecord.from_frozen(t)
        if record.is_combined:
            rows[-1]["combined"] = kinds.of_dict(record.candidate).label
    info: dict[str, Any] = {
        "holdout": len(holdout),
        "searched": len(ctx.dev),
        "train": len(base_train),
        "baseline_holdout": _value(_subset(base, holdout_ids), ctx),
        "finalists": rows,
        "do_no_harm": spec.do_no_harm,
        "alpha": spec.alpha,
    }
    if notes:
        info["notes"] = notes
    if not scored:
        return Selection(baseline_trial, True, "no candidate other than the baseline finished", info)
    best = max(range(len(scored)), key=lambda k: (scored[k][3], scored[k][0].values[0], -scored[k][0].number))
    top, top_ev, top_base, gain = scored[best]
    corpus = top_ev.counts is not None
    if not spec.adjust:
        p = one_sided_p(top_base, top_ev)
        test = "one-sided paired test of the picked finalist (not adjusted for the pick)"
    elif corpus:
        p = bonferroni(one_sided_p(top_base, top_ev), len(scored))
        test = f"paired bootstrap of the corpus metric, Bonferroni over {len(scored)} finalists"
    else:
        diffs = [
            {pm.id: pm.score - pb.score for pm, pb in zip(mine.predictions, theirs.predictions)}
            for _, mine, theirs, _ in scored
        ]
        p = max_t_sign_flip(diffs, best, seed=ctx.seed)
        test = f"max-T sign-flip permutation over {len(scored)} finalists"
    info.update(picked=top.number, p_value=p, test=test, evidence=len(top_ev.predictions))
    figures = (
        f"trial {top.number}: {gain:+.3f} over the baseline on {len(top_ev.predictions)} fresh examples "
        f"({len(holdout)} held-out dev, {len(top_ev.predictions) - len(holdout)} train), adjusted one-sided p = {p:.3g}"
    )
    if spec.do_no_harm and (gain <= 0 or p >= spec.alpha):
        why = (
            f"do no harm: the best finalist ({figures}) does not beat the baseline significantly "
            f"(alpha {spec.alpha}; {test}); the winner is the baseline"
        )
        info.update(kept_baseline=True)
        return Selection(baseline_trial, True, why, info)
    info.update(kept_baseline=False)
    return Selection(top, False, f"picked on fresh evidence ({figures}; {test})", info)


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
