"""The finalists selection re-scores: the best distinct candidates on dev, and what the
candidate kinds combine from them (a prompt ensemble), recorded as trials of the study."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from optprompt.trials import Role, TrialRecord, encode, records

if TYPE_CHECKING:
    import optuna

    from optprompt.config.spec import SelectionSpec
    from optprompt.kinds.base import KindContext
    from optprompt.kinds.registry import CandidateKinds

__all__ = ["finalists_of", "combined_from"]


def finalists_of(complete: Sequence[TrialRecord], baseline_hash: str, n: int) -> list[TrialRecord]:
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


def combined_from(
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
