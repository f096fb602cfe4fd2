"""Heuristic warnings for a prompt "win" that may not be real.

An optimizer picks the best of many candidates on a dev split, so the dev
score of the winner is biased upwards. These checks compare the dev and test
results and flag wins that look like noise or overfitting. They are
heuristics for a human reader, not formal tests.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["DEV_TEST_GAP_RATIO", "doubtful_win_warnings", "selection_noise_gain"]

# A test gain below this fraction of the dev gain counts as a dev-test gap.
DEV_TEST_GAP_RATIO = 0.5


def doubtful_win_warnings(
    *,
    dev_baseline: float,
    dev_winner: float,
    test_baseline: float,
    test_winner: float,
    n_candidates: int,
    n_dev: int,
    p_value: float,
    alpha: float = 0.05,
) -> list[str]:
    """Return human-readable reasons to doubt that the winner beats the baseline.

    All scores are mean per-example scores in ``[0, 1]`` (e.g. accuracy).
    ``dev gain = dev_winner - dev_baseline``, ``test gain = test_winner - test_baseline``.
    The checks, in the order their warnings appear:

    1. **No test gain**: the winner scores at or below the baseline on test.
    2. **Not significant**: the test p-value is at least ``alpha``.
    3. **Dev-test gap**: the dev gain is positive and the test gain is below
       ``DEV_TEST_GAP_RATIO`` (one half) of it, a sign that the winner was
       fitted to the dev split.
    4. **Selection noise**: with ``n_candidates >= 2``, picking the best of N
       candidates that are all really as good as the baseline still yields a
       dev gain of about ``std * sqrt(2 * ln N)``, where
       ``std = sqrt(p * (1 - p) / n_dev)`` is the binomial standard error of a
       dev accuracy and ``p = dev_baseline``. ``sqrt(2 ln N)`` is the usual
       approximation (and upper bound) of the expected maximum of N standard
       normal draws. The warning fires when the observed dev gain does not
       exceed this amount. The heuristic treats candidates as independent,
       which overstates the noise when candidates agree on most examples, so
       it errs towards warning.

    Args:
        dev_baseline: Baseline mean score on the dev split.
        dev_winner: Winner mean score on the dev split.
        test_baseline: Baseline mean score on the test split.
        test_winner: Winner mean score on the test split.
        n_candidates: Number of candidate prompts scored on dev to pick the winner.
        n_dev: Number of dev examples.
        p_value: Two-sided p-value of the winner-vs-baseline test on the test split.
        alpha: Significance level in ``(0, 1)``.

    Returns:
        The warnings, empty when none applies.

    Raises:
        ValueError: If a score is not a finite number in ``[0, 1]``, if
            ``n_candidates`` or ``n_dev`` is not a positive integer, if
            ``p_value`` is outside ``[0, 1]`` or ``alpha`` outside ``(0, 1)``.
    """
    scores = {
        "dev_baseline": dev_baseline,
        "dev_winner": dev_winner,
        "test_baseline": test_baseline,
        "test_winner": test_winner,
    }
    for name, value in scores.items():
        _check_unit_interval(value, name)
    _check_positive_int(n_candidates, "n_candidates")
    _check_positive_int(n_dev, "n_dev")
    _check_unit_interval(p_value, "p_value")
    if not (_is_real(alpha) and 0.0 < alpha < 1.0):
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")

    dev_gain = dev_winner - dev_baseline
    test_gain = test_winner - test_baseline
    warnings: list[str] = []

    if test_gain <= 0.0:
        warnings.append(
            f"The winner does not beat the baseline on test "
            f"({test_winner:.3f} vs {test_baseline:.3f}, gain {test_gain:+.3f})."
        )
    if p_value >= alpha:
        warnings.append(
            f"The test difference is not statistically significant (p = {p_value:.3g} >= alpha = {alpha:g})."
        )
    if dev_gain > 0.0 and test_gain < DEV_TEST_GAP_RATIO * dev_gain:
        warnings.append(
            f"The dev gain ({dev_gain:+.3f}) is much larger than the test gain "
            f"({test_gain:+.3f}); the winner may be overfitted to the dev split."
        )
    if n_candidates >= 2:
        noise_gain = selection_noise_gain(dev_baseline, n_dev=n_dev, n_candidates=n_candidates)
        if dev_gain <= noise_gain:
            warnings.append(
                f"The dev gain ({dev_gain:+.3f}) is within what picking the best of "
                f"{n_candidates} noisy candidates would give (about {noise_gain:+.3f} "
                f"on {n_dev} dev examples); the win may be selection noise."
            )
    return warnings


def selection_noise_gain(accuracy: float, *, n_dev: int, n_candidates: int) -> float:
    """Approximate dev gain expected from picking the best of equally good candidates.

    Args:
        accuracy: True accuracy shared by all candidates, in ``[0, 1]``.
        n_dev: Number of dev examples.
        n_candidates: Number of candidates the best is picked from.

    Returns:
        ``sqrt(accuracy * (1 - accuracy) / n_dev) * sqrt(2 * ln(n_candidates))``;
        zero for a single candidate.

    Raises:
        ValueError: If ``accuracy`` is outside ``[0, 1]`` or ``n_dev`` or
            ``n_candidates`` is not a positive integer.
    """
    _check_unit_interval(accuracy, "accuracy")
    _check_positive_int(n_dev, "n_dev")
    _check_positive_int(n_candidates, "n_candidates")
    std = math.sqrt(accuracy * (1.0 - accuracy) / n_dev)
    return std * math.sqrt(2.0 * math.log(n_candidates))


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_unit_interval(value: float, name: str) -> None:
    if not (_is_real(value) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a finite number in [0, 1], got {value!r}")


def _check_positive_int(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
