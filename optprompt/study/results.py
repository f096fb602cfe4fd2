"""The end of a study: the winner and the baseline on test, statistics, result files.

:func:`finish_study` gets everything it needs in one typed :class:`StudyEnd`; it never
sees the runner. Candidates are read, described and scored through their kind.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optprompt._io import atomic_write_text
from optprompt._version import __version__
from optprompt.prompts.context import ContextLimitedRenderer
from optprompt.results import PREDICTIONS_FILE, RESULT_FILE, RESULT_FORMAT, StudyResult
from optprompt.study import attrs
from optprompt.study.objectives import parse_rule, select
from optprompt.study.selection import Selection, compare_evaluations, select_winner
from optprompt.study.trials import COMBINED, counts, is_void

if TYPE_CHECKING:
    import optuna

    from optprompt.config.spec import StudySpec
    from optprompt.kinds.base import Candidate, KindContext
    from optprompt.kinds.registry import CandidateKinds
    from optprompt.models.loading import LoadedModel
    from optprompt.scoring.evaluate import Evaluation
    from optprompt.study.distill import TeacherLabels
    from optprompt.tasks.task import Example, Task

__all__ = ["finish_study", "StudyEnd", "RESULT_FILE", "PREDICTIONS_FILE"]


def _limited(end: StudyEnd) -> bool:
    """Whether the study's renderer fits prompts to the model's context (task.truncate)."""
    return isinstance(end.kind_context.renderer, ContextLimitedRenderer)


def _reason(t: optuna.trial.FrozenTrial) -> str:
    from optprompt.study.reasons import failure_reason

    reason = failure_reason(t)
    return reason.kind if reason is not None else ""


@dataclass(frozen=True)
class StudyEnd:
    """What the end of a study works with.

    Attributes:
        spec: The study.
        task: Its task (splits, metric).
        model: The task model (its reference, fingerprint, device and dtype are recorded).
        baseline: The baseline candidate (trial 0).
        kinds: The registered candidate kinds.
        kind_context: What kinds score with (the winner's test split is scored through it).
        strategy_options: The strategy's options as the study file gave them.
        strategy_summary: The strategy's own figures (:meth:`BaseStrategy.summary`).
        budget: The strategy's declared budget.
        started: ``time.perf_counter()`` when the study started (for the wall time).
        teacher: Distillation: what the teacher labelled (it is scored on test too).
        holdout: Dev examples the search never scored; the winner is picked there
            (``selection``). Empty: the winner is the best on dev.
        notes: Warnings the study's set-up has for result.json (e.g. dev too small to hold out).
    """

    spec: StudySpec
    task: Task
    model: LoadedModel
    baseline: Candidate
    kinds: CandidateKinds
    kind_context: KindContext
    strategy_options: dict[str, Any]
    strategy_summary: dict[str, Any]
    budget: dict[str, int]
    started: float
    teacher: TeacherLabels | None = None
    holdout: Sequence[Example] = ()
    notes: Sequence[str] = ()


def finish_study(end: StudyEnd, study: optuna.Study) -> dict[str, Any]:
    """Score baseline and winner on test, compare them, write result.json (through
    :class:`~optprompt.results.StudyResult`) and predictions; return what result.json holds."""
    from optuna.trial import TrialState

    from optprompt.stats import doubtful_win_warnings

    task = end.task
    kinds = end.kinds
    ctx = end.kind_context
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    baseline_trial = next(t for t in complete if t.user_attrs.get(attrs.ROLE) == "baseline")
    objectives = list(end.spec.objectives)
    pareto: list[dict[str, Any]] = []
    notes: list[str] = list(end.notes)
    selection: Selection | None = None

    def member(t: optuna.trial.FrozenTrial, cand: Candidate) -> dict[str, Any]:
        """A trial as result.json shows it (dev figures; calibration offsets found on dev)."""
        return {
            "trial": t.number,
            "objectives": dict(zip(objectives, t.values)),
            **kinds.of(cand).describe(cand, ctx),
            "dev": {
                "value": t.values[0],
                "metric": task.metric,
                "metrics": t.user_attrs.get(attrs.METRICS, {}),
                "n": len(task.dev),
            },
            "calibration": {"method": _calibration(cand), "offsets": t.user_attrs.get(attrs.OFFSETS)},
        }

    if len(objectives) > 1:
        pareto = [
            member(t, kinds.from_dict(t.user_attrs[attrs.CANDIDATE]))
            for t in sorted(study.best_trials, key=lambda t: t.number)
        ]
        rule = end.spec.select
        chosen = select(pareto, parse_rule(rule, objectives))
        if chosen is None:
            notes.append(f"no Pareto-front prompt meets select {rule!r}; the winner is the best score on the front")
            chosen = select(pareto, [])
        best_trial = next(t for t in complete if t.number == chosen["trial"])
    elif end.holdout:
        selection = select_winner(end.spec.selection, complete, baseline_trial, end.holdout, kinds, ctx, study)
        trials = study.get_trials(deepcopy=False)  # with what selection combined from the finalists
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best_trial = selection.winner
        if selection.kept_baseline:
            notes.append(selection.why)
    else:
        best_trial = max(complete, key=lambda t: (t.values[0], -t.number))
    baseline = end.baseline
    best = kinds.from_dict(best_trial.user_attrs[attrs.CANDIDATE])

    with kinds.of(baseline).scorer(baseline, ctx) as base_evaluator:
        test_base = base_evaluator.evaluate(baseline, task.test, "test")
    if best.hash == baseline.hash:
        test_best = test_base
    else:
        with kinds.of(best).scorer(best, ctx) as best_evaluator:
            test_best = best_evaluator.evaluate(
                best, task.test, "test", offsets=best_trial.user_attrs.get(attrs.OFFSETS)
            )
    artifacts = {t.number: t.user_attrs.get(attrs.ARTIFACT) for t in trials}

    def artifact_of(trial: optuna.trial.FrozenTrial) -> str | None:
        return artifacts.get(trial.number) or artifacts.get(trial.user_attrs.get(attrs.CACHED_FROM, -1))

    def entry(trial: optuna.trial.FrozenTrial, cand: Candidate, test: Evaluation) -> dict[str, Any]:
        artifact = artifact_of(trial)
        return {
            **member(trial, cand),
            "test": test.to_dict(),
            "calibration": {"method": _calibration(cand), "offsets": test.offsets},
            **({"artifact": artifact} if artifact else {}),
        }

    comparison = compare_evaluations(test_base, test_best)
    constrained = _constrained_generation(kinds.of(best), best, ctx, test_best)
    families = _families(trials)
    if families:
        # A study spanning several families of candidates: each family's best on dev,
        # scored on test and compared with the baseline, side by side.
        scored_tests = {baseline.hash: test_base, best.hash: test_best}
        for name, members in families.items():
            done = [t for t in members if t.state == TrialState.COMPLETE]
            families[name] = {"trials": sum(counts(t) for t in members)}
            if not done:
                continue
            top = max(done, key=lambda t: (t.values[0], -t.number))
            cand = kinds.from_dict(top.user_attrs[attrs.CANDIDATE])
            if cand.hash not in scored_tests:
                with kinds.of(cand).scorer(cand, ctx) as fam_evaluator:
                    scored_tests[cand.hash] = fam_evaluator.evaluate(
                        cand, task.test, "test", offsets=top.user_attrs.get(attrs.OFFSETS)
                    )
            test = scored_tests[cand.hash]
            families[name]["best"] = entry(top, cand, test)
            families[name]["comparison"] = compare_evaluations(test_base, test).to_dict()
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
    teacher = _teacher_figures(end, test_base, test_best) if end.teacher is not None else None
    # The search's trials (a candidate combined from the finalists at the end is not one).
    searched = [t for t in trials if t.user_attrs.get(attrs.ROLE) != COMBINED]
    states = Counter(t.state.name.lower() for t in searched if t.state.is_finished())
    reasons = Counter(_reason(t) for t in trials if t.state in (TrialState.FAIL, TrialState.PRUNED))
    dev_scored = sum(t.user_attrs.get(attrs.DEV_SCORED, 0) for t in trials)
    model = end.model
    spec = end.spec
    failures = {"test_baseline": test_base.format_failures, "test_best": test_best.format_failures}
    task_info = task.summary()
    if task.generates:
        task_info["generation"] = {
            "max_new_tokens": spec.task.max_new_tokens,
            "stop": list(spec.task.stop),
            "extract": spec.task.extract,
        }
    result = {
        "format_version": RESULT_FORMAT,
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
        "strategy": {"name": spec.strategy.name, "options": end.strategy_options, "budget": end.budget},
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
        **({"constrained_generation": constrained} if constrained else {}),
        "objectives": objectives,
        **({"select": spec.select, "pareto": pareto} if pareto else {}),
        **({"selection": {**selection.info, "why": selection.why}} if selection is not None else {}),
        "warnings": warnings,
        "format_failures": {k: v for k, v in failures.items() if v},
        **({"context": end.kind_context.renderer.summary()} if _limited(end) else {}),
        "strategy_summary": end.strategy_summary,
        **({"families": families} if families else {}),
        **({"teacher": teacher} if teacher else {}),
        "wall_seconds": round(time.perf_counter() - end.started, 1),
    }
    lines = [
        json.dumps({"role": role, "split": "test", **p.to_dict()})
        for role, ev in (("baseline", test_base), ("best", test_best))
        for p in ev.predictions
    ]
    typed = StudyResult.from_dict(result)
    kinds.of(best).finish(typed, ctx.output)
    atomic_write_text(ctx.output / PREDICTIONS_FILE, "\n".join(lines) + "\n")
    typed.write(ctx.output)
    return typed.to_dict()


def _teacher_figures(end: StudyEnd, test_base: Evaluation, test_best: Evaluation) -> dict[str, Any]:
    """Distillation: the teacher scored on test, against the student's baseline prompt
    (``comparison``) and against the student's winner (``student_vs_teacher``: winner minus
    teacher)."""
    teacher = end.teacher
    task = end.task
    options = [list(ex.options) for ex in task.test] if task.type == "multiple_choice" else None
    answers = teacher.predictor.predict([ex.input for ex in task.test], options)
    test = end.kind_context.evaluator.evaluate_answers(task.test, answers, "test", name="teacher")
    return {
        **teacher.summary(),
        "test": test.to_dict(),
        "comparison": compare_evaluations(test_base, test).to_dict(),
        "student_vs_teacher": compare_evaluations(test, test_best).to_dict(),
    }


def _families(trials: list[optuna.trial.FrozenTrial]) -> dict[str, Any]:
    """Trials by the family a strategy tagged them with (:data:`attrs.FAMILY`), in order."""
    out: dict[str, Any] = {}
    for t in trials:
        family = t.user_attrs.get(attrs.FAMILY)
        if family:
            out.setdefault(family, []).append(t)
    return out


def _constrained_generation(kind: Any, best: Candidate, ctx: KindContext, ranked: Evaluation) -> dict[str, Any] | None:
    """The winner's test score when it answers by greedy generation constrained to the answer
    set (as a serving stack with guided decoding does), beside the ranked score; None when
    its kind does not measure it."""
    answers = kind.constrained_answers(best, ctx, ctx.task.test)
    if answers is None:
        return None
    ev = ctx.evaluator.evaluate_answers(ctx.task.test, answers, "test", name="constrained generation")
    agree = sum(a.pred == b.pred for a, b in zip(ranked.predictions, ev.predictions, strict=True))
    return {
        "value": ev.value,
        "metric": ev.metric,
        "metrics": dict(ev.metrics),
        "interval": compare_evaluations(ev, ev).winner.to_dict(),
        "agreement": agree / max(1, len(ev.predictions)),
        "n": len(ev.predictions),
        "calibrated": False,
    }


def _calibration(candidate: Candidate) -> str:
    """The candidate's calibration method ("none" for kinds without one)."""
    return str(candidate.to_dict().get("calibration", "none"))
