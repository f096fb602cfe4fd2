"""Score a candidate on a list of examples: predictions, per-example correctness, metrics."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from optprompt.plugins.manager import Registry
from optprompt.prompts.candidate import PromptCandidate
from optprompt.prompts.render import PromptRenderer
from optprompt.scoring.causal import CausalLMScorer
from optprompt.tasks.task import Example, Task

__all__ = ["Evaluation", "ExamplePrediction", "Evaluator"]


@dataclass(frozen=True)
class ExamplePrediction:
    id: str
    gold: int
    pred: int
    logliks: tuple[float, ...]

    @property
    def correct(self) -> bool:
        return self.gold == self.pred


@dataclass
class Evaluation:
    """The result of scoring one candidate on one split."""

    candidate_hash: str
    split: str
    metric: str
    metrics: dict[str, float]
    predictions: list[ExamplePrediction]
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def value(self) -> float:
        return self.metrics[self.metric]

    @property
    def correct(self) -> list[int]:
        return [int(p.correct) for p in self.predictions]

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "metric": self.metric,
            "value": self.value,
            "metrics": self.metrics,
            "n": len(self.predictions),
            "seconds": round(self.seconds, 3),
        }


class Evaluator:
    """Renders, scores and measures candidates; strategies never see the model itself."""

    def __init__(self, task: Task, scorer: CausalLMScorer, renderer: PromptRenderer, metrics: Registry) -> None:
        self.task = task
        self.scorer = scorer
        self.renderer = renderer
        self.metrics = metrics
        metrics.get(task.metric)  # unknown metric: fail now, naming the known ones

    def evaluate(self, candidate: PromptCandidate, examples: Sequence[Example], split: str = "dev") -> Evaluation:
        start = time.perf_counter()
        requests = self.renderer.requests(candidate, examples)
        logliks = self.scorer.loglikelihoods(requests)
        preds = []
        for ex, ll in zip(examples, logliks):
            best = max(range(len(ll)), key=lambda j: ll[j])
            preds.append(ExamplePrediction(ex.id, ex.target_index, best, tuple(ll)))
        gold = [p.gold for p in preds]
        pred = [p.pred for p in preds]
        n_classes = len(self.task.labels) or max((len(e.options) for e in examples), default=0)
        values = {e.name: float(e.obj(gold, pred, n_classes)) for e in self.metrics}
        return Evaluation(candidate.hash, split, self.task.metric, values, preds,
                          seconds=time.perf_counter() - start)
