"""How a candidate's answers spread over the labels: a winner that answers one label for
(nearly) every input can look better on accuracy when the labels are imbalanced, without
reading its input. :func:`answer_profile` measures it (the most common answer and its share,
per-label recall, balanced accuracy: the mean per-label recall, which every constant answer
scores exactly ``1 / labels`` on); :func:`ignores_input` says when the answers are (nearly)
all one label although the gold labels are not."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["AnswerProfile", "answer_profile", "ignores_input", "CONSTANT_SHARE", "CONSTANT_MARGIN"]

#: Answers are "(nearly) all one label" when the most common answer takes at least this share...
CONSTANT_SHARE = 0.9
#: ...and at least this much more than that label's share of the gold answers.
CONSTANT_MARGIN = 0.2


@dataclass(frozen=True)
class AnswerProfile:
    """How the answers on some examples spread over the labels.

    Attributes:
        n: Examples.
        top_answer: The most common answer (a label's name).
        top_share: Its share of the answers.
        gold_share: That label's share of the gold answers.
        recall: Per label (in the task's order): the share of its gold examples answered with it
            (None for a label no example has).
        balanced_accuracy: The mean recall over the labels the examples have.
    """

    n: int
    top_answer: str
    top_share: float
    gold_share: float
    recall: dict[str, float | None]
    balanced_accuracy: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "top_answer": self.top_answer,
            "top_share": round(self.top_share, 4),
            "gold_share": round(self.gold_share, 4),
            "recall": {k: (round(v, 4) if v is not None else None) for k, v in self.recall.items()},
            "balanced_accuracy": round(self.balanced_accuracy, 4),
        }


def answer_profile(gold: Sequence[int], pred: Sequence[int], labels: Sequence[str]) -> AnswerProfile:
    """The profile of predicted label indices ``pred`` against ``gold`` (same order).

    Raises:
        ValueError: no examples, or ``gold`` and ``pred`` of different lengths.
    """
    if not gold or len(gold) != len(pred):
        raise ValueError(f"answer_profile needs paired answers: {len(gold)} gold, {len(pred)} predicted")
    n = len(gold)
    (top, count), *_ = Counter(pred).most_common(1)
    name = labels[top] if 0 <= top < len(labels) else str(top)
    recall: dict[str, float | None] = {}
    for k, label in enumerate(labels):
        mine = [p for g, p in zip(gold, pred) if g == k]
        recall[label] = sum(p == k for p in mine) / len(mine) if mine else None
    present = [v for v in recall.values() if v is not None]
    return AnswerProfile(
        n=n,
        top_answer=name,
        top_share=count / n,
        gold_share=sum(g == top for g in gold) / n,
        recall=recall,
        balanced_accuracy=sum(present) / len(present) if present else 0.0,
    )


def ignores_input(profile: AnswerProfile) -> bool:
    """Whether the answers are (nearly) all one label when the gold answers are not: the
    most common answer takes at least :data:`CONSTANT_SHARE` of them and at least
    :data:`CONSTANT_MARGIN` more than its share of the gold answers."""
    return profile.top_share >= CONSTANT_SHARE and profile.top_share - profile.gold_share >= CONSTANT_MARGIN


def describe(profile: AnswerProfile, split: str) -> str:
    """``answers 'positive' for 97% of test`` (where 60% are 'positive')."""
    return (
        f"answers {profile.top_answer!r} for {profile.top_share:.0%} of {split} "
        f"(where {profile.gold_share:.0%} are {profile.top_answer!r})"
    )
