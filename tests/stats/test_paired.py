from __future__ import annotations

import json
import math

import numpy as np
import pytest

from optprompt.stats import McNemarResult, compare, mcnemar, permutation_test
from optprompt.stats.paired import _chi2_sf_1df


def _pairs(b01: int, b10: int, both_right: int = 0, both_wrong: int = 0) -> tuple[list, list]:
    """Correctness vectors (a, b) with the given contingency-table counts."""
    a = [0] * b01 + [1] * b10 + [1] * both_right + [0] * both_wrong
    b = [1] * b01 + [0] * b10 + [1] * both_right + [0] * both_wrong
    return a, b


def test_mcnemar_exact_hand_computed() -> None:
    # p = 2 * sum_{k<=2} C(10, k) / 2**10 = 2 * (1 + 10 + 45) / 1024
    a, b = _pairs(8, 2, both_right=15, both_wrong=5)
    result = mcnemar(a, b)
    assert (result.b01, result.b10, result.n_discordant) == (8, 2, 10)
    assert result.method == "exact"
    assert result.statistic == 2.0
    assert result.p_value == pytest.approx(0.109375, abs=1e-15)


def test_mcnemar_is_symmetric_in_direction() -> None:
    a, b = _pairs(8, 2)
    forward, backward = mcnemar(a, b), mcnemar(b, a)
    assert (backward.b01, backward.b10) == (2, 8)
    assert backward.p_value == forward.p_value


def test_mcnemar_exact_at_fifty_discordant_pairs() -> None:
    # 2 * sum_{k<=20} C(50, k) / 2**50
    result = mcnemar(*_pairs(30, 20))
    assert result.method == "exact"
    assert result.p_value == pytest.approx(0.20263875106454066, rel=1e-12)


def test_mcnemar_chi2_above_fifty_discordant_pairs() -> None:
    # stat = (|31 - 20| - 1)**2 / 51 = 100 / 51; p from numerically integrating
    # the normal density: P(|Z| > sqrt(100 / 51)).
    result = mcnemar(*_pairs(31, 20))
    assert result.method == "chi2"
    assert result.statistic == pytest.approx(100 / 51)
    assert result.p_value == pytest.approx(0.16142946236709, rel=1e-9)


def test_mcnemar_chi2_hand_computed() -> None:
    # stat = (40 - 20 - 1)**2 / 60 = 361 / 60 = 6.01667; chi2(1) tail ~ 0.014171.
    result = mcnemar(*_pairs(40, 20, both_right=100))
    assert result.method == "chi2"
    assert result.statistic == pytest.approx(361 / 60)
    assert result.p_value == pytest.approx(0.0141713882540, rel=1e-9)


def test_chi2_survival_matches_table_critical_values() -> None:
    assert _chi2_sf_1df(3.841458820694124) == pytest.approx(0.05, rel=1e-9)
    assert _chi2_sf_1df(6.6348966010212145) == pytest.approx(0.01, rel=1e-9)
    assert _chi2_sf_1df(0.0) == 1.0


def test_mcnemar_no_discordant_pairs_or_tie() -> None:
    same = mcnemar([1, 0, 1], [1, 0, 1])
    assert (same.b01, same.b10, same.p_value, same.method) == (0, 0, 1.0, "exact")
    tie = mcnemar(*_pairs(40, 40))
    assert (tie.method, tie.statistic, tie.p_value) == ("chi2", 0.0, 1.0)
    small_tie = mcnemar(*_pairs(3, 3))
    assert small_tie.p_value == 1.0


def test_mcnemar_accepts_bools_and_to_dict() -> None:
    result = mcnemar([True, False, False], [True, True, True])
    assert isinstance(result, McNemarResult)
    assert (result.b01, result.b10) == (2, 0)
    assert result.p_value == pytest.approx(0.5)  # 2 * C(2, 0) / 4
    assert json.loads(json.dumps(result.to_dict())) == {
        "b01": 2,
        "b10": 0,
        "statistic": 0.0,
        "p_value": 0.5,
        "method": "exact",
    }


