from __future__ import annotations

import json
import math

import numpy as np
import pytest

from optprompt.stats import Interval, PairedComparison, bootstrap_ci, paired_bootstrap


def _binary(p: float, n: int) -> list[float]:
    """A 0/1 vector of length ``n`` whose mean is exactly ``round(p * n) / n``."""
    ones = round(p * n)
    return [1.0] * ones + [0.0] * (n - ones)


def test_bootstrap_ci_estimate_is_the_mean_and_interval_contains_it() -> None:
    values = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 0, 1]
    ci = bootstrap_ci(values)
    assert ci.estimate == pytest.approx(8 / 12)
    assert ci.low < ci.estimate < ci.high
    assert ci.contains(ci.estimate)
    assert 0.0 <= ci.low and ci.high <= 1.0
    assert ci.confidence == 0.95


def test_bootstrap_ci_narrows_with_more_data_at_normal_theory_rate() -> None:
    small = bootstrap_ci(_binary(0.7, 50))
    large = bootstrap_ci(_binary(0.7, 2000))
    assert large.width < small.width / 4
    # Normal-theory width of a 95% interval for a proportion: 2 * 1.96 * sqrt(p(1-p)/n).
    expected = 2 * 1.959964 * math.sqrt(0.7 * 0.3 / 2000)
    assert large.width == pytest.approx(expected, rel=0.15)


def test_bootstrap_ci_higher_confidence_is_wider() -> None:
    values = _binary(0.6, 200)
    assert bootstrap_ci(values, confidence=0.99).width > bootstrap_ci(values, confidence=0.8).width


def test_bootstrap_ci_constant_values_give_degenerate_interval() -> None:
    ci = bootstrap_ci([0.25] * 10)
    assert (ci.estimate, ci.low, ci.high) == (0.25, 0.25, 0.25)


def test_bootstrap_ci_is_deterministic_for_a_seed() -> None:
    values = np.random.default_rng(1).random(40).tolist()
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) != bootstrap_ci(values, seed=4)


def test_bootstrap_ci_median_resists_an_outlier() -> None:
    values = [float(v) for v in range(1, 21)] + [1000.0]
    median = bootstrap_ci(values, statistic="median")
    mean = bootstrap_ci(values)
    assert median.estimate == 11.0
    assert 1.0 <= median.low < 11.0 < median.high <= 20.0
    assert mean.estimate == pytest.approx(1210 / 21)
    assert mean.high > 100.0


def test_bootstrap_ci_accepts_bools_and_numpy_arrays() -> None:
    assert bootstrap_ci([True, False, True, True]).estimate == 0.75
    assert bootstrap_ci(np.array([1, 0, 0, 0])).estimate == 0.25


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"values": []}, "values must not be empty"),
        ({"values": [1.0, float("nan")]}, "values must hold only finite numbers; index 1"),
        ({"values": [1.0, float("inf")]}, "values must hold only finite numbers"),
        ({"values": [[1.0, 0.0], [0.0, 1.0]]}, "values must be one-dimensional"),
        ({"values": ["a", "b"]}, "values must be a sequence of numbers"),
        ({"values": [1.0], "confidence": 0.0}, "confidence must be in \\(0, 1\\)"),
        ({"values": [1.0], "confidence": 1.0}, "confidence must be in \\(0, 1\\)"),
        ({"values": [1.0], "confidence": 95}, "confidence must be in \\(0, 1\\)"),
        ({"values": [1.0], "n_resamples": 0}, "n_resamples must be at least 1"),
        ({"values": [1.0], "n_resamples": 10.5}, "n_resamples must be an integer"),
        ({"values": [1.0], "statistic": "mode"}, "statistic must be one of"),
    ],
)
def test_bootstrap_ci_validation(kwargs: dict, match: str) -> None:
    values = kwargs.pop("values")
    with pytest.raises(ValueError, match=match):
        bootstrap_ci(values, **kwargs)


def test_paired_bootstrap_identical_vectors() -> None:
    a = [1, 0, 1, 1, 0, 0, 1]
    result = paired_bootstrap(a, list(a))
    assert result.p_value == 1.0
    assert type(result.p_value) is float
    assert (result.difference.estimate, result.difference.low, result.difference.high) == (0, 0, 0)
    assert result.baseline == result.winner
    assert result.test == "paired-bootstrap"
    assert result.n == 7
    assert not result.significant()


