"""The study loop: ask Optuna for a trial, get a candidate, score it on dev, tell.

Trial 0 is always the baseline prompt, so every study can say how much better its
winner is than the starting point. Results go to ``OUTPUT/result.json`` when the budget
is spent; the storage keeps every trial, so running the same study again resumes it.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt._io import atomic_write_json, atomic_write_text
from optprompt._version import __version__
from optprompt.config.spec import StudySpec
from optprompt.errors import CandidateRejected, OptpromptError
from optprompt.plugins.manager import Plugins, load_plugins
from optprompt.prompts.candidate import PromptCandidate
from optprompt.prompts.render import PromptRenderer
from optprompt.strategies.base import BaseStrategy, StrategyContext
from optprompt.strategies.services import StrategyServices
from optprompt.study import attrs
from optprompt.study.progress import StudyProgress
from optprompt.study.storage import check_spec_key, finished_trials, open_study, spec_key_part, storage_url
from optprompt.tasks.build import build_task
from optprompt.tasks.task import Task

if TYPE_CHECKING:
    import optuna

    from optprompt.models.loading import LoadedModel
    from optprompt.scoring.evaluate import Evaluation, Evaluator

__all__ = ["StudyRunner", "run_study", "RESULT_FILE", "SPEC_FILE", "PREDICTIONS_FILE"]

logger = logging.getLogger("optprompt")

RESULT_FILE = "result.json"
SPEC_FILE = "study.json"
PREDICTIONS_FILE = "predictions.jsonl"


@dataclass
class _Scored:
    value: float
    metrics: dict[str, float]
    trial: int
    offsets: list[float] | None = None


class StudyRunner:
    """Runs (or resumes) one study described by a :class:`StudySpec`.

    Args:
        spec: The validated study.
        plugins: Loaded plugins; discovered from entry points when None.
        model: An already loaded model to score with (tests pass a tiny one).
        progress: Show a progress bar on stderr.
    """

    def __init__(self, spec: StudySpec, *, plugins: Plugins | None = None, model: LoadedModel | None = None,
                 progress: bool = True) -> None:
        self.spec = spec
        self.plugins = plugins or load_plugins()
        self.progress = progress
        self.output = Path(spec.output)
        self._model = model
        self.task: Task = build_task(spec.task, plugins=self.plugins, seed=spec.seed,
                                     base_dir=spec.base_dir, name=spec.name)
        strategy_cls = self.plugins.strategies.get(spec.strategy.name).obj
        self.plugins.metrics.get(self.task.metric)
        self._strategy_cls: type[BaseStrategy] = strategy_cls
        self._strategy_options = spec.strategy.options()
        self.strategy: BaseStrategy | None = None
        self.evaluator: Evaluator | None = None
        self.renderer: PromptRenderer | None = None
        self._cache = None

    # --- set-up -------------------------------------------------------------------
    def _baseline(self, chat: bool) -> PromptCandidate:
        verbalizer = tuple((lbl, self.task.verbalizer[lbl]) for lbl in self.task.labels)
        return PromptCandidate(instruction=self.task.instruction, template=self.task.template,
                               verbalizer=verbalizer, metadata={"chat": chat})

    def _setup(self) -> None:
        from optprompt.models.loading import load_model
        from optprompt.scoring.backends.base import GenerationSettings
        from optprompt.scoring.evaluate import Evaluator

        sc = self.spec.scoring
        # Build the strategy first: bad options fail before the model is loaded.
        baseline_probe = self._baseline(chat=False)
        services = StrategyServices(self._load_for_strategy, default_ref=self.spec.model)
        context = StrategyContext(task=self.task, seed=self.spec.seed, baseline=baseline_probe, services=services)
        self.strategy = self._strategy_cls.from_options(self._strategy_options, context)
        if self._model is None:
            self._model = load_model(self.spec.model, self.plugins, device=sc.device, dtype=sc.dtype,
                                     backend=sc.backend, progress=self.progress)
        model = self._model
        backend_cls = self.plugins.backends.get(model.family).obj
        can_chat = model.has_chat_template and backend_cls.supports_chat
        chat = can_chat if sc.chat == "auto" else sc.chat == "on"
        if chat and not can_chat:
            raise OptpromptError(f"scoring.chat is 'on' but model {self.spec.model!r} ({model.family}) "
                                 "has no chat template it can be scored with")
        self.chat = chat
        self.renderer = PromptRenderer(self.task, model.chat_formatter() if chat else None)
        self.backend = self._backend_for(model)
        ts = self.spec.task
        self.evaluator = Evaluator(self.task, self.backend, self.renderer, self.plugins.metrics,
                                   generation=GenerationSettings(ts.max_new_tokens, tuple(ts.stop)),
                                   extract=ts.extract)
        self.baseline = self._baseline(chat)
        # Render the baseline once up front: a broken template fails here, not in trial 0.
        try:
            self.renderer.request(self.baseline, self.task.dev[0])
        except CandidateRejected as e:
            raise OptpromptError(f"the baseline prompt cannot be rendered: {e}") from None

    def _backend_for(self, model: LoadedModel):  # type: ignore[no-untyped-def]
        from optprompt.scoring.cache import CachedBackend, ScoreCache, default_cache_path

        sc = self.spec.scoring
        backend = self.plugins.backends.get(model.family).obj(model, batch_tokens=sc.batch_tokens)
        if not sc.cache:
            return backend
        if self._cache is None:
            self._cache = ScoreCache(sc.cache_path or default_cache_path())
        return CachedBackend(backend, self._cache)

    def _load_for_strategy(self, ref: str):  # type: ignore[no-untyped-def]
        """Backend and model for a strategy's generator; the task model when ``ref`` is it."""
        from optprompt.models.loading import load_model

        if ref == self.spec.model and self._model is not None:
            return self.backend, self._model
        sc = self.spec.scoring
        loaded = load_model(ref, self.plugins, device=sc.device, dtype=sc.dtype, progress=self.progress)
        return self._backend_for(loaded), loaded

    def _spec_key(self) -> dict[str, str]:
        return {
            "model": spec_key_part(self.spec.model),
            "task": self.task.fingerprint,
            "prompt": spec_key_part([self.task.instruction, self.task.template, self.task.verbalizer]),
            "strategy": spec_key_part([self.spec.strategy.name, {k: v for k, v in self._strategy_options.items() if k != "trials"}]),
            "seed": str(self.spec.seed),
        }

    # --- the loop -----------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Run trials until the budget is spent, then score on test and write results."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        started = time.perf_counter()
        random.seed(self.spec.seed)
        self.output.mkdir(parents=True, exist_ok=True)
        self._setup()
        assert self.strategy is not None and self.evaluator is not None  # set by _setup
        import torch

        torch.manual_seed(self.spec.seed)
        url = storage_url(self.spec.storage, self.output)
        atomic_write_json(self.output / SPEC_FILE, {
            "spec": self.spec.model_dump(mode="json"), "storage": url, "study_name": self.spec.name,
            "optprompt_version": __version__,
        })
        study = open_study(url, self.spec.name, sampler=self.strategy.create_sampler())
        check_spec_key(study, self._spec_key(), where=url)
        budget = self.strategy.budget()
        scored = self._known_scores(study)
        done = self._budget_used(study)
        if done:
            logger.info("resuming study %r: %d of %d trials already finished", self.spec.name, done, budget.trials)
        # Repeats of an already scored candidate cost no model time and do not count; a
        # sampler that only repeats itself (a small, exhausted space) stops the study.
        max_total = budget.trials * 3
        with StudyProgress(total=budget.trials, done=done, enabled=self.progress,
                           best=self._best_value(study)) as bar:
            while (used := self._budget_used(study)) < budget.trials:
                if len(finished_trials(study)) >= max_total:
                    logger.warning("stopping after %d trials: the strategy keeps proposing candidates "
                                   "already scored (%d distinct of %d budgeted)", max_total, used, budget.trials)
                    break
                value = self._one_trial(study, scored)
                if self._budget_used(study) > used:
                    bar.advance(value)
        result = self._finish(study, started, budget.to_dict())
        return result

    def _known_scores(self, study: optuna.Study) -> dict[str, _Scored]:
        from optuna.trial import TrialState

        scored: dict[str, _Scored] = {}
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            h = t.user_attrs.get(attrs.HASH)
            if h and h not in scored and t.value is not None:
                scored[h] = _Scored(t.value, t.user_attrs.get(attrs.METRICS, {}), t.number,
                                    t.user_attrs.get(attrs.OFFSETS))
        return scored

    @staticmethod
    def _budget_used(study: optuna.Study) -> int:
        """Finished trials that count against the budget: all but repeats of a scored candidate."""
        return sum(attrs.CACHED_FROM not in t.user_attrs for t in finished_trials(study))

    @staticmethod
    def _best_value(study: optuna.Study) -> float | None:
        from optuna.trial import TrialState

        values = [t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        return max(values) if values else None

    @staticmethod
    def _has_baseline(study: optuna.Study) -> bool:
        from optuna.trial import TrialState

        return any(t.user_attrs.get(attrs.ROLE) == "baseline"
                   for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))

    def _one_trial(self, study: optuna.Study, scored: dict[str, _Scored]) -> float | None:
        from optuna.trial import TrialState

        assert self.strategy is not None and self.evaluator is not None
        is_baseline = not self._has_baseline(study)
        trial = study.ask()
        try:
            if is_baseline:
                trial.set_user_attr(attrs.ROLE, "baseline")
                candidate = self.baseline
            else:
                candidate = self.strategy.propose(trial)
            trial.set_user_attr(attrs.CANDIDATE, candidate.to_dict())
            trial.set_user_attr(attrs.HASH, candidate.hash)
            evaluation: Evaluation | None = None
            known = scored.get(candidate.hash)
            if known is not None:
                trial.set_user_attr(attrs.CACHED_FROM, known.trial)
                value, metrics, offsets = known.value, known.metrics, known.offsets
            else:
                evaluation = self.evaluator.evaluate(candidate, self.task.dev, "dev")
                value, metrics, offsets = evaluation.value, evaluation.metrics, evaluation.offsets
                scored[candidate.hash] = _Scored(value, metrics, trial.number, offsets)
            trial.set_user_attr(attrs.METRICS, metrics)
            if evaluation is not None and evaluation.format_failures:
                trial.set_user_attr(attrs.FORMAT_FAILURES, evaluation.format_failures)
            if offsets is not None:
                trial.set_user_attr(attrs.OFFSETS, offsets)
            study.tell(trial, value)
            if evaluation is not None and not is_baseline:
                self.strategy.observe(trial, candidate, evaluation)
            return value
        except CandidateRejected as e:
            trial.set_user_attr(attrs.FAIL_REASON, f"rejected: {e}")
            study.tell(trial, state=TrialState.PRUNED)
            if is_baseline:
                raise OptpromptError(f"the baseline prompt was rejected: {e}") from None
            return None
        except KeyboardInterrupt:
            trial.set_user_attr(attrs.FAIL_REASON, "interrupted by the user")
            study.tell(trial, state=TrialState.FAIL)
            raise
        except Exception as e:
            reason = f"{type(e).__name__}: {e}"
            trial.set_user_attr(attrs.FAIL_REASON, reason[:2000])
            study.tell(trial, state=TrialState.FAIL)
            if is_baseline:
                raise OptpromptError(f"scoring the baseline prompt failed: {reason}") from e
            logger.warning("trial %d failed: %s", trial.number, reason)
            return None

    # --- the end ------------------------------------------------------------------
    def _describe(self, candidate: PromptCandidate) -> dict[str, Any]:
        assert self.renderer is not None
        demos = []
        for ex in self.renderer.demos(candidate):
            word = self.renderer.answer_words(candidate, ex)[max(ex.target_index, 0)]
            demos.append({"id": ex.id, "input": ex.input, "answer": word, "options": list(ex.options)})
        return {
            "candidate": candidate.to_dict(),
            "hash": candidate.hash,
            "chat": self.chat,
            "prompt": self.renderer.render_text(candidate),
            "demos": demos,
        }

    def _finish(self, study: optuna.Study, started: float, budget: dict[str, int]) -> dict[str, Any]:
        from optuna.trial import TrialState

        from optprompt.stats import compare, doubtful_win_warnings

        assert self.evaluator is not None
        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        baseline_trial = next(t for t in complete if t.user_attrs.get(attrs.ROLE) == "baseline")
        best_trial = max(complete, key=lambda t: (t.value, -t.number))
        baseline = self.baseline
        best = PromptCandidate.from_dict(best_trial.user_attrs[attrs.CANDIDATE])

        test_base = self.evaluator.evaluate(baseline, self.task.test, "test")
        test_best = test_base if best.hash == baseline.hash else self.evaluator.evaluate(
            best, self.task.test, "test", offsets=best_trial.user_attrs.get(attrs.OFFSETS))

        def entry(trial: optuna.trial.FrozenTrial, cand: PromptCandidate, test: Evaluation) -> dict[str, Any]:
            metrics = trial.user_attrs.get(attrs.METRICS, {})
            return {
                "trial": trial.number,
                **self._describe(cand),
                "dev": {"value": trial.value, "metric": self.task.metric, "metrics": metrics, "n": len(self.task.dev)},
                "calibration": {"method": cand.calibration, "offsets": test.offsets},
                "test": test.to_dict(),
            }

        comparison = compare(test_base.scores, test_best.scores)
        warnings = doubtful_win_warnings(
            dev_baseline=baseline_trial.value, dev_winner=best_trial.value,
            test_baseline=test_base.value, test_winner=test_best.value,
            n_candidates=len({t.user_attrs.get(attrs.HASH) for t in complete}),
            n_dev=len(self.task.dev), p_value=comparison.p_value,
        ) if best.hash != baseline.hash and self.task.metric == "accuracy" else []
        failures = {"test_baseline": test_base.format_failures, "test_best": test_best.format_failures}
        states = Counter(t.state.name.lower() for t in trials if t.state.is_finished())
        reasons = Counter(
            t.user_attrs.get(attrs.FAIL_REASON, "unknown").split(":")[0]
            for t in trials if t.state in (TrialState.FAIL, TrialState.PRUNED)
        )
        model = self._model
        assert model is not None
        result = {
            "name": self.spec.name,
            "optprompt_version": __version__,
            "seed": self.spec.seed,
            "model": {"ref": self.spec.model, "fingerprint": model.fingerprint,
                      "device": str(model.device), "dtype": str(model.dtype).replace("torch.", "")},
            "task": {**self.task.summary(), **({"generation": {
                "max_new_tokens": self.spec.task.max_new_tokens, "stop": list(self.spec.task.stop),
                "extract": self.spec.task.extract}} if self.task.type == "generation" else {})},
            "strategy": {"name": self.spec.strategy.name, "options": self._strategy_options, "budget": budget},
            "n_trials": sum(states.values()),
            "n_scored": self._budget_used(study),
            "trial_states": dict(states),
            "failure_reasons": dict(reasons),
            "baseline": entry(baseline_trial, baseline, test_base),
            "best": entry(best_trial, best, test_best),
            "comparison": comparison.to_dict(),
            "warnings": warnings,
            "format_failures": {k: v for k, v in failures.items() if v},
            "wall_seconds": round(time.perf_counter() - started, 1),
        }
        import json

        lines = [json.dumps({"role": role, "split": "test", **p.to_dict()})
                 for role, ev in (("baseline", test_base), ("best", test_best)) for p in ev.predictions]
        atomic_write_text(self.output / PREDICTIONS_FILE, "\n".join(lines) + "\n")
        atomic_write_json(self.output / RESULT_FILE, result)
        return result


def run_study(spec: StudySpec, **kwargs: Any) -> dict[str, Any]:
    """Run or resume ``spec``; returns what ``result.json`` holds. See :class:`StudyRunner`."""
    return StudyRunner(spec, **kwargs).run()
