"""Entity-level precision, recall and F1 against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from optprompt.plugins import load_plugins
from optprompt.scoring.entity_metrics import (
    entity_counts,
    entity_f1,
    entity_macro_f1,
    entity_precision,
    entity_recall,
)
from optprompt.tasks.entities import Entity
from optprompt.tasks.types import MetricKind

TYPES = ("PER", "ORG", "LOC")


def E(start: int, end: int, t: str) -> Entity:  # noqa: N802
    return Entity(start, end, t, "x" * (end - start))


def test_counts_need_exact_span_and_type() -> None:
    gold = [E(0, 5, "PER"), E(10, 14, "ORG"), E(20, 25, "LOC")]
    pred = [E(0, 5, "PER"), E(10, 14, "LOC"), E(20, 24, "LOC"), E(-1, -1, "PER")]
    c = entity_counts(gold, pred, TYPES)
    # PER: 1 tp, 1 fp (text not in the input); ORG: 1 fn (wrong type); LOC: 2 fp (wrong type, short span), 1 fn
    assert c.tolist() == [[1, 1, 0], [0, 0, 1], [0, 2, 1]]


def test_micro_and_macro_figures_by_hand() -> None:
    # Sentence 1: gold PER, ORG; predicted PER (right), LOC (spurious).
    # Sentence 2: gold LOC, LOC; predicted LOC (right) only.
    s1 = entity_counts([E(0, 3, "PER"), E(5, 9, "ORG")], [E(0, 3, "PER"), E(11, 15, "LOC")], TYPES)
    s2 = entity_counts([E(0, 4, "LOC"), E(8, 12, "LOC")], [E(0, 4, "LOC")], TYPES)
    total = s1 + s2  # tp 2, fp 1, fn 2
    assert entity_precision(total) == pytest.approx(2 / 3)
    assert entity_recall(total) == pytest.approx(2 / 4)
    assert entity_f1(total) == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))  # 4/7
    # per type: PER 2*1/(2+0+0)=1; ORG 0/(0+0+1)=0; LOC 2*1/(2+1+1)=0.5 -> mean 0.5
    assert entity_macro_f1(total) == pytest.approx(0.5)


def test_nothing_to_find_and_nothing_claimed_is_perfect_and_a_failure_misses_everything() -> None:
    empty = entity_counts([], [], TYPES)
    assert entity_f1(empty) == entity_precision(empty) == entity_recall(empty) == entity_macro_f1(empty) == 1.0
    failed = entity_counts([E(0, 3, "PER")], None, TYPES)
    assert failed.tolist() == [[0, 0, 1], [0, 0, 0], [0, 0, 0]]
    assert entity_f1(failed) == 0.0 and entity_precision(failed) == 0.0


def test_duplicate_predictions_count_once() -> None:
    c = entity_counts([E(0, 3, "PER")], [E(0, 3, "PER"), E(0, 3, "PER")], TYPES)
    assert c.tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 0]]


def test_metrics_are_vectorised_over_leading_axes() -> None:
    a = entity_counts([E(0, 3, "PER")], [E(0, 3, "PER")], TYPES)
    b = entity_counts([E(0, 3, "PER")], [E(0, 2, "PER")], TYPES)
    stacked = np.stack([a, b])
    assert entity_f1(stacked).tolist() == [1.0, 0.0]
    assert entity_macro_f1(stacked).tolist() == [1.0, 0.0]


def test_registered_as_extraction_metrics() -> None:
    metrics = load_plugins().metrics
    for name in ("entity_f1", "entity_precision", "entity_recall", "entity_macro_f1"):
        assert metrics.get(name).extra["kind"] == MetricKind.ENTITIES == "entities"
