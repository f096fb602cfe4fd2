"""Score a candidate on a list of examples: predictions, per-example scores, metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from optprompt.errors import CandidateRejected, ConfigError
from optprompt.plugins.manager import Registry
from optprompt.prompts.candidate import PromptCandidate
from optprompt.prompts.render import PromptRenderer
from optprompt.scoring.backends.base import Backend, GenerationSettings
from optprompt.scoring.calibration import CONTENT_FREE_INPUTS, apply_offsets, mean_offsets
from optprompt.tasks.entities import Entity
from optprompt.tasks.task import Example, Task
from optprompt.tasks.types import MetricKind

__all__ = ["Evaluation", "ExamplePrediction", "Evaluator", "metric_kind"]


@dataclass(frozen=True)
class ExamplePrediction:
    """One example's outcome.

    Attributes:
        gold / pred: Choice indices (classification, multiple choice) or texts (generation).
        score: The example's value of the task metric's per-example score (1/0 for a
            correct/incorrect choice; the generation metric otherwise).
        logliks: Raw log-likelihood of each choice (empty for generation).
        output: The generated text before extraction (generation only).
    """

    id: str
    gold: Any
    pred: Any
    score: float
    logliks: tuple[float, ...] = ()
    output: str | None = None

    @property
    def correct(self) -> bool:
        return self.gold == self.pred

    def to_dict(self) -> dict[str, Any]:
        d = {"id": self.id, "gold": self.gold, "pred": self.pred, "score": self.score}
        if self.logliks:
            d["logliks"] = list(self.logliks)
        if self.output is not None:
            d["output"] = self.output
        return d


@dataclass
class Evaluation:
    """The result of scoring one candidate on one split.

    Attributes:
        counts / statistic: For a metric computed over the whole split from summed
            per-example counts (extraction's entity F1): each example's counts (an array)
            and the function from their sum to the metric's value. The paired test
            resamples examples and recomputes the metric with them; None for metrics that
            are a mean of per-example scores.
    """

    candidate_hash: str
    split: str
    metric: str
    metrics: dict[str, float]
    predictions: list[ExamplePrediction]
    seconds: float = 0.0
    offsets: list[float] | None = None
    format_failures: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    counts: list[Any] | None = None
    statistic: Callable[[Any], Any] | None = None

    @property
    def value(self) -> float:
        return self.metrics[self.metric]

    @property
    def scores(self) -> list[float]:
        """Per-example scores, paired by position across candidates (for statistics)."""
        return [p.score for p in self.predictions]

    @property
    def correct(self) -> list[int]:
        return [int(p.correct) for p in self.predictions]

    def to_dict(self) -> dict[str, Any]:
        d = {
            "split": self.split,
            "metric": self.metric,
            "value": self.value,
            "metrics": self.metrics,
            "n": len(self.predictions),
            "seconds": round(self.seconds, 3),
        }
        if self.format_failures:
            d["format_failures"] = self.format_failures
        return d


def metric_kind(entry: Any) -> MetricKind:
    """The :class:`~optprompt.tasks.MetricKind` a metric registered with (choices by default)."""
    return MetricKind.of(entry.extra.get("kind", MetricKind.CHOICES))


class Evaluator:
    """Renders, scores and measures candidates; strategies never see the model itself.

    Args:
        task: The task (its type decides ranking or generation).
        backend: A :class:`Backend` (or a cached wrapper of one).
        renderer: Turns candidates and examples into requests.
        metrics: The metric registry.
        generation: Decoding settings for generation tasks.
        extract: Regex extracting the answer from generated text (generation tasks).
    """

    def __init__(
        self,
        task: Task,
        backend: Backend,
        renderer: PromptRenderer,
        metrics: Registry,
        *,
        generation: GenerationSettings | None = None,
        extract: str | None = None,
    ) -> None:
        self.task = task
        self.backend = backend
        self.renderer = renderer
        self.generation = generation or GenerationSettings()
        kind = task.task_type.metric_kind
        entry = metrics.get(task.metric)
        if metric_kind(entry) != kind:
            fitting = ", ".join(e.name for e in metrics if metric_kind(e) == kind)
            raise ConfigError(
                f"task.metric: {task.metric!r} is a {metric_kind(entry).label} metric; "
                f"{task.type} tasks use one of: {fitting}"
            )
        self.metrics = [e for e in metrics if metric_kind(e) == kind]
        self._metric_fn = entry.obj
        self.pattern = None
        if extract:
            from optprompt.scoring.text_metrics import compile_pattern

            self.pattern = compile_pattern(extract, key="task.extract")

    def with_backend(self, backend: Backend) -> Evaluator:
        """The same evaluator scoring through another backend (e.g. an adapted model)."""
        import copy

        other = copy.copy(self)
        other.backend = backend
        return other

    # --- ranking (classification, multiple choice) --------------------------------
    def _content_free_offsets(self, candidate: PromptCandidate) -> list[float]:
        free = [
            Example(id=f"content-free-{i}", input=text, target="", target_index=0, row="content-free input")
            for i, text in enumerate(CONTENT_FREE_INPUTS)
        ]
        return mean_offsets(self.backend.loglikelihoods(self.renderer.requests(candidate, free)))

    def option_offsets(self, candidate: PromptCandidate, examples: Sequence[Example]) -> list[list[float]]:
        """Content-free calibration of a task whose examples bring their own options: per
        example, the mean normalised scores of its options after each content-free input
        under the same prompt (Zhao et al., 2021, per example; the options' own prior,
        as in "Surface Form Competition", Holtzman et al., 2021)."""
        rows: list[list[list[float]]] = [[] for _ in examples]
        for i, text in enumerate(CONTENT_FREE_INPUTS):
            free = [replace(ex, id=f"{ex.id}~content-free-{i}", input=text) for ex in examples]
            for j, ll in enumerate(self.backend.loglikelihoods(self.renderer.requests(candidate, free))):
                rows[j].append(ll)
        return [mean_offsets(r) for r in rows]

    def calibrates_options(self, candidate: PromptCandidate) -> bool:
        """Whether ``candidate`` is calibrated per example (options of its own, content free)."""
        return candidate.calibration == "content_free" and not self.task.has_fixed_labels

    def _rank(
        self,
        candidate: PromptCandidate,
        examples: Sequence[Example],
        logliks: list[list[float]],
        offsets: Sequence[float] | None,
        option_offsets: Sequence[Sequence[float]] = (),
    ) -> tuple[list[ExamplePrediction], dict[str, float], list[float] | None]:
        used: list[float] | None = None
        if candidate.calibration != "none" and not self.calibrates_options(candidate):
            if not self.task.has_fixed_labels:
                raise CandidateRejected(
                    f"calibration {candidate.calibration!r} needs the same answers in every example "
                    "(classification); options of their own are calibrated 'content_free' per example"
                )
            used = list(offsets) if offsets is not None else mean_offsets(logliks)
        preds = []
        for i, (ex, ll) in enumerate(zip(examples, logliks)):
            scores = ll if used is None else apply_offsets(ll, used)
            if option_offsets:
                scores = apply_offsets(ll, option_offsets[i])
            best = max(range(len(scores)), key=lambda j: scores[j])
            preds.append(ExamplePrediction(ex.id, ex.target_index, best, float(best == ex.target_index), tuple(ll)))
        return preds, self.measure(examples, [p.pred for p in preds]), used

    def measure(self, examples: Sequence[Example], pred: Sequence[int]) -> dict[str, float]:
        """Every ranking metric of the predicted choice indices ``pred`` on ``examples``."""
        gold = [ex.target_index for ex in examples]
        n_classes = len(self.task.labels) or max((len(e.options) for e in examples), default=0)
        return {e.name: float(e.obj(gold, list(pred), n_classes)) for e in self.metrics}

    # --- generation ---------------------------------------------------------------
    def _generations(self, candidate: PromptCandidate, examples: Sequence[Example]) -> list[str]:
        requests = self.renderer.requests(candidate, examples)
        return self.backend.generate([r.prefix + r.suffix for r in requests], self.generation)

    def _measure_generations(
        self, examples: Sequence[Example], outputs: list[str]
    ) -> tuple[list[ExamplePrediction], dict[str, float], int]:
        from optprompt.scoring.text_metrics import extract_answer

        per_metric: dict[str, list[float]] = {e.name: [] for e in self.metrics}
        preds = []
        failures = 0
        for ex, out in zip(examples, outputs):
            answer = extract_answer(out, self.pattern)
            if answer is None:
                failures += 1
            for e in self.metrics:
                per_metric[e.name].append(0.0 if answer is None else float(e.obj(answer, ex.target)))
            preds.append(ExamplePrediction(ex.id, ex.target, answer, per_metric[self.task.metric][-1], output=out))
        n = max(1, len(examples))
        return preds, {k: sum(v) / n for k, v in per_metric.items()}, failures

    # --- extraction ---------------------------------------------------------------
    def _measure_extractions(
        self, candidate: PromptCandidate, examples: Sequence[Example], outputs: list[str]
    ) -> tuple[list[ExamplePrediction], dict[str, float], int, list[Any]]:
        from optprompt.prompts.entity_formats import parse_entities

        fmt = self.renderer.output_format(candidate)
        words = self.renderer.type_words(candidate)
        found = [parse_entities(out, ex.input, fmt, words) for ex, out in zip(examples, outputs)]
        return self._measure_entities(examples, found, outputs)

    def _measure_entities(
        self, examples: Sequence[Example], found: Sequence[Sequence[Entity] | None], outputs: Sequence[str | None]
    ) -> tuple[list[ExamplePrediction], dict[str, float], int, list[Any]]:
        import numpy as np

        from optprompt.scoring.entity_metrics import entity_counts, entity_f1

        types = self.task.labels
        preds, counts = [], []
        failures = 0
        for ex, ents, out in zip(examples, found, outputs):
            failures += ents is None
            c = entity_counts(ex.entities, ents, types)
            counts.append(c)
            score = 0.0 if ents is None else float(entity_f1(c))
            gold = [e.to_dict() for e in ex.entities]
            pred = None if ents is None else [e.to_dict() for e in ents]
            preds.append(ExamplePrediction(ex.id, gold, pred, score, output=out))
        total = np.sum(counts, axis=0) if counts else np.zeros((len(types), 3))
        values = {e.name: float(e.obj(total)) for e in self.metrics}
        return preds, values, failures, counts

    # --- answers given from outside -------------------------------------------------
    def evaluate_answers(
        self, examples: Sequence[Example], answers: Sequence[Any], split: str = "test", name: str = "answers"
    ) -> Evaluation:
        """Measure answers that came from elsewhere (a teacher's predictions) exactly as the
        study measures its candidates: labels (classification), option texts (multiple
        choice), answer texts (generation; empty or None is a format failure) or entity
        lists of ``{"type", "text", "start", "end"}`` dicts (extraction; None is a format
        failure), one per example."""
        start = time.perf_counter()
        counts = statistic = None
        if self.task.extracts_entities:
            found = [
                None if a is None else tuple(Entity(d["start"], d["end"], d["type"], d["text"]) for d in a)
                for a in answers
            ]
            preds, values, failures, counts = self._measure_entities(examples, found, [None] * len(examples))
            statistic = self._metric_fn
        elif self.task.generates:
            per_metric: dict[str, list[float]] = {e.name: [] for e in self.metrics}
            preds, failures = [], 0
            for ex, answer in zip(examples, answers):
                failures += not answer
                for e in self.metrics:
                    per_metric[e.name].append(float(e.obj(answer, ex.target)) if answer else 0.0)
                preds.append(ExamplePrediction(ex.id, ex.target, answer or None, per_metric[self.task.metric][-1]))
            values = {k: sum(v) / max(1, len(examples)) for k, v in per_metric.items()}
        else:
            preds, failures = [], 0
            for ex, answer in zip(examples, answers):
                choices = self.task.answer_choices(ex)
                pred = choices.index(answer) if answer in choices else -1
                preds.append(ExamplePrediction(ex.id, ex.target_index, pred, float(pred == ex.target_index)))
            values = self.measure(examples, [p.pred for p in preds])
        return Evaluation(
            name,
            split,
            self.task.metric,
            values,
            preds,
            seconds=time.perf_counter() - start,
            format_failures=failures,
            counts=counts,
            statistic=statistic,
        )

    # --- public -------------------------------------------------------------------
    def iter_evaluate(
        self,
        candidate: PromptCandidate,
        examples: Sequence[Example],
        split: str = "dev",
        *,
        slices: Sequence[int] = (),
        offsets: Sequence[float] | None = None,
    ) -> Iterator[Evaluation]:
        """Score ``examples`` slice by slice, yielding the evaluation of everything scored so far.

        Args:
            slices: Indices into ``examples`` where a slice ends (the last slice always
                ends at ``len(examples)``). Multi-fidelity pruning stops iterating early.
            offsets: Calibration offsets to use as they are (e.g. found on dev, applied
                to test). When None, a ``mean``-calibrated candidate uses the mean over
                the examples scored so far; ``content_free`` computes its own once.
        """
        start = time.perf_counter()
        ends = sorted({e for e in slices if 0 < e < len(examples)} | {len(examples)})
        if offsets is None and candidate.calibration == "content_free" and self.task.has_fixed_labels:
            offsets = self._content_free_offsets(candidate)
        raw: list = []
        option_offsets: list[list[float]] = []
        done = 0
        for end in ends:
            chunk = examples[done:end]
            counts = statistic = None
            if self.task.extracts_entities:
                raw.extend(self._generations(candidate, chunk))
                preds, values, failures, counts = self._measure_extractions(candidate, examples[:end], raw)
                statistic = self._metric_fn
                used = None
            elif self.task.generates:
                raw.extend(self._generations(candidate, chunk))
                preds, values, failures = self._measure_generations(examples[:end], raw)
                used = None
            else:
                raw.extend(self.backend.loglikelihoods(self.renderer.requests(candidate, chunk)))
                if self.calibrates_options(candidate):
                    option_offsets.extend(self.option_offsets(candidate, chunk))
                preds, values, used = self._rank(candidate, examples[:end], raw, offsets, option_offsets)
                failures = 0
            done = end
            yield Evaluation(
                candidate.hash,
                split,
                self.task.metric,
                values,
                preds,
                seconds=time.perf_counter() - start,
                offsets=used,
                format_failures=failures,
                counts=counts,
                statistic=statistic,
            )

    def evaluate(
        self,
        candidate: PromptCandidate,
        examples: Sequence[Example],
        split: str = "dev",
        offsets: Sequence[float] | None = None,
    ) -> Evaluation:
        """Score ``candidate`` on ``examples``.

        Args:
            offsets: Calibration offsets to use as they are (e.g. found on dev, applied
                to test). When None, a calibrated candidate computes its own.
        """
        *_, last = self.iter_evaluate(candidate, examples, split, offsets=offsets)
        return last
