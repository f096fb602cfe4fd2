"""Label-bias calibration of log-likelihood scores (classification).

Small models often prefer one answer whatever the input. Scores are first normalised
over the answer choices (log-softmax), then a per-label offset is subtracted:

- ``content_free``: the normalised scores of content-free inputs ("N/A", "[MASK]", "")
  under the same prompt (Zhao et al., 2021, "Calibrate Before Use").
- ``mean``: the mean normalised scores over a set of real inputs, labels unused
  (Zhou et al., 2023, "Batch Calibration"); found on dev and then kept fixed.

Multiple choice whose examples bring their own options has no shared labels: there
``content_free`` offsets are computed per example, from its own options after the same
content-free inputs (``Evaluator.option_offsets``), and ``mean`` does not apply.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["normalise", "mean_offsets", "apply_offsets", "CONTENT_FREE_INPUTS"]

CONTENT_FREE_INPUTS = ("N/A", "[MASK]", "")


def normalise(logliks: Sequence[float]) -> list[float]:
    """Log-softmax over the choices of one example."""
    top = max(logliks)
    lse = top + math.log(sum(math.exp(x - top) for x in logliks))
    return [x - lse for x in logliks]


def mean_offsets(rows: Sequence[Sequence[float]]) -> list[float]:
    """Per-choice mean of the normalised scores of ``rows`` (all with the same choices)."""
    if not rows:
        raise ValueError("calibration needs at least one row of scores")
    normed = [normalise(r) for r in rows]
    return [sum(r[j] for r in normed) / len(normed) for j in range(len(normed[0]))]


def apply_offsets(logliks: Sequence[float], offsets: Sequence[float]) -> list[float]:
    """Calibrated scores: normalised log-likelihoods minus the offsets."""
    if len(offsets) != len(logliks):
        raise ValueError(f"{len(offsets)} offsets for {len(logliks)} choices")
    return [x - o for x, o in zip(normalise(logliks), offsets)]
