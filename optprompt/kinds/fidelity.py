"""Multi-fidelity scoring: dev in growing slices, reported to Optuna's pruner.

The dev split is shuffled once by the study's seed, so every candidate sees the same
examples in the same order (paired comparisons; the Wilcoxon pruner compares per-example
scores by step). Median and successive halving get the running metric after each slice;
Wilcoxon gets each example's own score with the example's position as the step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from optprompt.config.spec import PruningSpec
from optprompt.errors import pruned

if TYPE_CHECKING:
    import optuna

    from optprompt.prompts.candidate import PromptCandidate
    from optprompt.scoring.evaluate import Evaluation, Evaluator
    from optprompt.tasks.task import Example

__all__ = ["make_pruner", "slice_ends", "score_with_pruning"]


def make_pruner(spec: PruningSpec, n_dev: int) -> optuna.pruners.BasePruner:
    """The Optuna pruner a :class:`PruningSpec` names (NopPruner for ``none``)."""
    import optuna

    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=spec.warmup_trials, n_warmup_steps=0)
    if spec.pruner == "successive_halving":
        first = max(1, math.ceil(n_dev * spec.min_fraction))
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=first, reduction_factor=2)
    if spec.pruner == "wilcoxon":
        return optuna.pruners.WilcoxonPruner(p_threshold=spec.p_threshold, n_startup_steps=2)
    return optuna.pruners.NopPruner()


def slice_ends(spec: PruningSpec, n_dev: int) -> list[int]:
    """Geometric slice ends from ``min_fraction`` of dev up to all of it."""
    if spec.pruner == "none" or n_dev < 2:
        return [n_dev]
    first = max(1, math.ceil(n_dev * spec.min_fraction))
    ratio = (n_dev / first) ** (1 / max(1, spec.slices - 1))
    ends = sorted({min(n_dev, max(1, round(first * ratio**i))) for i in range(spec.slices)} | {n_dev})
    return ends


def score_with_pruning(
    evaluator: Evaluator,
    candidate: PromptCandidate,
    dev: Sequence[Example],
    trial: optuna.Trial,
    spec: PruningSpec,
    *,
    prunable: bool,
) -> Evaluation:
    """Score ``candidate`` on ``dev``; raise Optuna's ``TrialPruned`` when the pruner says so."""
    ends = slice_ends(spec, len(dev)) if prunable else [len(dev)]
    reported = 0
    last: Any = None
    for ev in evaluator.iter_evaluate(candidate, dev, "dev", slices=ends):
        last = ev
        n = len(ev.predictions)
        if spec.pruner == "none":
            continue
        # Unprunable trials (the baseline) report too: pruners compare against them.
        if spec.pruner == "wilcoxon":
            for i in range(reported, n):
                trial.report(ev.predictions[i].score, step=i)
        else:
            trial.report(ev.value, step=n)
        reported = n
        if prunable and n < len(dev) and trial.should_prune():
            raise pruned(f"pruned after {n} of {len(dev)} dev examples (running value {ev.value:.4f})", scored=n)
    return last
