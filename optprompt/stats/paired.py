"""Paired significance tests for two prompts scored on the same examples."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from optprompt.stats.bootstrap import (
    PairedComparison,
    _as_paired_scores,
    _check_n_resamples,
    paired_bootstrap,
)

__all__ = ["McNemarResult", "compare", "mcnemar", "permutation_test"]

# Largest number of discordant pairs for which McNemar uses the exact binomial test.
EXACT_MAX_DISCORDANT = 50

# Sign-flip matrices are built in chunks of at most this many cells.
_MAX_CHUNK_CELLS = 2_000_000


@dataclass(frozen=True)
class McNemarResult:
    """Outcome of McNemar's test on paired binary outcomes.

    Attributes:
        b01: Pairs where ``a`` is wrong and ``b`` is right.
        b10: Pairs where ``a`` is right and ``b`` is wrong.
        statistic: ``min(b01, b10)`` for the exact test; the continuity-corrected
            chi-square statistic for the chi-square test.
        p_value: Two-sided p-value for "``a`` and ``b`` are equally accurate".
        method: ``"exact"`` or ``"chi2"``.
    """

    b01: int
    b10: int
    statistic: float
    p_value: float
    method: str

    @property
    def n_discordant(self) -> int:
        """Number of pairs on which ``a`` and ``b`` disagree."""
        return self.b01 + self.b10

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary of the fields."""
        return {
            "b01": self.b01,
            "b10": self.b10,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "method": self.method,
        }


def mcnemar(a_correct: Sequence[float], b_correct: Sequence[float]) -> McNemarResult:
    """McNemar's test for paired binary outcomes.

    Only discordant pairs carry information: ``b01`` counts examples that
    ``a`` gets wrong and ``b`` gets right, ``b10`` the reverse. Under the null
    hypothesis each discordant pair is a fair coin flip.

    * When ``b01 + b10 <= 50`` the exact two-sided binomial test is used:
      ``p = min(1, 2 * P(X <= min(b01, b10)))`` with
      ``X ~ Binomial(b01 + b10, 1/2)``, computed exactly with integers.
    * Otherwise the chi-square test with continuity correction is used:
      ``stat = max(|b01 - b10| - 1, 0)**2 / (b01 + b10)`` and
      ``p = P(chi2_1 > stat) = erfc(sqrt(stat / 2))``. The ``max(..., 0)``
      keeps a tie at ``stat = 0`` (``p = 1``) rather than ``1 / n``.

    With no discordant pairs the test is exact with ``p = 1``.

    Args:
        a_correct: Correctness of the first prompt, one 0/1 (or bool) per example.
        b_correct: Correctness of the second prompt on the same examples.

    Returns:
        The counts, statistic, p-value and method.

    Raises:
        ValueError: If either input is empty, holds a value other than 0 or 1,
            or the lengths differ.
    """
    xa, xb = _as_paired_scores(a_correct, b_correct, ("a_correct", "b_correct"))
    _check_binary(xa, "a_correct")
    _check_binary(xb, "b_correct")
    b01 = int(np.count_nonzero((xa == 0) & (xb == 1)))
    b10 = int(np.count_nonzero((xa == 1) & (xb == 0)))
    n = b01 + b10

    if n <= EXACT_MAX_DISCORDANT:
        k = min(b01, b10)
        tail = sum(math.comb(n, i) for i in range(k + 1))
        p_value = min(1.0, 2 * tail / 2**n)
        return McNemarResult(b01, b10, float(k), p_value, "exact")

    statistic = max(abs(b01 - b10) - 1, 0) ** 2 / n
    return McNemarResult(b01, b10, statistic, _chi2_sf_1df(statistic), "chi2")


