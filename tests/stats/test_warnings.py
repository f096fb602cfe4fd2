from __future__ import annotations

import math

import pytest

from optprompt.stats import doubtful_win_warnings, selection_noise_gain


def _warnings(**overrides: float) -> list[str]:
    kwargs = {
        "dev_baseline": 0.70,
        "dev_winner": 0.80,
        "test_baseline": 0.70,
        "test_winner": 0.79,
        "n_candidates": 5,
        "n_dev": 500,
        "p_value": 0.001,
    }
    kwargs.update(overrides)
    return doubtful_win_warnings(**kwargs)


def test_clean_win_has_no_warnings() -> None:
    assert _warnings() == []


def test_not_significant() -> None:
    warnings = _warnings(p_value=0.2)
    assert len(warnings) == 1
    assert "not statistically significant" in warnings[0]
    assert "p = 0.2" in warnings[0]
    assert _warnings(p_value=0.2, alpha=0.25) == []
    # p equal to alpha is not significant.
    assert len(_warnings(p_value=0.05)) == 1


def test_winner_worse_on_test() -> None:
    warnings = _warnings(test_baseline=0.72, test_winner=0.70, p_value=0.3)
    assert any("does not beat the baseline on test" in w and "-0.020" in w for w in warnings)
    assert any("not statistically significant" in w for w in warnings)
    assert any("much larger than the test gain" in w for w in warnings)


def test_dev_test_gap() -> None:
    gap = _warnings(test_winner=0.74)  # dev gain +0.10, test gain +0.04 < 0.05
    assert len(gap) == 1
    assert "dev gain (+0.100) is much larger than the test gain (+0.040)" in gap[0]
    assert _warnings(test_winner=0.76) == []  # test gain +0.06 >= half the dev gain


def test_no_gap_warning_without_dev_gain() -> None:
    warnings = _warnings(dev_winner=0.70, n_candidates=1)
    assert not any("much larger" in w for w in warnings)


def test_selection_noise_gain_hand_computed() -> None:
    # sqrt(0.25 / 40) * sqrt(2 * ln 50) = 0.0790569 * 2.7971
    expected = math.sqrt(0.25 / 40) * math.sqrt(2 * math.log(50))
    assert selection_noise_gain(0.5, n_dev=40, n_candidates=50) == pytest.approx(expected)
    assert expected == pytest.approx(0.22113, abs=1e-4)
    assert selection_noise_gain(0.5, n_dev=40, n_candidates=1) == 0.0
    assert selection_noise_gain(1.0, n_dev=40, n_candidates=50) == 0.0


def test_many_candidates_on_small_dev_set() -> None:
    # Dev gain +0.10 is below the ~0.221 expected from the best of 50 noisy candidates.
    warnings = _warnings(
        dev_baseline=0.5,
        dev_winner=0.6,
        test_baseline=0.5,
        test_winner=0.58,
        n_candidates=50,
        n_dev=40,
    )
    assert len(warnings) == 1
    assert "within what picking the best of 50 noisy candidates would give" in warnings[0]
    assert "+0.221" in warnings[0]
    # One candidate means no selection; a large dev set makes the noise small.
    assert _warnings(dev_baseline=0.5, dev_winner=0.6, n_candidates=1, n_dev=40) == []
    assert _warnings(dev_baseline=0.5, dev_winner=0.6, n_candidates=50, n_dev=2000) == []


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"dev_baseline": 1.5}, "dev_baseline must be a finite number in \\[0, 1\\]"),
        ({"test_winner": math.nan}, "test_winner must be a finite number"),
        ({"dev_winner": "0.8"}, "dev_winner must be a finite number"),
        ({"n_candidates": 0}, "n_candidates must be a positive integer"),
        ({"n_dev": 2.5}, "n_dev must be a positive integer"),
        ({"p_value": -0.1}, "p_value must be a finite number in \\[0, 1\\]"),
        ({"alpha": 1.0}, "alpha must be in \\(0, 1\\)"),
    ],
)
def test_validation(overrides: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _warnings(**overrides)
