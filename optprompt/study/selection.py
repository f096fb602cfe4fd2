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


def select_winner(
    spec: SelectionSpec,
    complete: Sequence[optuna.trial.FrozenTrial],
    baseline_trial: optuna.trial.FrozenTrial,
    holdout: Sequence[Example],
    kinds: CandidateKinds,
    ctx: KindContext,
    study: optuna.Study | None = None,
) -> Selection:
    """Score the finalists (and what kinds combine from them, when ``study`` is given to
    record it in) and the baseline on ``holdout``, and pick the winner."""

    def score(t: optuna.trial.FrozenTrial) -> Evaluation:
        record = TrialRecord.from_frozen(t)
        cand: Candidate = kinds.from_dict(record.candidate)
        with kinds.of(cand).scorer(cand, ctx) as evaluator:
            return evaluator.evaluate(cand, holdout, "holdout", offsets=record.offsets)

    ctx.note(f"selection: scoring the finalists on {len(holdout)} held-out dev examples")
    base = score(baseline_trial)
    rows: list[dict[str, Any]] = []
    scored: list[tuple[optuna.trial.FrozenTrial, Evaluation]] = []
    finalists = _finalists(complete, TrialRecord.from_frozen(baseline_trial).hash or "", spec.finalists)
    for t in finalists + _combined(study, finalists, spec, kinds, ctx):
        ev = score(t)
        scored.append((t, ev))
        rows.append({"trial": t.number, "dev": t.values[0], "holdout": ev.value})
        record = TrialRecord.from_frozen(t)
        if record.is_combined:
            rows[-1]["combined"] = kinds.of_dict(record.candidate).label
    info: dict[str, Any] = {
        "holdout": len(holdout),
        "searched": len(ctx.dev),
        "baseline_holdout": base.value,
        "finalists": rows,
        "do_no_harm": spec.do_no_harm,
        "alpha": spec.alpha,
    }
    if not scored:
        return Selection(baseline_trial, True, "no candidate other than the baseline finished", info)
    top, top_ev = max(scored, key=lambda s: (s[1].value, s[0].values[0], -s[0].number))
    p = one_sided_p(base, top_ev)
    info.update(picked=top.number, p_value=p)
    figures = f"trial {top.number}: {top_ev.value:.3f} vs the baseline's {base.value:.3f}, one-sided p = {p:.3g}"
    if spec.do_no_harm and (top_ev.value <= base.value or p >= spec.alpha):
        why = (
            f"do no harm: the best finalist on the {len(holdout)} held-out dev examples ({figures}) "
            f"does not beat the baseline significantly (alpha {spec.alpha}); the winner is the baseline"
        )
        info.update(kept_baseline=True)
        return Selection(baseline_trial, True, why, info)
    info.update(kept_baseline=False)
    return Selection(top, False, f"picked on {len(holdout)} held-out dev examples ({figures})", info)
