"""Classification metrics (a core plugin): accuracy, macro-F1 and balanced accuracy."""

from __future__ import annotations

from collections.abc import Sequence

from optprompt.plugins.hookspecs import hookimpl
from optprompt.tasks.types import MetricKind

__all__ = ["accuracy", "balanced_accuracy", "macro_f1"]


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


def balanced_accuracy(gold: Sequence[int], pred: Sequence[int], n_classes: int) -> float:
    """Mean per-class recall over the classes present in gold: a constant answer scores
    exactly ``1 / classes`` whatever the imbalance (it cannot win by answering the majority)."""
    classes = sorted(set(gold))
    if not classes:
        return 0.0
    recalls = []
    for c in classes:
        mine = [p for g, p in zip(gold, pred) if g == c]
        recalls.append(sum(p == c for p in mine) / len(mine))
    return sum(recalls) / len(recalls)


@hookimpl
def register_metrics(register):  # type: ignore[no-untyped-def]
    register("accuracy", accuracy, description="fraction of correct predictions", kind=MetricKind.CHOICES)
    register("macro_f1", macro_f1, description="unweighted mean of per-class F1", kind=MetricKind.CHOICES)
    register(
        "balanced_accuracy",
        balanced_accuracy,
        description="mean per-class recall (a constant answer scores 1 / classes)",
        kind=MetricKind.CHOICES,
    )
