"""Statistics for judging whether a winning prompt really beats the baseline.

Typical use on a test split with per-example scores::

    from optprompt.stats import compare, doubtful_win_warnings

    result = compare(baseline_scores, winner_scores)
    print(result.difference, result.p_value, result.significant())
"""

from __future__ import annotations

from optprompt.stats.bootstrap import (
    Interval,
    PairedComparison,
    bootstrap_ci,
    paired_bootstrap,
    paired_bootstrap_corpus,
)
from optprompt.stats.evaluations import compare_evaluations, one_sided_p
from optprompt.stats.paired import McNemarResult, compare, mcnemar, permutation_test
from optprompt.stats.selection import bonferroni, max_t_sign_flip, t_statistic
from optprompt.stats.warnings import doubtful_win_warnings, selection_noise_gain

__all__ = [
    "Interval",
    "McNemarResult",
    "PairedComparison",
    "bonferroni",
    "bootstrap_ci",
    "compare",
    "compare_evaluations",
    "doubtful_win_warnings",
    "max_t_sign_flip",
    "mcnemar",
    "one_sided_p",
    "paired_bootstrap",
    "paired_bootstrap_corpus",
    "permutation_test",
    "selection_noise_gain",
    "t_statistic",
]
