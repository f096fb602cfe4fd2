"""The study loop: ask Optuna for a trial, get a candidate, score it on dev, tell.

Trial 0 is always the baseline prompt, so every study can say how much better its
winner is than the starting point. Results go to ``OUTPUT/result.json`` when the budget
is spent; the storage keeps every trial, so running the same study again resumes it.
"""

from __future__ import annotations

import logging
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from optprompt._io import atomic_write_json
from optprompt._version import __version__
from optprompt.config.spec import StudySpec
from optprompt.errors import CandidateRejected, ConfigError, OptpromptError
from optprompt.kinds.base import Candidate, KindContext
from optprompt.plugins.manager import Plugins, load_plugins
from optprompt.prompts.candidate import PromptCandidate
from optprompt.prompts.context import check_context, context_limited_renderer
from optprompt.prompts.render import PromptRenderer
from optprompt.prompts.retrieval import Embedder, Retrievers
from optprompt.strategies.base import BaseStrategy, StrategyContext
from optprompt.strategies.services import StrategyServices
from optprompt.study import attrs
from optprompt.study.interrupts import deferred_interrupts
from optprompt.study.objectives import directions, values_of
from optprompt.study.progress import StudyProgress
from optprompt.study.resilience import BudgetLock, Heartbeat, reseed_sampler, trial_timeout, with_reconnect
from optprompt.study.results import PREDICTIONS_FILE, RESULT_FILE, StudyEnd, finish_study
from optprompt.study.storage import check_spec_key, make_storage, open_study, spec_key_part, storage_url
from optprompt.study.trials import (
    CONNECTION_LOST,
    INTERRUPTED,
    PROPOSALS_PER_BUDGET,
    REJECTED,
    counts,
    exhausted,
    exhausted_note,
    is_running,
    proposals,
)
from optprompt.tasks.build import build_task
from optprompt.tasks.sampling import holdout_split
from optprompt.tasks.task import Example, Task

if TYPE_CHECKING:
    import optuna

    from optprompt.models.loading import LoadedModel
    from optprompt.scoring.backends.base import Backend
    from optprompt.scoring.evaluate import Evaluation, Evaluator
    from optprompt.study.distill import TeacherLabels

__all__ = ["StudyRunner", "run_study", "RESULT_FILE", "SPEC_FILE", "PREDICTIONS_FILE"]

logger = logging.getLogger("optprompt")
T = TypeVar("T")
#: The fewest examples each part of a split dev may have (selection.holdout).
MIN_HOLDOUT = 4

SPEC_FILE = "study.json"


