"""Paired comparisons as result files hold them: a point estimate with its interval, and
the comparison of a winner with a baseline on the same examples (:mod:`optprompt.stats`
computes them; ``result.json``, ``evaluation.json`` and the report read them)."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

__all__ = ["Interval", "PairedComparison"]


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval.

    Attributes:
        estimate: The statistic computed on the observed data.
        low: Lower end of the interval.
        high: Upper end of the interval.
        confidence: Nominal coverage of the interval, in ``(0, 1)``.
    """

    estimate: float
    low: float
    high: float
    confidence: float

    def __post_init__(self) -> None:
        if not (isinstance(self.confidence, numbers.Real) and 0.0 < self.confidence < 1.0):
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence!r}")
        for name in ("estimate", "low", "high"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"Interval.{name} must be finite, got {getattr(self, name)!r}")
        if self.low > self.high:
            raise ValueError(f"Interval.low ({self.low}) must not exceed Interval.high ({self.high})")

    @property
    def width(self) -> float:
        """Width ``high - low`` of the interval."""
        return self.high - self.low

    def contains(self, value: float) -> bool:
        """Return whether ``value`` lies inside the closed interval."""
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, float]:
        """Return a JSON-ready dictionary of the fields."""
        return {
            "estimate": self.estimate,
            "low": self.low,
            "high": self.high,
            "confidence": self.confidence,
        }


@dataclass(frozen=True)
class PairedComparison:
    """Result of comparing a winning prompt against a baseline on the same examples.

    Attributes:
        baseline: Mean score of the baseline with its confidence interval.
        winner: Mean score of the winner with its confidence interval.
        difference: ``mean(winner) - mean(baseline)`` with its confidence interval.
        p_value: Two-sided p-value for "no difference" under ``test``.
        test: Name of the test that produced ``p_value``: ``"paired-bootstrap"``,
            ``"mcnemar-exact"`` or ``"mcnemar-chi2"``.
        n: Number of paired examples.
    """

    baseline: Interval
    winner: Interval
    difference: Interval
    p_value: float
    test: str
    n: int

    def __post_init__(self) -> None:
        if not 0.0 <= self.p_value <= 1.0:
            raise ValueError(f"PairedComparison.p_value must be in [0, 1], got {self.p_value!r}")
        if self.n < 1:
            raise ValueError(f"PairedComparison.n must be at least 1, got {self.n!r}")

    def significant(self, alpha: float = 0.05) -> bool:
        """Return whether the difference is significant at level ``alpha``.

        Args:
            alpha: Significance level in ``(0, 1)``.

        Returns:
            ``True`` when ``p_value < alpha``.

        Raises:
            ValueError: If ``alpha`` is outside ``(0, 1)``.
        """
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        return self.p_value < alpha

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary, with the intervals as nested dictionaries."""
        return {
            "baseline": self.baseline.to_dict(),
            "winner": self.winner.to_dict(),
            "difference": self.difference.to_dict(),
            "p_value": self.p_value,
            "test": self.test,
            "n": self.n,
        }
