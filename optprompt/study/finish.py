"""The end of a study: the winner and the baseline on test, statistics, result files.

:func:`finish_study` gets everything it needs in one typed :class:`StudyEnd`; it never
sees the runner. Candidates are read, described and scored through their kind.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from optprompt._io import atomic_write_text
from optprompt._version import __version__
from optprompt.prompts.context import ContextLimitedRenderer
from optprompt.results import (
    PREDICTIONS_FILE,
    RESULT_FILE,
    RESULT_FORMAT,
    ContextInfo,
    GenerationInfo,
    ModelInfo,
    PruningInfo,
    SelectionInfo,
    StrategyInfo,
    StudyResult,
    TaskInfo,
)
from optprompt.study.distilled import distillation_part
from optprompt.study.figures import constrained_generation, constrained_warnings, families_of, teacher_figures
from optprompt.study.objectives import parse_rule, select
from optprompt.study.progress import EndProgress
from optprompt.study.selection import Selection, compare_evaluations, select_winner
from optprompt.tasks.types import GENERATION_SETTINGS_KEY
from optprompt.trials import TrialRecord, counts, is_void

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
    reason = TrialRecord.from_frozen(t).failure
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
        progress: Shows which step of the end is running (off by default).
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
    progress: EndProgress = field(default_factory=lambda: EndProgress(enabled=False))


def finish_study(end: StudyEnd, study: optuna.Study) -> StudyResult:
    """Score baseline and winner on test, compare them, write result.json and predictions;
    return the typed result."""
    from optuna.trial import TrialState

    from optprompt.stats import doubtful_win_warnings

    task = end.task
    kinds = end.kinds
    ctx = end.kind_context
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    baseline_trial = next(t for t in complete if TrialRecord.from_frozen(t).is_baseline)
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
                "metrics": TrialRecord.from_frozen(t).metrics,
                "n": len(task.dev),
            },
            "calibration": {"method": _calibration(cand), "offsets": TrialRecord.from_frozen(t).offsets},
        }

    if len(objectives) > 1:
        pareto = [
            member(t, kinds.from_dict(TrialRecord.from_frozen(t).candidate))
            for t in sorted(study.best_trials, key=lambda t: t.number)
        ]
        rule = end.spec.select
        chosen = select(pareto, parse_rule(rule, objectives))
        if chosen is None:
            notes.append(f"no Pareto-front prompt meets select {rule!r}; the winner is the best score on the front")
            chosen = select(pareto, [])
        best_trial = next(t for t in complete if t.number == chosen["trial"])
    elif end.holdout:
        with end.progress.step("picking the winner on fresh evidence (held-out dev, fresh train rows)"):
            selection = select_winner(
                end.spec.selection, complete, baseline_trial, end.holdout, kinds, ctx, study, train=task.train
            )
        trials = study.get_trials(deepcopy=False)  # with what selection combined from the finalists
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best_trial = selection.winner
        if selection.kept_baseline:
            notes.append(selection.why)
    else:
        best_trial = max(complete, key=lambda t: (t.values[0], -t.number))
    baseline = end.baseline
    best = kinds.from_dict(TrialRecord.from_frozen(best_trial).candidate)

    with end.progress.step(f"scoring the baseline and the winner on test ({len(task.test)} examples)"):
        with kinds.of(baseline).scorer(baseline, ctx) as base_evaluator:
            test_base = base_evaluator.evaluate(baseline, task.test, "test")
        if best.hash == baseline.hash:
            test_best = test_base
        else:
            with kinds.of(best).scorer(best, ctx) as best_evaluator:
                test_best = best_evaluator.evaluate(
                    best, task.test, "test", offsets=TrialRecord.from_frozen(best_trial).offsets
                )
    artifacts = {t.number: TrialRecord.from_frozen(t).artifact for t in trials}

    def artifact_of(trial: optuna.trial.FrozenTrial) -> str | None:
        cached_from = TrialRecord.from_frozen(trial).cached_from
        return artifacts.get(trial.number) or artifacts.get(cached_from if cached_from is not None else -1)

    def entry(trial: optuna.trial.FrozenTrial, cand: Candidate, test: Evaluation) -> dict[str, Any]:
        artifact = artifact_of(trial)
        return {
            **member(trial, cand),
            "test": test.to_dict(),
            "calibration": {"method": _calibration(cand), "offsets": test.offsets},
            **({"artifact": artifact} if artifact else {}),
        }

    comparison = compare_evaluations(test_base, test_best)
    families = families_of(trials)
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
            cand = kinds.from_dict(TrialRecord.from_frozen(top).candidate)
            if cand.hash not in scored_tests:
                with (
                    end.progress.step(f"scoring the best of {name} on test"),
                    kinds.of(cand).scorer(cand, ctx) as fam_evaluator,
                ):
                    scored_tests[cand.hash] = fam_evaluator.evaluate(
                        cand, task.test, "test", offsets=TrialRecord.from_frozen(top).offsets
                    )
            test = scored_tests[cand.hash]
            families[name]["best"] = entry(top, cand, test)
            families[name]["comparison"] = compare_evaluations(test_base, test)
    warnings = (
        doubtful_win_warnings(
            dev_baseline=baseline_trial.values[0],
            dev_winner=best_trial.values[0],
            test_baseline=test_base.value,
            test_winner=test_best.value,
            n_candidates=len({TrialRecord.from_frozen(t).hash for t in complete}),
            n_dev=len(task.dev),
            p_value=comparison.p_value,
        )
        if best.hash != baseline.hash and 0 <= test_base.value <= 1
        else []
    )
    warnings = notes + warnings
    teacher = teacher_figures(end.teacher, task, ctx, test_base, test_best) if end.teacher is not None else None
    # The search's trials (a candidate combined from the finalists at the end is not one).
    searched = [t for t in trials if not TrialRecord.from_frozen(t).is_combined]
    states = Counter(t.state.name.lower() for t in searched if t.state.is_finished())
    reasons = Counter(_reason(t) for t in trials if t.state in (TrialState.FAIL, TrialState.PRUNED))
    dev_scored = sum(TrialRecord.from_frozen(t).dev_scored for t in trials)
    model = end.model
    spec = end.spec
    failures = {"test_baseline": test_base.format_failures, "test_best": test_best.format_failures}
    generation = (
        GenerationInfo(max_new_tokens=spec.task.max_new_tokens, stop=list(spec.task.stop), extract=spec.task.extract)
        if task.generates
        else None
    )
    optional: dict[str, Any] = {}  # parts result.json holds only when the study has them
    constrained = None
    if task.closed_answers:
        with end.progress.step("the winner answering by generation constrained to the answers, on test") as step:
            constrained = constrained_generation(kinds.of(best), best, ctx, test_best)
            if constrained is None:  # its kind does not measure it (an adapter, say)
                step.skip()
        warnings += constrained_warnings(constrained, test_best.value)
    if constrained:
        optional["constrained_generation"] = constrained
    if pareto:
        optional.update(select=spec.select, pareto=pareto)
    if selection is not None:
        optional["selection"] = SelectionInfo(**selection.info, why=selection.why)
    if _limited(end):
        optional["context"] = ContextInfo(**end.kind_context.renderer.summary())
    if families:
        optional["families"] = families
    if teacher:
        optional["teacher"] = teacher
    distilled = None
    if spec.distill is not None:
        # Test was scored for the winner above, after it was chosen: the distilled form is
        # trained on train + unlabelled inputs, picked on dev, and only then scored on test.
        with end.progress.step("distilling the winner"):
            distilled = distillation_part(
                spec.distill,
                best,
                kinds.of(best),
                baseline,
                ctx,
                test_best,
                offsets=TrialRecord.from_frozen(best_trial).offsets if best.hash != baseline.hash else None,
            )
        optional["distillation"] = distilled.info
    typed = StudyResult(
        format_version=RESULT_FORMAT,
        name=spec.name,
        optprompt_version=__version__,
        seed=spec.seed,
        model=ModelInfo(
            ref=model.ref,
            fingerprint=model.fingerprint,
            family=model.family,
            device=str(model.device),
            dtype=str(model.dtype).replace("torch.", ""),
        ),
        task=TaskInfo(**task.summary(), **({GENERATION_SETTINGS_KEY: generation} if generation else {})),
        strategy=StrategyInfo(name=spec.strategy.name, options=end.strategy_options, budget=end.budget),
        pruning=PruningInfo(**spec.pruning.model_dump()),
        n_trials=sum(states.values()),
        n_scored=sum(counts(t) for t in trials),
        n_void=sum(is_void(t) for t in trials),
        dev_examples_scored=dev_scored,
        trial_states=dict(states),
        failure_reasons=dict(reasons),
        baseline=entry(baseline_trial, baseline, test_base),
        best=entry(best_trial, best, test_best),
        comparison=comparison,
        objectives=objectives,
        warnings=warnings,
        format_failures={k: v for k, v in failures.items() if v},
        strategy_summary=end.strategy_summary,
        wall_seconds=round(time.perf_counter() - end.started, 1),
        **optional,
    )
    lines = [
        json.dumps({"role": role, "split": "test", **p.to_dict()})
        for role, ev in (("baseline", test_base), ("best", test_best))
        for p in ev.predictions
    ]
    if distilled is not None:
        lines += [json.dumps({"role": "distilled", "split": "test", **p}) for p in distilled.predictions]
    kinds.of(best).finish(typed, ctx.output)
    atomic_write_text(ctx.output / PREDICTIONS_FILE, "\n".join(lines) + "\n")
    typed.write(ctx.output)
    return typed


def _calibration(candidate: Candidate) -> str:
    """The candidate's calibration method ("none" for kinds without one)."""
    return str(candidate.to_dict().get("calibration", "none"))
