"""Score a candidate on a list of examples: predictions, per-example correctness, metrics."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from optprompt.errors import CandidateRejected
from optprompt.plugins.manager import Registry
from optprompt.prompts.candidate import PromptCandidate
from optprompt.prompts.render import PromptRenderer
from optprompt.scoring.calibration import CONTENT_FREE_INPUTS, apply_offsets, mean_offsets
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
    offsets: list[float] | None = None
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

    def _offsets(self, candidate: PromptCandidate, logliks: list[list[float]],
                 offsets: Sequence[float] | None) -> list[float] | None:
        if candidate.calibration == "none":
            return None
        if self.task.type != "classification":
            raise CandidateRejected("calibration applies to classification tasks only")
        if offsets is not None:
            return list(offsets)
        if candidate.calibration == "mean":
            return mean_offsets(logliks)
        free = [Example(id=f"content-free-{i}", input=text, target="", target_index=0, row="content-free input")
                for i, text in enumerate(CONTENT_FREE_INPUTS)]
        return mean_offsets(self.scorer.loglikelihoods(self.renderer.requests(candidate, free)))

    def evaluate(self, candidate: PromptCandidate, examples: Sequence[Example], split: str = "dev",
                 offsets: Sequence[float] | None = None) -> Evaluation:
        """Score ``candidate`` on ``examples``.

        Args:
            offsets: Calibration offsets to use as they are (e.g. found on dev, applied
                to test). When None, a calibrated candidate computes its own.
        """
        start = time.perf_counter()
        requests = self.renderer.requests(candidate, examples)
        logliks = self.scorer.loglikelihoods(requests)
        used = self._offsets(candidate, logliks, offsets)
        preds = []
        for ex, ll in zip(examples, logliks):
            scores = ll if used is None else apply_offsets(ll, used)
            best = max(range(len(scores)), key=lambda j: scores[j])
            preds.append(ExamplePrediction(ex.id, ex.target_index, best, tuple(ll)))
        gold = [p.gold for p in preds]
        pred = [p.pred for p in preds]
        n_classes = len(self.task.labels) or max((len(e.options) for e in examples), default=0)
        values = {e.name: float(e.obj(gold, pred, n_classes)) for e in self.metrics}
        return Evaluation(candidate.hash, split, self.task.metric, values, preds,
                          seconds=time.perf_counter() - start, offsets=used)
