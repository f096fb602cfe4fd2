"""The end of a study: the winner and the baseline on test, statistics, result files."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from optprompt._io import atomic_write_json, atomic_write_text
from optprompt._version import __version__
from optprompt.prompts.candidate import PromptCandidate
from optprompt.prompts.context import ContextLimitedRenderer
from optprompt.study import attrs
from optprompt.study.objectives import parse_rule, select
from optprompt.study.trials import counts, is_void

if TYPE_CHECKING:
    import optuna

    from optprompt.prompts.render import PromptRenderer
    from optprompt.scoring.evaluate import Evaluation
    from optprompt.study.runner import StudyRunner

__all__ = ["finish_study", "describe_candidate", "describe", "RESULT_FILE", "PREDICTIONS_FILE"]

RESULT_FILE = "result.json"
PREDICTIONS_FILE = "predictions.jsonl"


def describe_candidate(runner: StudyRunner, candidate: PromptCandidate) -> dict[str, Any]:
    """The candidate as result.json shows it: rendered prompt and resolved demonstrations."""
    return describe(runner.renderer, runner.chat, candidate)


def describe(renderer: PromptRenderer, chat: bool, candidate: PromptCandidate) -> dict[str, Any]:
    """:func:`describe_candidate` from the renderer and chat flag alone."""
    demos = []
    for ex in renderer.demos(candidate):
        word = renderer.answer_words(candidate, ex)[max(ex.target_index, 0)]
        demos.append({"id": ex.id, "input": ex.input, "answer": word, "options": list(ex.options)})
    return {
        "candidate": candidate.to_dict(),
        "hash": candidate.hash,
        "chat": chat,
        "prompt": renderer.render_text(candidate),
        "demos": demos,
    }


def _reason(t: optuna.trial.FrozenTrial) -> str:
    from optprompt.study.reasons import failure_reason

    reason = failure_reason(t)
    return reason.kind if reason is not None else ""


def finish_study(runner: StudyRunner, study: optuna.Study, started: float, budget: dict[str, int]) -> dict[str, Any]:
    """Score baseline and winner on test, compare them, write result.json and predictions."""
    from optuna.trial import TrialState

    from optprompt.stats import compare, doubtful_win_warnings

    task = runner.task
    evaluator = runner.evaluator
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    baseline_trial = next(t for t in complete if t.user_attrs.get(attrs.ROLE) == "baseline")
    objectives = list(runner.spec.objectives)
    pareto: list[dict[str, Any]] = []
    notes: list[str] = []

    def member(t: optuna.trial.FrozenTrial, cand: PromptCandidate) -> dict[str, Any]:
        """A trial as result.json shows it (dev figures; calibration offsets found on dev)."""
        return {
            "trial": t.number,
            "objectives": dict(zip(objectives, t.values)),
            **describe_candidate(runner, cand),
            "dev": {
                "value": t.values[0],
                "metric": task.metric,
                "metrics": t.user_attrs.get(attrs.METRICS, {}),
                "n": len(task.dev),
            },
            "calibration": {"method": cand.calibration, "offsets": t.user_attrs.get(attrs.OFFSETS)},
        }

    if len(objectives) > 1:
        pareto = [
            member(t, PromptCandidate.from_dict(t.user_attrs[attrs.CANDIDATE]))
            for t in sorted(study.best_trials, key=lambda t: t.number)
        ]
        rule = runner.spec.select
        chosen = select(pareto, parse_rule(rule, objectives))
        if chosen is None:
            notes.append(f"no Pareto-front prompt meets select {rule!r}; the winner is the best score on the front")
            chosen = select(pareto, [])
        best_trial = next(t for t in complete if t.number == chosen["trial"])
    else:
        best_trial = max(complete, key=lambda t: (t.values[0], -t.number))
    baseline = runner.baseline
    best = PromptCandidate.from_dict(best_trial.user_attrs[attrs.CANDIDATE])

    test_base = evaluator.evaluate(baseline, task.test, "test")
    if best.hash == baseline.hash:
        test_best = test_base
    else:
        with runner.strategy.scorer(best, runner.session) as best_evaluator:
            test_best = best_evaluator.evaluate(
                best, task.test, "test", offsets=best_trial.user_attrs.get(attrs.OFFSETS)
            )
    artifacts = {t.number: t.user_attrs.get(attrs.ARTIFACT) for t in trials}

    def artifact_of(trial: optuna.trial.FrozenTrial) -> str | None:
        return artifacts.get(trial.number) or artifacts.get(trial.user_attrs.get(attrs.CACHED_FROM, -1))

    def entry(trial: optuna.trial.FrozenTrial, cand: PromptCandidate, test: Evaluation) -> dict[str, Any]:
        artifact = artifact_of(trial)
        return {
            **member(trial, cand),
            "test": test.to_dict(),
            "calibration": {"method": cand.calibration, "offsets": test.offsets},
            **({"artifact": artifact} if artifact else {}),
        }

    comparison = compare(test_base.scores, test_best.scores)
    warnings = (
        doubtful_win_warnings(
            dev_baseline=baseline_trial.values[0],
            dev_winner=best_trial.values[0],
            test_baseline=test_base.value,
            test_winner=test_best.value,
            n_candidates=len({t.user_attrs.get(attrs.HASH) for t in complete}),
            n_dev=len(task.dev),
            p_value=comparison.p_value,
        )
        if best.hash != baseline.hash and 0 <= test_base.value <= 1
        else []
    )
    warnings = notes + warnings
    states = Counter(t.state.name.lower() for t in trials if t.state.is_finished())
    reasons = Counter(_reason(t) for t in trials if t.state in (TrialState.FAIL, TrialState.PRUNED))
    dev_scored = sum(t.user_attrs.get(attrs.DEV_SCORED, 0) for t in trials)
    model = runner.model
    spec = runner.spec
    failures = {"test_baseline": test_base.format_failures, "test_best": test_best.format_failures}
    task_info = task.summary()
    if task.type == "generation":
        task_info["generation"] = {
            "max_new_tokens": spec.task.max_new_tokens,
            "stop": list(spec.task.stop),
            "extract": spec.task.extract,
        }
    result = {
        "name": spec.name,
        "optprompt_version": __version__,
        "seed": spec.seed,
        "model": {
            "ref": spec.model,
            "fingerprint": model.fingerprint,
            "family": model.family,
            "device": str(model.device),
            "dtype": str(model.dtype).replace("torch.", ""),
        },
        "task": task_info,
        "strategy": {"name": spec.strategy.name, "options": runner.strategy_options, "budget": budget},
        "pruning": spec.pruning.model_dump(),
        "n_trials": sum(states.values()),
        "n_scored": sum(counts(t) for t in trials),
        "n_void": sum(is_void(t) for t in trials),
        "dev_examples_scored": dev_scored,
        "trial_states": dict(states),
        "failure_reasons": dict(reasons),
        "baseline": entry(baseline_trial, baseline, test_base),
        "best": entry(best_trial, best, test_best),
        "comparison": comparison.to_dict(),
        "objectives": objectives,
        **({"select": runner.spec.select, "pareto": pareto} if pareto else {}),
        "warnings": warnings,
        "format_failures": {k: v for k, v in failures.items() if v},
        **({"context": runner.renderer.summary()} if isinstance(runner.renderer, ContextLimitedRenderer) else {}),
        "strategy_summary": runner.strategy.summary(study),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    lines = [
        json.dumps({"role": role, "split": "test", **p.to_dict()})
        for role, ev in (("baseline", test_base), ("best", test_best))
        for p in ev.predictions
    ]
    best_artifact = result["best"].get("artifact")
    if best_artifact:
        from optprompt.adapters.artifact import MANIFEST_FILE, result_fields, update_manifest

        if (runner.output / best_artifact / MANIFEST_FILE).is_file():
            update_manifest(runner.output / best_artifact, **result_fields(result))
    atomic_write_text(runner.output / PREDICTIONS_FILE, "\n".join(lines) + "\n")
    atomic_write_json(runner.output / RESULT_FILE, result)
    return result