@dataclass
class _Scored:
    values: list[float]  # one per objective; values[0] is the task score
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
        worker: One of several processes sharing the study (``optprompt worker``): its
            sampler draws are salted so workers do not propose the same candidates.
            A single run stays exactly reproducible, across crashes too.
    """

    def __init__(
        self,
        spec: StudySpec,
        *,
        plugins: Plugins | None = None,
        model: LoadedModel | None = None,
        progress: bool = True,
        worker: bool = False,
    ) -> None:
        self.spec = spec
        self.plugins = plugins or load_plugins()
        self.progress = progress
        self.output = Path(spec.output)
        self.model = model
        self.task: Task = build_task(
            spec.task, plugins=self.plugins, seed=spec.seed, base_dir=spec.base_dir, name=spec.name
        )
        strategy_cls = self.plugins.strategies.get(spec.strategy.name).obj
        self.plugins.metrics.get(self.task.metric)
        self._strategy_cls: type[BaseStrategy] = strategy_cls
        self.strategy_options = spec.strategy.options()
        self.kinds = self.plugins.candidate_kinds
        self.strategy: BaseStrategy | None = None
        self.evaluator: Evaluator | None = None
        self.renderer: PromptRenderer | None = None
        self.backend: Backend | None = None
        self.chat = False
        self.baseline: PromptCandidate | None = None
        self.dev: list[Example] = []  # what the search scores
        self.holdout: list[Example] = []  # held out from it: the winner is picked there
        self.selection_note: str | None = None  # why no part of dev was held out, if the default could not be
        self.kind_context: KindContext | None = None  # what kinds score and train with
        self.teacher: TeacherLabels | None = None  # distillation: what the teacher labelled
        self.sampler: optuna.samplers.BaseSampler | None = None
        self.storage: optuna.storages.RDBStorage | None = None
        self.study_id: int | None = None
        self.lock: BudgetLock | None = None
        self._cache = None
        self._embedding_models: dict[str, LoadedModel] = {}  # embedding models other than the task model
        self.trials_run = 0  # trials this process ran (a worker's share)
        self._reserved: optuna.Trial | None = None  # the trial this process holds, if any
        # Concurrent workers must not replay each other's sampler draws.
        self.worker_salt = random.SystemRandom().randrange(1, 2**31) if worker else 0

    # --- set-up -------------------------------------------------------------------
    def _baseline(self, chat: bool) -> PromptCandidate:
        verbalizer = tuple((lbl, self.task.verbalizer[lbl]) for lbl in self.task.labels)
        return PromptCandidate(
            instruction=self.task.instruction,
            template=self.task.template,
            verbalizer=verbalizer,
            output_format=self.task.output_format,
            metadata={"chat": chat},
        )

    def _setup(self) -> None:
        from optprompt.models.loading import load_model
        from optprompt.scoring.backends.base import GenerationSettings
        from optprompt.scoring.evaluate import Evaluator

        sc = self.spec.scoring
        if self.spec.teacher and self.teacher is None:
            self._label_with_teacher()
        # Build the strategy first: bad options fail before the model is loaded.
        baseline_probe = self._baseline(chat=False)
        services = StrategyServices(self._load_for_strategy, default_ref=self.spec.model)
        context = StrategyContext(
            task=self.task,
            seed=self.spec.seed,
            baseline=baseline_probe,
            services=services,
            objectives=tuple(self.spec.objectives),
        )
        self.strategy = self._strategy_cls.from_options(self.strategy_options, context)
        if self.model is None:
            self.model = load_model(
                self.spec.model,
                self.plugins,
                device=sc.device,
                dtype=sc.dtype,
                backend=sc.backend,
                progress=self.progress,
            )
        model = self.model
        backend_cls = self.plugins.backends.get(model.family).obj
        can_chat = model.has_chat_template and backend_cls.supports_chat
        chat = can_chat if sc.chat == "auto" else sc.chat == "on"
        if chat and not can_chat:
            raise OptpromptError(
                f"scoring.chat is 'on' but model {self.spec.model!r} ({model.family}) "
                "has no chat template it can be scored with"
            )
        self.chat = chat
        self.renderer = context_limited_renderer(
            self.task, model, chat, self.spec.task, retrievers=Retrievers(self._embedder_for)
        )
        self.backend = self._backend_for(model)
        ts = self.spec.task
        self.evaluator = Evaluator(
            self.task,
            self.backend,
            self.renderer,
            self.plugins.metrics,
            generation=GenerationSettings(ts.max_new_tokens, tuple(ts.stop)),
            extract=ts.extract,
        )
        self.baseline = self._baseline(chat)
        # Every candidate sees dev in one seeded order (paired scores; fidelity slices).
        ordered = random.Random(self.spec.seed).sample(self.task.dev, len(self.task.dev))
        self.dev, self.holdout = self._hold_out(ordered)
        # Render the baseline once up front: a broken template fails here, not in trial 0.
        try:
            self.renderer.request(self.baseline, self.task.dev[0])
        except CandidateRejected as e:
            raise OptpromptError(f"the baseline prompt cannot be rendered: {e}") from None
        check_context(self.renderer, self.baseline, self.task)  # task.truncate: error stops here
        self.kind_context = KindContext(
            task=self.task,
            model=model,
            renderer=self.renderer,
            evaluator=self.evaluator,
            dev=self.dev,
            pruning=self.spec.pruning,
            artifacts=self.output / "artifacts",
            output=self.output,
            chat=chat,
            study_name=self.spec.name,
            seed=self.spec.seed,
            objectives=tuple(self.spec.objectives),
        )

    def _label_with_teacher(self) -> None:
        """Distillation: the teacher's answers become the train labels (and label task.unlabeled)."""
        from optprompt.models.loading import load_model
        from optprompt.study.distill import label_with_teacher, load_teacher

        sc, ts, ref = self.spec.scoring, self.spec.task, self.spec.teacher or ""
        same = ref == self.spec.model
        if same and self.model is None:  # self-distillation: one copy of the model serves both
            self.model = load_model(
                ref, self.plugins, device=sc.device, dtype=sc.dtype, backend=sc.backend, progress=self.progress
            )
        teacher = load_teacher(
            ref,
            self.task,
            self._baseline(chat=False),
            self.plugins,
            device=sc.device,
            dtype=sc.dtype,
            chat=sc.chat,
            generation={"max_new_tokens": ts.max_new_tokens, "stop": list(ts.stop), "extract": ts.extract},
            model=self.model if same else None,
        )
        soft = self.spec.teacher_labels == "auto"
        self.task, self.teacher = label_with_teacher(self.task, teacher, ref, soft=soft)

    def _hold_out(self, ordered: list[Example]) -> tuple[list[Example], list[Example]]:
        """(what the search scores, what the winner is picked on): see ``selection``."""
        selection = self.spec.selection
        if not selection.used(self.spec.objectives):
            return ordered, []
        searched, held = holdout_split(ordered, selection.holdout)
        if len(held) < MIN_HOLDOUT or len(searched) < MIN_HOLDOUT:
            if "holdout" not in selection.model_fields_set:  # the default, on a small dev set
                self.selection_note = (
                    f"selection: {len(ordered)} dev examples are too few to hold {selection.holdout:.0%} out "
                    f"(each part needs at least {MIN_HOLDOUT}); the winner is the best on dev as the search saw it"
                )
                logger.warning("%s", self.selection_note)
                return ordered, []
            raise ConfigError(
                f"selection.holdout: {selection.holdout} of the {len(ordered)} dev examples leaves {len(searched)} "
                f"to search and {len(held)} to pick the winner on; each needs at least {MIN_HOLDOUT}. "
                "Give more dev examples, or set selection.holdout: 0 to pick the best on dev"
            )
        return searched, held

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

        if ref == self.spec.model and self.model is not None:
            return self.backend, self.model
        sc = self.spec.scoring
        loaded = load_model(ref, self.plugins, device=sc.device, dtype=sc.dtype, progress=self.progress)
        return self._backend_for(loaded), loaded

    def _embedder_for(self, ref: str | None, pooling: str) -> Embedder:
        """The embedder of per-input demonstrations: the task model's when ``ref`` is None
        (or names it), else ``ref`` loaded with the study's device and dtype."""
        from optprompt.models.loading import load_model
        from optprompt.scoring.embedding import ModelEmbedder

        if (ref is None or ref == self.spec.model) and self.model is not None:
            return ModelEmbedder(self.model, pooling=pooling)
        if ref not in self._embedding_models:
            sc = self.spec.scoring
            self._embedding_models[ref] = load_model(
                ref, self.plugins, device=sc.device, dtype=sc.dtype, progress=self.progress
            )
        return ModelEmbedder(self._embedding_models[ref], pooling=pooling)

    def prompt_tokens(self, candidate: Candidate) -> int:
        """Tokens the model reads around the input (its kind counts them)."""
        return self.kinds.of(candidate).prompt_tokens(candidate, self.kind_context)

    def _spec_key(self) -> dict[str, str]:
        return {
            "model": spec_key_part(self.spec.model),
            "task": self.task.fingerprint,
            "prompt": spec_key_part(
                [self.task.instruction, self.task.template, self.task.verbalizer]
                + ([self.task.output_format, self.task.descriptions] if self.task.type == "extraction" else [])
            ),
            "strategy": spec_key_part(
                [self.spec.strategy.name, {k: v for k, v in self.strategy_options.items() if k != "trials"}]
            ),
            "seed": str(self.spec.seed),
            "objectives": spec_key_part(self.spec.objectives),
            # Trials of a study that held out part of dev saw only the rest.
            **({"holdout": str(len(self.holdout))} if self.holdout else {}),
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
        import torch

        torch.manual_seed(self.spec.seed)
        url = storage_url(self.spec.storage, self.output)
        atomic_write_json(
            self.output / SPEC_FILE,
            {
                "spec": self.spec.model_dump(mode="json"),
                "storage": url,
                "study_name": self.spec.name,
                "optprompt_version": __version__,
            },
        )
        workers = self.spec.workers
        self.sampler = self.strategy.create_sampler()
        study = self._reconnecting(lambda: self._open_study(url), "opening the study")
        self.lock = BudgetLock(url, self.spec.name)
        budget = self.strategy.budget()
        # Reads need no retry here: the storage repeats them on a new connection itself.
        scored = self._known_scores(study)
        done = sum(counts(t) for t in study.get_trials(deepcopy=False))
        if done:
            logger.info("resuming study %r: %d of %d trials already finished", self.spec.name, done, budget.trials)
        # Repeats of an already scored candidate cost no model time and do not count; a
        # sampler that only repeats itself (a small, exhausted space) stops the study.
        max_total = budget.trials * PROPOSALS_PER_BUDGET
        with StudyProgress(total=budget.trials, done=done, enabled=self.progress, best=self._best_value(study)) as bar:
            self.kind_context.note = bar.note
            while True:
                self._reserved = None
                try:
                    # A lost connection mid-reservation may leave a trial asked for but not
                    # yet ours: fail it (it has no heartbeat to go stale by) and ask again.
                    trial, state = self._reconnecting(
                        lambda: self._reserve(study, budget.trials, max_total),
                        "reserving a trial",
                        on_retry=lambda e: self._abandon_reserved(study, e),
                    )
                    if state == "done":
                        break
                    if state == "wait":  # other workers hold the last trials; they may fail
                        time.sleep(min(2.0, workers.heartbeat_interval))
                        continue
                    before = sum(counts(t) for t in study.get_trials(deepcopy=False))
                    value = self._one_trial(study, trial, scored)
                except KeyboardInterrupt:
                    # Ctrl-C or SIGTERM can land anywhere, also between asking for the trial
                    # and _one_trial's own handler: never leave a trial running behind us.
                    if self._reserved is not None:
                        self._close_trial(study, self._reserved, f"{INTERRUPTED} by the user")
                    raise
                except Exception as e:
                    if self._reserved is not None:
                        self._close_trial(study, self._reserved, f"{type(e).__name__}: {e}"[:2000])
                    raise
                self.trials_run += 1
                trials = study.get_trials(deepcopy=False)
                if sum(counts(t) for t in trials) > before:
                    bar.advance(value, examples=trials[trial.number].user_attrs.get(attrs.DEV_SCORED, 0))
        end = StudyEnd(
            spec=self.spec,
            task=self.task,
            model=self.model,
            baseline=self.baseline,
            kinds=self.kinds,
            kind_context=self.kind_context,
            strategy_options=self.strategy_options,
            strategy_summary=self.strategy.summary(study),
            budget=budget.to_dict(),
            started=started,
            teacher=self.teacher,
            holdout=self.holdout,
            notes=[n for n in (self.selection_note, self._exhausted_note(study, budget.trials)) if n],
        )
        return finish_study(end, study)

    @staticmethod
    def _exhausted_note(study: optuna.Study, budget: int) -> str | None:
        trials = study.get_trials(deepcopy=False)
        return exhausted_note(trials, budget) if exhausted(trials, budget) else None

    def _open_study(self, url: str) -> optuna.Study:
        workers = self.spec.workers
        self.storage = make_storage(
            url, heartbeat_interval=workers.heartbeat_interval, grace_period=workers.grace_period
        )
        study = open_study(
            self.storage,
            self.spec.name,
            sampler=self.sampler,
            pruner=self.strategy.create_pruner(self.spec.pruning, len(self.dev)),
            directions=directions(self.spec.objectives),
        )
        self.study_id = self.storage.get_study_id_from_name(self.spec.name)
        check_spec_key(study, self._spec_key(), where=url)
        return study

    def _reconnecting(
        self, step: Callable[[], T], what: str, on_retry: Callable[[BaseException], None] | None = None
    ) -> T:
        """``step()``, repeated on a fresh connection while the storage's connection is lost."""
        where = storage_url(self.spec.storage, self.output)
        return with_reconnect(step, what=what, where=where, on_retry=on_retry)

    def _abandon_reserved(self, study: optuna.Study, error: BaseException) -> None:
        """Fail the trial a reservation cut short by a lost connection had created, if any."""
        reason = f"{CONNECTION_LOST}: storage connection dropped while reserving it ({type(error).__name__})"
        if self._reserved is not None:
            self._close_trial(study, self._reserved, reason)
        else:  # lost inside study.ask(), after the trial was created
            created = getattr(self.storage, "last_created_trial_id", None)
            if created is not None:  # every earlier trial of this process has ended: a no-op then
                self._close_trial(study, created, reason)
        self._reserved = None

    def _reserve(self, study: optuna.Study, budget: int, max_total: int) -> tuple[optuna.Trial | None, str]:
        """Atomically (across workers): is budget left? then ask for a trial."""
        import optuna

        with self.lock.hold():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            trials = study.get_trials(deepcopy=False)
            counted = sum(counts(t) for t in trials)
            running = sum(is_running(t) for t in trials)
            if counted >= budget or (counted and self.strategy.finished(study)):
                return None, "done"
            if counted + running >= budget:
                return None, "wait"
            # The position ignores running trials: after a crash, the dead worker's trial is
            # still "running" until its heartbeat expires, and the resumed run must propose
            # what an uninterrupted one would have. Workers add their own salt instead.
            position = proposals(trials)
            if position >= max_total:  # interrupted trials are re-done, so they do not count here either
                logger.warning("%s", exhausted_note(trials, budget))
                return None, "done"
            reseed_sampler(self.sampler, self.spec.seed + self.worker_salt, position)
            # Ctrl-C / SIGTERM wait until the trial is ours; the caller then fails it cleanly.
            with deferred_interrupts(), warnings.catch_warnings():
                # Optuna warns that heartbeats are meant for Study.optimize; with ask/tell
                # the Heartbeat context manager below records them.
                warnings.filterwarnings("ignore", message="Heartbeat of storage")
                trial = study.ask()
                self._reserved = trial
            # The storage beat for the new trial at once: a worker killed before its heartbeat
            # thread starts still leaves a trial that goes stale (one with no heartbeat never does).
            trial.set_user_attr(attrs.POSITION, position)
            return trial, "run"

    def _close_trial(
        self,
        study: optuna.Study,
        trial: optuna.Trial | int,
        reason: str,
        state: optuna.trial.TrialState | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Record ``trial`` (a trial or its storage id) as ``state`` (failed by default) with
        ``reason``, unless it already ended; a lost connection is retried, and a storage that
        stays gone is logged: the trial's heartbeat then stops and it goes stale."""
        from optuna.trial import TrialState

        trial_id = trial if isinstance(trial, int) else trial._trial_id

        def record() -> None:
            frozen = self.storage.get_trial(trial_id)
            if frozen.state != TrialState.RUNNING:
                return
            for key, value in {attrs.FAIL_REASON: reason, **(extra or {})}.items():
                self.storage.set_trial_user_attr(trial_id, key, value)
            study.tell(frozen.number, state=state or TrialState.FAIL)

        try:
            self._reconnecting(record, "recording a trial as ended")
        except Exception as e:
            logger.warning("could not record trial (id %d) as ended (%s): %s", trial_id, reason, e)

    def _known_scores(self, study: optuna.Study) -> dict[str, _Scored]:
        from optuna.trial import TrialState

        scored: dict[str, _Scored] = {}
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            h = t.user_attrs.get(attrs.HASH)
            if h and h not in scored and t.values is not None:
                scored[h] = _Scored(
                    list(t.values), t.user_attrs.get(attrs.METRICS, {}), t.number, t.user_attrs.get(attrs.OFFSETS)
                )
        return scored

    @staticmethod
    def _best_value(study: optuna.Study) -> float | None:
        from optuna.trial import TrialState

        values = [t.values[0] for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        return max(values) if values else None

    @staticmethod
    def _baseline_state(study: optuna.Study) -> str:
        """'done' (scored), 'taken' (another worker runs it) or 'free'."""
        from optuna.trial import TrialState

        roles = [(t.state, t.user_attrs.get(attrs.ROLE)) for t in study.get_trials(deepcopy=False)]
        if (TrialState.COMPLETE, "baseline") in roles:
            return "done"
        return "taken" if (TrialState.RUNNING, "baseline") in roles else "free"

    def _one_trial(self, study: optuna.Study, trial: optuna.Trial, scored: dict[str, _Scored]) -> float | None:
        from optuna.trial import TrialState

        from optprompt.errors import TrialPruned

        baseline_state = self._baseline_state(study)
        is_baseline = baseline_state == "free"
        try:
            with (
                Heartbeat(
                    self.storage,
                    self.storage.get_trial_id_from_study_id_trial_number(self.study_id, trial.number),
                    self.spec.workers.heartbeat_interval,
                ),
                trial_timeout(self.spec.trial_timeout),
            ):
                if is_baseline:
                    trial.set_user_attr(attrs.ROLE, "baseline")
                    candidate: Candidate = self.baseline
                else:
                    candidate = self.strategy.propose(trial)
                kind = self.kinds.of(candidate)
                trial.set_user_attr(attrs.CANDIDATE, candidate.to_dict())
                trial.set_user_attr(attrs.HASH, candidate.hash)
                evaluation: Evaluation | None = None
                known = scored.get(candidate.hash)
                if known is not None:
                    trial.set_user_attr(attrs.CACHED_FROM, known.trial)
                    trial.set_user_attr(attrs.DEV_SCORED, 0)
                    values, metrics, offsets = known.values, known.metrics, known.offsets
                else:
                    # The baseline is never pruned: pruners compare the others against it.
                    evaluation = kind.score(trial, candidate, self.kind_context, prunable=not is_baseline)
                    metrics, offsets = evaluation.metrics, evaluation.offsets
                    values = values_of(
                        self.spec.objectives,
                        evaluation.value,
                        self.prompt_tokens(candidate),
                        evaluation.seconds / max(1, len(self.dev)),
                    )
                    trial.set_user_attr(attrs.DEV_SCORED, evaluation.extra.get("dev_scored", len(self.dev)))
                    if evaluation.extra.get("artifact"):
                        trial.set_user_attr(attrs.ARTIFACT, evaluation.extra["artifact"])
                    scored[candidate.hash] = _Scored(values, metrics, trial.number, offsets)
                trial.set_user_attr(attrs.METRICS, metrics)
                if evaluation is not None and evaluation.format_failures:
                    trial.set_user_attr(attrs.FORMAT_FAILURES, evaluation.format_failures)
                if offsets is not None:
                    trial.set_user_attr(attrs.OFFSETS, offsets)
            self._reconnecting(
                lambda: study.tell(trial, values if len(values) > 1 else values[0]), "recording a finished trial"
            )
            if evaluation is not None and not is_baseline:
                self.strategy.observe(trial, candidate, evaluation)
            return values[0]
        except TrialPruned as e:
            self._close_trial(
                study, trial, f"pruned: {e}", TrialState.PRUNED, {attrs.DEV_SCORED: getattr(e, "scored", 0)}
            )
            return None
        except CandidateRejected as e:
            self._close_trial(study, trial, f"{REJECTED}: {e}", TrialState.PRUNED)
            if is_baseline:
                raise OptpromptError(f"the baseline prompt was rejected: {e}") from None
            return None
        except Exception as e:  # Ctrl-C / SIGTERM: the run loop records the trial as interrupted
            reason = f"{type(e).__name__}: {e}"
            self._close_trial(study, trial, reason[:2000])
            if is_baseline:
                raise OptpromptError(f"scoring the baseline prompt failed: {reason}") from e
            logger.warning("trial %d failed: %s", trial.number, reason)
            return None


def run_study(spec: StudySpec, **kwargs: Any) -> dict[str, Any]:
    """Run or resume ``spec``; returns what ``result.json`` holds. See :class:`StudyRunner`."""
    return StudyRunner(spec, **kwargs).run()
