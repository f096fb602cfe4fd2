"""Entity-level metrics of extraction tasks (a core plugin): exact span and type.

A predicted entity is correct when its character span and its type both equal a gold
entity's (the CoNLL / seqeval convention). Each example contributes per-type counts of true
positives, false positives and false negatives (:func:`entity_counts`, an array of shape
``(types, 3)``); every metric is a function of those counts *summed over a set of
examples* (``fn(counts) -> value``, vectorised over leading axes), so the paired bootstrap
resamples sentences and recomputes the corpus-level metric on each resample.

Where a ratio has nothing to count (no gold and no predicted entity at all) the metric is
1.0: nothing was there and nothing was claimed. Micro figures pool all types; macro F1 is
the unweighted mean of per-type F1 over the types that occur in gold or predictions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from optprompt.plugins.hookspecs import hookimpl
from optprompt.tasks.entities import Entity
from optprompt.tasks.types import MetricKind

__all__ = [
    "entity_counts",
    "entity_f1",
    "entity_macro_f1",
    "entity_precision",
    "entity_recall",
    "per_type_scores",
]

TP, FP, FN = 0, 1, 2


def entity_counts(gold: Sequence[Entity], pred: Sequence[Entity] | None, types: Sequence[str]) -> np.ndarray:
    """Per-type ``[tp, fp, fn]`` of one example (``pred`` None, a format failure: nothing predicted).

    Predicted entities not found in the text (span ``-1``) are false positives; a predicted
    entity of a type outside ``types`` is ignored (parsers drop them already).
    """
    index = {t: i for i, t in enumerate(types)}
    counts = np.zeros((len(types), 3), dtype=np.float64)
    gold_keys = {e.key for e in gold if e.type in index}
    pred_keys = set()
    for e in pred or ():
        if e.type not in index:
            continue
        if e.start < 0 or e.key in pred_keys:
            if e.start < 0:
                counts[index[e.type], FP] += 1
            continue
        pred_keys.add(e.key)
    for _, _, t in gold_keys & pred_keys:
        counts[index[t], TP] += 1
    for _, _, t in pred_keys - gold_keys:
        counts[index[t], FP] += 1
    for _, _, t in gold_keys - pred_keys:
        counts[index[t], FN] += 1
    return counts


def _ratio(num: np.ndarray, den: np.ndarray, empty: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
    return np.where(empty, 1.0, out)


def _pooled(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum(axis=-2)
    return total[..., TP], total[..., FP], total[..., FN]


def entity_precision(counts: np.ndarray) -> np.ndarray:
    """Micro precision: correct predicted entities / predicted entities."""
    tp, fp, fn = _pooled(counts)
    return _ratio(tp, tp + fp, (tp + fp + fn) == 0)


def entity_recall(counts: np.ndarray) -> np.ndarray:
    """Micro recall: correct predicted entities / gold entities."""
    tp, fp, fn = _pooled(counts)
    return _ratio(tp, tp + fn, (tp + fp + fn) == 0)


def entity_f1(counts: np.ndarray) -> np.ndarray:
    """Micro F1: ``2 tp / (2 tp + fp + fn)`` over all types."""
    tp, fp, fn = _pooled(counts)
    return _ratio(2 * tp, 2 * tp + fp + fn, (tp + fp + fn) == 0)


def per_type_scores(counts: np.ndarray) -> np.ndarray:
    """Per-type F1 (shape ``(..., types)``); NaN for a type absent from gold and predictions."""
    c = np.asarray(counts, dtype=np.float64)
    tp, fp, fn = c[..., TP], c[..., FP], c[..., FN]
    den = 2 * tp + fp + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), np.nan)


def entity_macro_f1(counts: np.ndarray) -> np.ndarray:
    """Macro F1: the mean of per-type F1 over the types present in gold or predictions."""
    f1 = per_type_scores(counts)
    present = ~np.isnan(f1)
    n = present.sum(axis=-1)
    total = np.where(present, f1, 0.0).sum(axis=-1)
    return np.where(n > 0, total / np.maximum(n, 1), 1.0)


_EXTRACTION_METRICS = (
    ("entity_f1", entity_f1, "entity-level micro F1 (exact span and type)"),
    ("entity_precision", entity_precision, "entity-level micro precision (exact span and type)"),
    ("entity_recall", entity_recall, "entity-level micro recall (exact span and type)"),
    ("entity_macro_f1", entity_macro_f1, "mean of per-type entity F1 (exact span and type)"),
)


@hookimpl
def register_metrics(register):  # type: ignore[no-untyped-def]
    for name, fn, description in _EXTRACTION_METRICS:
        register(name, fn, description=description, kind=MetricKind.ENTITIES)