def permutation_test(
    a: Sequence[float],
    b: Sequence[float],
    *,
    n_resamples: int = 10000,
    seed: int | None = 0,
) -> float:
    """Paired sign-flip permutation test for the mean difference ``mean(b) - mean(a)``.

    Under the null hypothesis the labels within each pair are exchangeable, so
    each per-example difference ``b[i] - a[i]`` is equally likely to carry
    either sign. The test draws ``n_resamples`` random sign vectors and counts
    how often ``|mean(sign * d)|`` reaches the observed ``|mean(d)|``. The
    p-value ``(count + 1) / (n_resamples + 1)`` counts the observed assignment
    as one of the permutations, so it is never zero.

    Args:
        a: Baseline scores, one per example.
        b: Other scores for the same examples, in the same order.
        n_resamples: Number of random sign flips.
        seed: Seed for the random generator; the same seed gives the same p-value.

    Returns:
        The two-sided p-value in ``(0, 1]``.

    Raises:
        ValueError: If ``a`` or ``b`` is empty or holds a non-finite number, if
            their lengths differ, or if ``n_resamples`` is not a positive integer.
    """
    xa, xb = _as_paired_scores(a, b)
    _check_n_resamples(n_resamples)
    diff = xb - xa
    observed = abs(float(diff.mean()))
    # Tolerate rounding so that sign patterns with the same exact mean count as ties.
    threshold = observed - 1e-12 * max(1.0, observed)

    rng = np.random.default_rng(seed)
    rows_per_chunk = max(1, _MAX_CHUNK_CELLS // diff.size)
    count = 0
    done = 0
    while done < n_resamples:
        rows = min(rows_per_chunk, n_resamples - done)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(rows, diff.size))
        flipped = np.abs((signs * diff).mean(axis=1))
        count += int(np.count_nonzero(flipped >= threshold))
        done += rows
    return (count + 1) / (n_resamples + 1)


def compare(
    baseline: Sequence[float],
    winner: Sequence[float],
    *,
    binary: bool | None = None,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> PairedComparison:
    """Compare a winning prompt with the baseline on the same test examples.

    The intervals always come from :func:`paired_bootstrap`. The p-value comes
    from :func:`mcnemar` when the scores are binary and from the paired
    bootstrap otherwise.

    Args:
        baseline: Baseline scores, one per test example.
        winner: Winner scores for the same examples, in the same order.
        binary: ``True`` to use McNemar's test (scores must be 0/1), ``False``
            to use the paired bootstrap p-value, ``None`` to pick McNemar when
            every score in both vectors is 0 or 1.
        n_resamples: Number of bootstrap resamples for the intervals.
        confidence: Nominal coverage of the intervals, in ``(0, 1)``.
        seed: Seed for the random generator.

    Returns:
        A :class:`PairedComparison` whose ``test`` is ``"mcnemar-exact"``,
        ``"mcnemar-chi2"`` or ``"paired-bootstrap"``.

    Raises:
        ValueError: If the inputs are empty, hold non-finite numbers or differ
            in length, if ``binary=True`` but a score is not 0 or 1, or if
            ``n_resamples`` or ``confidence`` is out of range.
    """
    xa, xb = _as_paired_scores(baseline, winner, ("baseline", "winner"))
    if binary is None:
        binary = _is_binary(xa) and _is_binary(xb)
    elif binary:
        _check_binary(xa, "baseline")
        _check_binary(xb, "winner")

    result = paired_bootstrap(xa, xb, n_resamples=n_resamples, confidence=confidence, seed=seed)
    if not binary:
        return result

    test = mcnemar(xa, xb)
    return PairedComparison(
        baseline=result.baseline,
        winner=result.winner,
        difference=result.difference,
        p_value=test.p_value,
        test=f"mcnemar-{test.method}",
        n=result.n,
    )


def _is_binary(values: np.ndarray) -> bool:
    return bool(np.all((values == 0) | (values == 1)))


def _check_binary(values: np.ndarray, name: str) -> None:
    bad = np.flatnonzero((values != 0) & (values != 1))
    if bad.size:
        raise ValueError(f"{name} must hold only 0/1 outcomes; index {int(bad[0])} is {float(values[bad[0]])!r}")


def _chi2_sf_1df(statistic: float) -> float:
    """Survival function of the chi-square distribution with one degree of freedom.

    If ``Z`` is standard normal, ``P(Z**2 > x) = P(|Z| > sqrt(x)) = erfc(sqrt(x / 2))``.
    """
    return math.erfc(math.sqrt(statistic / 2.0))