def test_paired_bootstrap_clear_improvement() -> None:
    a = _binary(0.5, 100)
    b = [1.0] * 95 + [0.0] * 5
    result = paired_bootstrap(a, b)
    assert result.difference.estimate == pytest.approx(0.45)
    assert result.difference.low > 0.3
    assert result.difference.contains(0.45)
    assert result.baseline.estimate == 0.5 and result.winner.estimate == 0.95
    assert result.p_value == 0.0
    assert type(result.p_value) is float
    assert result.significant(0.01)


def test_paired_bootstrap_sign_of_difference_is_winner_minus_baseline() -> None:
    a = [1.0] * 30
    b = [0.0] * 10 + [1.0] * 20
    result = paired_bootstrap(a, b)
    assert result.difference.estimate == pytest.approx(-1 / 3)
    assert result.difference.high < 0
    assert result.p_value < 0.01


def test_paired_bootstrap_pairing_reduces_the_difference_interval() -> None:
    # b is a plus a small constant gain: paired resampling sees almost no variance,
    # while independent intervals of a and b overlap heavily.
    a = np.random.default_rng(0).random(60)
    b = a + 0.05
    result = paired_bootstrap(a, b)
    assert result.difference.width < 1e-9
    assert result.baseline.high > result.winner.low
    assert result.p_value == 0.0


def test_paired_bootstrap_p_value_agrees_with_interval() -> None:
    # p < 1 - confidence implies that the interval of the difference excludes zero;
    # conversely an interval excluding zero gives p <= 1 - confidence, up to the
    # quantile interpolation step of 2 / n_resamples.
    rng = np.random.default_rng(7)
    seen_significant = seen_not = False
    for _ in range(40):
        n = int(rng.integers(10, 60))
        a = (rng.random(n) < 0.6).astype(float)
        b = (rng.random(n) < 0.7).astype(float)
        result = paired_bootstrap(a, b, n_resamples=500, seed=int(rng.integers(1000)))
        excludes_zero = not result.difference.contains(0.0)
        if result.p_value < 0.05:
            seen_significant = True
            assert excludes_zero
        else:
            seen_not = True
        if excludes_zero:
            assert result.p_value <= 0.05 + 2 / 500
    assert seen_significant and seen_not


def test_paired_bootstrap_is_deterministic_for_a_seed() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.random(30), rng.random(30)
    assert paired_bootstrap(a, b, seed=5) == paired_bootstrap(a, b, seed=5)
    assert paired_bootstrap(a, b, seed=5) != paired_bootstrap(a, b, seed=6)


def test_paired_bootstrap_validation() -> None:
    with pytest.raises(ValueError, match="a and b must have the same length, got 3 and 2"):
        paired_bootstrap([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="a must not be empty"):
        paired_bootstrap([], [])
    with pytest.raises(ValueError, match="b must hold only finite numbers"):
        paired_bootstrap([1.0, 0.0], [1.0, float("nan")])
    with pytest.raises(ValueError, match="confidence must be in"):
        paired_bootstrap([1.0], [0.0], confidence=-0.5)


def test_interval_validation_and_to_dict() -> None:
    interval = Interval(0.5, 0.4, 0.6, 0.9)
    assert interval.to_dict() == {"estimate": 0.5, "low": 0.4, "high": 0.6, "confidence": 0.9}
    with pytest.raises(ValueError, match="Interval.low"):
        Interval(0.5, 0.7, 0.6, 0.9)
    with pytest.raises(ValueError, match="confidence must be in"):
        Interval(0.5, 0.4, 0.6, 1.5)
    with pytest.raises(ValueError, match="Interval.estimate must be finite"):
        Interval(float("nan"), 0.4, 0.6, 0.9)


def test_paired_comparison_significant_and_to_dict() -> None:
    interval = Interval(0.5, 0.4, 0.6, 0.95)
    result = PairedComparison(interval, interval, interval, 0.03, "paired-bootstrap", 10)
    assert result.significant(0.05)
    assert not result.significant(0.01)
    with pytest.raises(ValueError, match="alpha must be in"):
        result.significant(0.0)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["difference"] == interval.to_dict()
    assert data["p_value"] == 0.03 and data["test"] == "paired-bootstrap" and data["n"] == 10
    with pytest.raises(ValueError, match="p_value must be in"):
        PairedComparison(interval, interval, interval, 1.2, "paired-bootstrap", 10)


def test_chunked_resampling_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    from optprompt.stats import bootstrap

    rng = np.random.default_rng(4)
    a, b = rng.random(37), rng.random(37)
    whole = paired_bootstrap(a, b, n_resamples=300)
    monkeypatch.setattr(bootstrap, "_MAX_CHUNK_CELLS", 100)  # 2 resamples per chunk
    assert paired_bootstrap(a, b, n_resamples=300) == whole
