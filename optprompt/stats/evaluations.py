"""Paired tests between two :class:`~optprompt.scoring.evaluate.Evaluation` objects of the
same examples: what the end of a study, selection and ``optprompt evaluate`` compare with."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optprompt.scoring.evaluate import Evaluation
    from optprompt.stats.bootstrap import PairedComparison

__all__ = ["compare_evaluations", "one_sided_p"]


def compare_evaluations(baseline: Evaluation, winner: Evaluation) -> PairedComparison:
    """The paired test of two evaluations on the same examples: a paired bootstrap of the
    corpus-level metric when they carry per-example counts (entity F1), else McNemar / the
    paired bootstrap of per-example scores."""
    from optprompt.stats.bootstrap import paired_bootstrap_corpus
    from optprompt.stats.paired import compare

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