def test_mcnemar_validation() -> None:
    with pytest.raises(ValueError, match="a_correct must hold only 0/1 outcomes; index 1 is 0.5"):
        mcnemar([1, 0.5], [1, 0])
    with pytest.raises(ValueError, match="b_correct must hold only 0/1 outcomes"):
        mcnemar([1, 0], [2, 0])
    with pytest.raises(ValueError, match="a_correct and b_correct must have the same length"):
        mcnemar([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="a_correct must not be empty"):
        mcnemar([], [])
    with pytest.raises(ValueError, match="b_correct must hold only finite numbers"):
        mcnemar([1], [float("nan")])


def test_permutation_test_identical_vectors_gives_one() -> None:
    a = [0.2, 0.9, 0.4, 0.4]
    assert permutation_test(a, list(a)) == 1.0


def test_permutation_test_clearly_different_pair() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(40)
    b = a + 0.3 + 0.05 * rng.standard_normal(40)
    p = permutation_test(a, b, n_resamples=5000)
    assert p == pytest.approx(1 / 5001)  # no sign flip reaches the observed mean


def test_permutation_test_matches_exact_enumeration_on_tiny_case() -> None:
    # Differences [1, 1, 1]: of the 8 sign patterns only +++ and --- reach |mean| = 1.
    p = permutation_test([0, 0, 0], [1, 1, 1], n_resamples=20000, seed=1)
    assert p == pytest.approx(2 / 8, abs=0.015)
    # Differences [0, 0, 1]: every sign pattern ties the observed |mean|.
    assert permutation_test([0, 0, 0], [0, 0, 1]) == 1.0


def test_permutation_test_counts_float_ties() -> None:
    # Differences are 0.1 up to rounding; all-positive and all-negative flips must tie.
    a = [0.1, 0.2, 0.7]
    b = [0.2, 0.3, 0.8]
    p = permutation_test(a, b, n_resamples=20000, seed=2)
    assert p == pytest.approx(2 / 8, abs=0.015)


def test_permutation_test_determinism_and_validation() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.random(15), rng.random(15)
    assert permutation_test(a, b, seed=9) == permutation_test(a, b, seed=9)
    with pytest.raises(ValueError, match="a and b must have the same length"):
        permutation_test([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="n_resamples must be at least 1"):
        permutation_test([1.0], [2.0], n_resamples=0)
    with pytest.raises(ValueError, match="a must hold only finite numbers"):
        permutation_test([float("inf")], [2.0])


def test_compare_binary_uses_mcnemar() -> None:
    baseline, winner = _pairs(8, 2, both_right=15, both_wrong=5)
    result = compare(baseline, winner)
    assert result.test == "mcnemar-exact"
    assert result.p_value == pytest.approx(0.109375)
    assert result.n == 30
    assert result.baseline.estimate == pytest.approx(17 / 30)
    assert result.winner.estimate == pytest.approx(23 / 30)
    assert result.difference.estimate == pytest.approx(6 / 30)
    assert result.difference.contains(6 / 30)
    assert not result.significant()


def test_compare_binary_large_sample_uses_chi2() -> None:
    result = compare(*_pairs(40, 20, both_right=100))
    assert result.test == "mcnemar-chi2"
    assert result.p_value == pytest.approx(0.0141713882540, rel=1e-9)
    assert result.significant(0.05)
    assert not result.significant(0.01)


def test_compare_continuous_uses_paired_bootstrap() -> None:
    baseline = [0.1, 0.5, 0.3, 0.8, 0.2, 0.6]
    winner = [0.3, 0.6, 0.5, 0.9, 0.5, 0.7]
    result = compare(baseline, winner)
    assert result.test == "paired-bootstrap"
    assert result.difference.estimate == pytest.approx(1.0 / 6)
    assert result.difference.low > 0
    assert result.p_value < 0.05


def test_compare_binary_flag_overrides_detection() -> None:
    baseline, winner = _pairs(8, 2)
    assert compare(baseline, winner, binary=False).test == "paired-bootstrap"
    with pytest.raises(ValueError, match="winner must hold only 0/1 outcomes; index 0 is 0.5"):
        compare([1, 0], [0.5, 1], binary=True)


def test_compare_identical_vectors() -> None:
    for scores in ([1, 0, 1, 1], [0.3, 0.7, 0.1]):
        result = compare(scores, list(scores))
        assert result.p_value == 1.0
        assert result.difference.to_dict() == {
            "estimate": 0.0,
            "low": 0.0,
            "high": 0.0,
            "confidence": 0.95,
        }


def test_compare_validation_names_arguments() -> None:
    with pytest.raises(ValueError, match="baseline and winner must have the same length"):
        compare([1, 0], [1])
    with pytest.raises(ValueError, match="baseline must not be empty"):
        compare([], [])
    with pytest.raises(ValueError, match="winner must hold only finite numbers"):
        compare([0.5], [math.nan])
    with pytest.raises(ValueError, match="confidence must be in"):
        compare([1, 0], [0, 1], confidence=2.0)


def test_compare_to_dict_is_json_ready() -> None:
    result = compare(*_pairs(8, 2))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["test"] == "mcnemar-exact"
    assert data["p_value"] == pytest.approx(0.109375)
    assert set(data["difference"]) == {"estimate", "low", "high", "confidence"}


def test_permutation_test_chunking_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    from optprompt.stats import paired

    rng = np.random.default_rng(5)
    a, b = rng.random(37), rng.random(37) + 0.1
    whole = permutation_test(a, b, n_resamples=999)
    monkeypatch.setattr(paired, "_MAX_CHUNK_CELLS", 100)
    assert permutation_test(a, b, n_resamples=999) == whole
