"""Honest tests for "the best of K candidates beats the baseline".

Picking the best of K finalists and then testing it against the baseline on the very
examples it was picked on overstates the evidence (the winner's curse). The tests here
account for the pick:

- :func:`max_t_sign_flip`: single-step max-T (Westfall and Young) with paired sign flips.
  Each finalist ``k`` has per-example differences ``d_ik = score_k(i) - baseline(i)`` on
  its own examples; its statistic is ``T_k = sum_i d_ik / sqrt(sum_i d_ik^2)`` (the
  denominator does not change under sign flips). Under the complete null every example's
  differences are exchangeable in sign, so one sign per example is drawn for all finalists
  at once (keeping their correlation), and the adjusted one-sided p-value of finalist
  ``w`` is the share of draws whose largest ``T`` reaches ``T_w``.
- :func:`bonferroni`: for metrics that are not a mean of per-example scores (corpus-level
  entity F1): ``min(1, K * p)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["max_t_sign_flip", "bonferroni", "t_statistic"]


def t_statistic(diffs: Sequence[float]) -> float:
    """``sum(d) / sqrt(sum(d^2))``: 0 when every difference is 0."""
    d = np.asarray(diffs, dtype=np.float64)
    scale = math.sqrt(float(np.sum(d * d)))
    return float(np.sum(d)) / scale if scale > 0 else 0.0


def max_t_sign_flip(
    diffs: Sequence[Mapping[str, float]],
    winner: int,
    *,
    n_resamples: int = 10000,
    seed: int | None = 0,
) -> float:
    """The one-sided p-value of "finalist ``winner`` beats the baseline", adjusted for
    having picked it among ``len(diffs)`` finalists.

    Args:
        diffs: One mapping per finalist: example id -> its score minus the baseline's on
            that example (finalists may be scored on different examples; an example
            shared by several gets one sign per draw).
        winner: The index of the finalist that was picked.
        n_resamples: Random sign draws.
        seed: The same seed gives the same p-value.

    Returns:
        ``(1 + #{draws: max_k T_k >= T_winner}) / (1 + n_resamples)``, in ``(0, 1]``.

    Raises:
        ValueError: No finalists, ``winner`` out of range, a non-finite difference, or
            ``n_resamples`` below 1.
    """
    if not diffs:
        raise ValueError("max_t_sign_flip needs at least one finalist")
    if not 0 <= winner < len(diffs):
        raise ValueError(f"winner must index one of the {len(diffs)} finalists, got {winner!r}")
    if not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    ids = sorted({i for d in diffs for i in d})
    col = {i: j for j, i in enumerate(ids)}
    matrix = np.zeros((len(diffs), len(ids)), dtype=np.float64)
    for k, d in enumerate(diffs):
        for i, v in d.items():
            if not math.isfinite(v):
                raise ValueError(f"finalist {k}: the difference on example {i!r} is not finite ({v!r})")
            matrix[k, col[i]] = v
    scale = np.sqrt(np.sum(matrix * matrix, axis=1))
    scale[scale == 0] = np.inf  # a finalist equal to the baseline everywhere: T = 0
    observed = float(np.sum(matrix[winner]) / scale[winner]) if np.isfinite(scale[winner]) else 0.0
    rng = np.random.default_rng(seed)
    hits = 0
    chunk = max(1, min(n_resamples, 2_000_000 // max(1, len(ids))))
    done = 0
    while done < n_resamples:
        rows = min(chunk, n_resamples - done)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(rows, len(ids)))
        t = (signs @ matrix.T) / scale  # rows x finalists
        hits += int(np.sum(t.max(axis=1) >= observed - 1e-12))
        done += rows
    return (hits + 1) / (n_resamples + 1)


def bonferroni(p_value: float, n: int) -> float:
    """``min(1, n * p)``: a p-value adjusted for picking the best of ``n``."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n!r}")
    return min(1.0, p_value * n)
