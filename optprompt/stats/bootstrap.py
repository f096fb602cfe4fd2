"""Percentile bootstrap confidence intervals for per-example scores.

The functions here resample *examples*: a score vector holds one number per
test example (for instance 0/1 correctness), and every resample draws example
indices with replacement. :func:`paired_bootstrap` draws the same indices for
both prompts, so the correlation between them (they answer the same questions)
is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from optprompt.results.comparison import Interval, PairedComparison

__all__ = ["Interval", "PairedComparison", "bootstrap_ci", "paired_bootstrap", "paired_bootstrap_corpus"]

# Upper bound on the number of cells (resamples x examples) held in memory at once.
_MAX_CHUNK_CELLS = 2_000_000

_STATISTICS: dict[str, Callable[..., np.ndarray]] = {
    "mean": np.mean,
    "median": np.median,
}


def bootstrap_ci(
    values: Sequence[float],
    *,
    statistic: str = "mean",
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> Interval:
    """Percentile bootstrap confidence interval for a statistic of per-example scores.

    Args:
        values: One score per example, e.g. 0/1 correctness.
        statistic: ``"mean"`` or ``"median"``.
        n_resamples: Number of bootstrap resamples.
        confidence: Nominal coverage of the interval, in ``(0, 1)``.
        seed: Seed for the random generator; the same seed gives the same interval.

    Returns:
        The statistic of ``values`` with the ``(1 - confidence) / 2`` and
        ``(1 + confidence) / 2`` quantiles of its bootstrap distribution.

    Raises:
        ValueError: If ``values`` is empty, not one-dimensional or holds a
            non-finite number, if ``statistic`` is unknown, or if
            ``n_resamples`` or ``confidence`` is out of range.
    """
    data = _as_scores(values, "values")
    if statistic not in _STATISTICS:
        raise ValueError(f"statistic must be one of {sorted(_STATISTICS)}, got {statistic!r}")
    _check_n_resamples(n_resamples)
    _check_confidence(confidence)
    stat = _STATISTICS[statistic]

    rng = np.random.default_rng(seed)
    boot = np.concatenate([stat(data[idx], axis=1) for idx in _resample_indices(rng, data.size, n_resamples)])
    low, high = _percentiles(boot, confidence)
    return Interval(float(stat(data)), low, high, confidence)


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> PairedComparison:
    """Paired percentile bootstrap for the difference ``mean(b) - mean(a)``.

    Each resample draws example indices with replacement and applies them to
    both vectors, so the three intervals (``a``, ``b`` and their difference)
    come from the same resamples.

    The p-value is the percentile (confidence-interval inversion) p-value:
    the fraction of resampled differences on the other side of zero from the
    observed difference (a resampled difference of exactly zero counts as the
    other side), doubled and clipped to 1. It is the smallest ``1 - confidence``
    at which the percentile interval of the difference would reach zero, so
    ``p < 1 - confidence`` agrees with the interval excluding zero. When the
    bootstrap distribution is symmetric about the observed difference this
    equals the "shift" p-value of Berg-Kirkpatrick et al. (2012). An observed
    difference of exactly zero gives ``p = 1``. The resolution is
    ``1 / n_resamples``, so ``p = 0`` means "below that resolution".

    Args:
        a: Baseline scores, one per example.
        b: Winner scores for the same examples, in the same order.
        n_resamples: Number of bootstrap resamples.
        confidence: Nominal coverage of the intervals, in ``(0, 1)``.
        seed: Seed for the random generator; the same seed gives the same result.

    Returns:
        A :class:`PairedComparison` with ``test="paired-bootstrap"``.

    Raises:
        ValueError: If ``a`` or ``b`` is empty, not one-dimensional or holds a
            non-finite number, if their lengths differ, or if ``n_resamples`` or
            ``confidence`` is out of range.
    """
    xa, xb = _as_paired_scores(a, b)
    _check_n_resamples(n_resamples)
    _check_confidence(confidence)

    rng = np.random.default_rng(seed)
    diff = xb - xa
    chunks = [
        (xa[idx].mean(axis=1), xb[idx].mean(axis=1), diff[idx].mean(axis=1))
        for idx in _resample_indices(rng, xa.size, n_resamples)
    ]
    boot_a, boot_b, boot_diff = (np.concatenate(parts) for parts in zip(*chunks, strict=True))

    mean_a = float(xa.mean())
    mean_b = float(xb.mean())
    observed = float(diff.mean())

    return PairedComparison(
        baseline=Interval(mean_a, *_percentiles(boot_a, confidence), confidence),
        winner=Interval(mean_b, *_percentiles(boot_b, confidence), confidence),
        difference=Interval(observed, *_percentiles(boot_diff, confidence), confidence),
        p_value=_percentile_p_value(boot_diff, observed),
        test="paired-bootstrap",
        n=int(xa.size),
    )


def paired_bootstrap_corpus(
    a: Sequence[Any],
    b: Sequence[Any],
    statistic: Callable[[np.ndarray], Any],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> PairedComparison:
    """Paired percentile bootstrap for a corpus-level metric, such as entity micro F1.

    ``a`` and ``b`` hold one array of counts per example (e.g. per-type true positives,
    false positives and false negatives); the metric of a set of examples is
    ``statistic(sum of their counts)``, which is not a mean of per-example scores. Each
    resample draws example indices with replacement, applies them to both prompts and
    recomputes both metrics and their difference; intervals and the p-value follow
    :func:`paired_bootstrap` (the same percentile inversion).

    Args:
        a: Baseline counts, one array (all of one shape) per example.
        b: Winner counts for the same examples, in the same order.
        statistic: Summed counts (shape ``(..., *counts shape)``) -> metric values
            (shape ``(...)``), vectorised over the leading axes.
        n_resamples / confidence / seed: As for :func:`paired_bootstrap`.

    Returns:
        A :class:`PairedComparison` with ``test="paired-bootstrap"``: the baseline's and
        the winner's metric and ``winner - baseline``, each with its interval.

    Raises:
        ValueError: empty inputs, different lengths or shapes, non-finite counts, or
            ``n_resamples`` / ``confidence`` out of range.
    """
    xa = np.asarray(a, dtype=np.float64)
    xb = np.asarray(b, dtype=np.float64)
    if xa.ndim < 1 or xa.shape[0] == 0:
        raise ValueError("a must hold the counts of at least one example")
    if xa.shape != xb.shape:
        raise ValueError(f"a and b must have the same shape, got {xa.shape} and {xb.shape}")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(xb))):
        raise ValueError("counts must be finite numbers")
    _check_n_resamples(n_resamples)
    _check_confidence(confidence)
    n = xa.shape[0]
    cells = int(np.prod(xa.shape[1:])) or 1

    rng = np.random.default_rng(seed)
    parts_a, parts_b = [], []
    for idx in _resample_indices(rng, n, n_resamples, cells_per_index=cells):
        parts_a.append(np.asarray(statistic(xa[idx].sum(axis=1)), dtype=np.float64))
        parts_b.append(np.asarray(statistic(xb[idx].sum(axis=1)), dtype=np.float64))
    boot_a = np.concatenate(parts_a)
    boot_b = np.concatenate(parts_b)
    boot_diff = boot_b - boot_a
    value_a = float(statistic(xa.sum(axis=0)))
    value_b = float(statistic(xb.sum(axis=0)))
    observed = value_b - value_a
    return PairedComparison(
        baseline=Interval(value_a, *_percentiles(boot_a, confidence), confidence),
        winner=Interval(value_b, *_percentiles(boot_b, confidence), confidence),
        difference=Interval(observed, *_percentiles(boot_diff, confidence), confidence),
        p_value=_percentile_p_value(boot_diff, observed),
        test="paired-bootstrap",
        n=int(n),
    )


def _as_scores(values: Sequence[float], name: str) -> np.ndarray:
    """Convert a score sequence to a validated 1-D float array.

    Args:
        values: The scores.
        name: Argument name used in error messages.

    Returns:
        A new one-dimensional ``float64`` array.

    Raises:
        ValueError: If ``values`` cannot be read as numbers, is not
            one-dimensional, is empty or holds NaN or infinity.
    """
    try:
        data = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a sequence of numbers: {exc}") from exc
    if data.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {data.shape}")
    if data.size == 0:
        raise ValueError(f"{name} must not be empty")
    bad = np.flatnonzero(~np.isfinite(data))
    if bad.size:
        raise ValueError(f"{name} must hold only finite numbers; index {int(bad[0])} is {float(data[bad[0]])!r}")
    return data


def _as_paired_scores(
    a: Sequence[float], b: Sequence[float], names: tuple[str, str] = ("a", "b")
) -> tuple[np.ndarray, np.ndarray]:
    """Validate two paired score sequences and return them as float arrays.

    Args:
        a: First score sequence.
        b: Second score sequence, aligned with ``a``.
        names: Argument names used in error messages.

    Returns:
        The two validated arrays.

    Raises:
        ValueError: If either sequence is invalid (see :func:`_as_scores`) or
            their lengths differ.
    """
    xa = _as_scores(a, names[0])
    xb = _as_scores(b, names[1])
    if xa.size != xb.size:
        raise ValueError(f"{names[0]} and {names[1]} must have the same length, got {xa.size} and {xb.size}")
    return xa, xb


def _check_n_resamples(n_resamples: int) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)):
        raise ValueError(f"n_resamples must be an integer, got {n_resamples!r}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples!r}")


def _check_confidence(confidence: float) -> None:
    if not (isinstance(confidence, (int, float, np.floating)) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


def _resample_indices(
    rng: np.random.Generator, n: int, n_resamples: int, *, cells_per_index: int = 1
) -> Iterator[np.ndarray]:
    """Yield index matrices of shape ``(rows, n)`` totalling ``n_resamples`` rows.

    Chunking keeps memory bounded for large test sets (``cells_per_index``: values each
    drawn index brings along); for a given ``n`` the chunk sizes are fixed, so results
    depend only on the seed.
    """
    rows_per_chunk = max(1, _MAX_CHUNK_CELLS // (n * cells_per_index))
    done = 0
    while done < n_resamples:
        rows = min(rows_per_chunk, n_resamples - done)
        yield rng.integers(0, n, size=(rows, n))
        done += rows


def _percentiles(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    return float(low), float(high)


def _percentile_p_value(boot_diff: np.ndarray, observed: float) -> float:
    if observed == 0.0:
        return 1.0
    if observed > 0.0:
        other_side = np.count_nonzero(boot_diff <= 0.0)
    else:
        other_side = np.count_nonzero(boot_diff >= 0.0)
    return min(1.0, 2.0 * int(other_side) / boot_diff.size)
