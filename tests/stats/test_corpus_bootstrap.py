"""Paired bootstrap of a corpus-level metric (entity F1 from summed counts)."""

from __future__ import annotations

import numpy as np
import pytest

from optprompt.scoring.entity_metrics import entity_f1
from optprompt.stats import paired_bootstrap_corpus


def _counts(tp: int, fp: int, fn: int) -> np.ndarray:
    return np.array([[tp, fp, fn]], dtype=float)


def test_values_are_the_metric_of_the_summed_counts_not_a_mean_of_sentences() -> None:
    a = [_counts(1, 0, 0), _counts(0, 0, 3)]  # per-sentence F1 1 and 0, mean 0.5; pooled 2/(2+3) = 0.4
    b = [_counts(1, 0, 0), _counts(3, 0, 0)]
    r = paired_bootstrap_corpus(a, b, entity_f1, n_resamples=500)
    assert r.baseline.estimate == pytest.approx(0.4)
    assert r.winner.estimate == pytest.approx(1.0)
    assert r.difference.estimate == pytest.approx(0.6)
    assert r.test == "paired-bootstrap" and r.n == 2


def test_identical_prompts_differ_by_nothing() -> None:
    rng = np.random.default_rng(0)
    a = [_counts(*rng.integers(0, 3, size=3)) for _ in range(30)]
    r = paired_bootstrap_corpus(a, a, entity_f1, n_resamples=300)
    assert r.difference.estimate == 0 and r.p_value == 1.0
    assert r.difference.low == r.difference.high == 0


def test_a_clear_improvement_is_significant_and_a_mixed_one_is_not() -> None:
    a = [_counts(1, 1, 1)] * 40
    better = [_counts(2, 0, 0)] * 40
    r = paired_bootstrap_corpus(a, better, entity_f1, n_resamples=1000, seed=1)
    assert r.p_value < 0.01 and r.difference.low > 0
    mixed = [_counts(2, 0, 0)] * 20 + [_counts(0, 2, 2)] * 20
    r2 = paired_bootstrap_corpus(a, mixed, entity_f1, n_resamples=1000, seed=1)
    assert r2.p_value > 0.05 and r2.difference.low < 0 < r2.difference.high


def test_same_seed_same_result_and_bad_inputs_raise() -> None:
    a = [_counts(1, 1, 0), _counts(0, 1, 1), _counts(2, 0, 1)]
    b = [_counts(1, 0, 0), _counts(1, 0, 0), _counts(2, 1, 1)]
    assert paired_bootstrap_corpus(a, b, entity_f1, seed=3) == paired_bootstrap_corpus(a, b, entity_f1, seed=3)
    with pytest.raises(ValueError, match="same shape"):
        paired_bootstrap_corpus(a, b[:2], entity_f1)
    with pytest.raises(ValueError, match="at least one example"):
        paired_bootstrap_corpus([], [], entity_f1)
