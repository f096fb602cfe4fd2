"""Classification metrics (a core plugin): accuracy and macro-F1."""

from __future__ import annotations

from collections.abc import Sequence

from optprompt.plugins.hookspecs import hookimpl
from optprompt.tasks.types import MetricKind

__all__ = ["accuracy", "macro_f1"]


def accuracy(gold: Sequence[int], pred: Sequence[int], n_classes: int) -> float:
    """Fraction of predictions equal to the gold answer."""
    if not gold:
        return 0.0
    return sum(g == p for g, p in zip(gold, pred)) / len(gold)


def macro_f1(gold: Sequence[int], pred: Sequence[int], n_classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes present in gold or predictions."""
    classes = sorted(set(gold) | set(pred))
    if not classes:
        return 0.0
    f1s = []
    for c in classes:
        tp = sum(g == c and p == c for g, p in zip(gold, pred))
        fp = sum(g != c and p == c for g, p in zip(gold, pred))
        fn = sum(g == c and p != c for g, p in zip(gold, pred))
        denom = 2 * tp + fp + fn
        f1s.append(2 * tp / denom if denom else 0.0)
    return sum(f1s) / len(f1s)


@hookimpl
def register_metrics(register):  # type: ignore[no-untyped-def]
    register("accuracy", accuracy, description="fraction of correct predictions", kind=MetricKind.CHOICES)
    register("macro_f1", macro_f1, description="unweighted mean of per-class F1", kind=MetricKind.CHOICES)
