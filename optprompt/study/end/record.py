"""The study's record: every step's part assembled into the typed :class:`StudyResult`,
written as ``result.json`` with the test predictions (``predictions.jsonl``)."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from optprompt._io import atomic_write_text
from optprompt._version import __version__
from optprompt.results import (
    PREDICTIONS_FILE,
    RESULT_FORMAT,
    GenerationInfo,
    ModelInfo,
    PruningInfo,
    StrategyInfo,
    StudyResult,
    TaskInfo,
)
from optprompt.study.end.context import EndState, StudyEnd
from optprompt.study.end.on_test import ScoreTest, entries
from optprompt.study.end.pick import PickWinner
from optprompt.study.end.step import EndStep
from optprompt.tasks.types import GENERATION_SETTINGS_KEY

__all__ = ["WriteResult"]


def _counts(state: EndState) -> dict[str, Any]:
    """What the trials did: states, failure reasons, budget units and dev examples scored."""
    trials = state.trials.all
    # The search's trials (a candidate combined from the finalists at the end is not one).
    states = Counter(r.state.name.lower() for r in trials if not r.is_combined and r.is_finished)
    reasons = Counter(r.failure.label for r in trials if r.failure is not None)
    return {
        "n_trials": sum(states.values()),
        "n_scored": sum(r.uses_budget for r in trials),
        "n_void": sum(r.is_void for r in trials),
        "dev_examples_scored": sum(r.dev_scored for r in trials),
        "trial_states": dict(states),
        "failure_reasons": dict(reasons),
    }


def _setting(end: StudyEnd) -> dict[str, Any]:
    """What the study ran: its model, task, strategy and pruning settings."""
    spec, model, task = end.spec, end.model, end.task
    generation = (
        GenerationInfo(max_new_tokens=spec.task.max_new_tokens, stop=list(spec.task.stop), extract=spec.task.extract)
        if task.generates
        else None
    )
    return {
        "name": spec.name,
        "seed": spec.seed,
        "model": ModelInfo(
            ref=model.ref,
            fingerprint=model.fingerprint,
            family=model.family,
            device=str(model.device),
            dtype=str(model.dtype).replace("torch.", ""),
        ),
        "task": TaskInfo(**task.summary(), **({GENERATION_SETTINGS_KEY: generation} if generation else {})),
        "strategy": StrategyInfo(name=spec.strategy.name, options=end.strategy_options, budget=end.budget),
        "pruning": PruningInfo(**spec.pruning.model_dump()),
        "objectives": list(spec.objectives),
        "strategy_summary": end.strategy_summary,
    }


class WriteResult(EndStep[StudyResult]):
    """The typed result from every step's part; ``result.json`` and ``predictions.jsonl``
    written (atomically); the winner's kind told the study is finished."""

    def run(self, end: StudyEnd, state: EndState) -> StudyResult:
        parts: dict[str, Any] = {}
        for step, part in state.ran:
            parts.update(step.result_fields(part))
        result = StudyResult(
            format_version=RESULT_FORMAT,
            optprompt_version=__version__,
            **_setting(end),
            **_counts(state),
            **entries(end, state),
            warnings=list(state.warnings),
            wall_seconds=round(time.perf_counter() - end.started, 1),
            **parts,
        )
        output = end.kind_context.output
        end.kind_of(state.part(PickWinner).candidate).finish(result, output)
        atomic_write_text(output / PREDICTIONS_FILE, _predictions(state))
        result.write(output)
        return result


def _predictions(state: EndState) -> str:
    """``predictions.jsonl``: the baseline's and the winner's test predictions, then the
    distilled form's (when the study distilled its winner)."""
    from optprompt.study.end.distillation import DistillWinner

    test = state.part(ScoreTest)
    lines = [
        json.dumps({"role": role, "split": "test", **p.to_dict()})
        for role, ev in (("baseline", test.baseline), ("best", test.winner))
        for p in ev.predictions
    ]
    distilled = state.parts.get(DistillWinner)
    if distilled is not None:
        lines += [json.dumps({"role": "distilled", "split": "test", **p}) for p in distilled.predictions]
    return "\n".join(lines) + "\n"
