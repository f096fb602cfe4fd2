"""The study loop: ask Optuna for a trial, get a candidate, score it on dev, tell.

Trial 0 is always the baseline prompt, so every study can say how much better its
winner is than the starting point. Results go to ``OUTPUT/result.json`` when the budget
is spent; the storage keeps every trial, so running the same study again resumes it.

The loop ties four parts together, each in its own module: the session (:mod:`.session`:
task, model, renderer, evaluator, kinds' context), the ledger (:mod:`.ledger`: the
storage, reserving and closing trials), the executor (:mod:`.executor`: one trial) and
the end of the study (:mod:`.finish`: selection, test scores, result files).
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt._io import atomic_write_json
from optprompt._version import __version__
from optprompt.kinds.registry import candidate_kinds
from optprompt.plugins.manager import Plugins, load_plugins
from optprompt.study.end import PREDICTIONS_FILE, RESULT_FILE, StudyEnd, finish_study
from optprompt.study.executor import TrialExecutor
from optprompt.study.ledger import Reservation, TrialLedger
from optprompt.study.models import ModelPool
from optprompt.study.progress import EndProgress, StudyProgress
from optprompt.study.resilience import settle_orphaned_trials
from optprompt.study.session import StudySession, build_session, spec_key
from optprompt.study.storage import storage_url
from optprompt.tasks.build import build_task
from optprompt.trials import FailureKind

if TYPE_CHECKING:
    import optuna

    from optprompt.config.spec import StudySpec
    from optprompt.models.loading import LoadedModel
    from optprompt.results import StudyResult
    from optprompt.strategies import Budget
    from optprompt.tasks.task import Task

__all__ = ["StudyRunner", "run_study", "read_spec", "RESULT_FILE", "SPEC_FILE", "PREDICTIONS_FILE"]

logger = logging.getLogger("optprompt")

SPEC_FILE = "study.json"


class _FromSession:
    """A part of the runner's session (its strategy, renderer, dev split...): None before set-up."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, runner: StudyRunner | None, owner: type | None = None) -> Any:
        if runner is None:
            return self
        return getattr(runner.session, self.name) if runner.session is not None else None


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
        self.worker = worker
        self.output = Path(spec.output)
        self.pool = ModelPool(spec, self.plugins, model=model, progress=progress)
        self.task: Task = build_task(
            spec.task, plugins=self.plugins, seed=spec.seed, base_dir=spec.base_dir, name=spec.name
        )
        self.plugins.strategies.get(spec.strategy.name)  # an unknown strategy fails here
        self.plugins.metrics.get(self.task.metric)
        self.kinds = candidate_kinds(self.plugins)
        self.session: StudySession | None = None
        self.ledger: TrialLedger | None = None
        self.trials_run = 0  # trials this process ran (a worker's share)

    # --- what the session built (None before set-up) -----------------------------------
    @property
    def model(self) -> LoadedModel | None:
        return self.pool.model

    strategy = _FromSession()
    renderer = _FromSession()
    evaluator = _FromSession()
    backend = _FromSession()
    chat = _FromSession()
    baseline = _FromSession()
    dev = _FromSession()
    holdout = _FromSession()
    kind_context = _FromSession()
    teacher = _FromSession()

    @property
    def sampler(self):  # type: ignore[no-untyped-def]
        return self.ledger.sampler if self.ledger is not None else None

    # --- set-up -------------------------------------------------------------------------
    def setup(self) -> StudySession:
        """Build the session (distillation first, when the study has a teacher)."""
        if self.session is None:
            task, teacher = self.task, None
            if self.spec.teacher:
                from optprompt.study.teacher_labels import distill_task

                task, teacher = distill_task(self.spec, task, self.plugins, self.pool)
                self.task = task
            self.session = build_session(self.spec, task, self.plugins, self.pool, output=self.output, teacher=teacher)
        return self.session

    # --- the loop -----------------------------------------------------------------------
    def run(self) -> StudyResult:
        """Run trials until the budget is spent, then score on test and write results."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        started = time.perf_counter()
        random.seed(self.spec.seed)
        self.output.mkdir(parents=True, exist_ok=True)
        session = self.setup()
        import torch

        torch.manual_seed(self.spec.seed)
        url = storage_url(self.spec.storage, self.output)
        atomic_write_json(
            self.output / SPEC_FILE,
            {
                "spec": self.spec.model_dump(mode="json"),
                # What the study file set, without defaults: read back, a default stays a default
                # (a small dev set then skips the default hold-out again instead of refusing it).
                "spec_as_given": self.spec.model_dump(mode="json", exclude_unset=True),
                "storage": url,
                "study_name": self.spec.name,
                "optprompt_version": __version__,
            },
        )
        ledger = self.ledger = TrialLedger(self.spec, url, session.strategy, worker=self.worker)
        study = ledger.open(len(session.dev), spec_key(self.spec, session.task, len(session.holdout)))
        if not ledger.worker_salt:  # a single run replays exactly: no trial of a killed run left running
            workers = self.spec.workers
            wait = workers.grace_period + workers.heartbeat_interval
            settle_orphaned_trials(study, exclusive=not self.spec.storage, wait=wait)
        budget = session.strategy.budget()
        self._run_trials(study, session, ledger, budget)
        end = StudyEnd(
            spec=self.spec,
            task=session.task,
            model=session.model,
            baseline=session.baseline,
            kinds=self.kinds,
            kind_context=session.kind_context,
            strategy_options=self.spec.strategy.options(),
            strategy_summary=session.strategy.summary(study),
            budget=budget.to_dict(),
            started=started,
            teacher=session.teacher,
            holdout=session.holdout,
            notes=[*session.notes, *([ledger.stop_reason] if ledger.stop_reason else [])],
            progress=EndProgress(enabled=self.progress),
        )
        return finish_study(end, study)

    def _run_trials(self, study: optuna.Study, session: StudySession, ledger: TrialLedger, budget: Budget) -> None:
        """Reserve, run and record trials until the budget is spent (or the strategy is done)."""
        executor = TrialExecutor(self.spec, session, ledger, self.kinds)
        # Reads need no retry here: the storage repeats them on a new connection itself.
        scored = ledger.known_scores(study)
        done = ledger.counted(study)
        if done:
            logger.info("resuming study %r: %d of %d trials already finished", self.spec.name, done, budget.trials)
        # Repeats of an already scored candidate cost no model time and do not count; a
        # sampler that only repeats itself (a small, exhausted space) stops the study.
        max_total = budget.trials * 3
        minutes = session.strategy.config.minutes
        total = budget.trials if minutes is None else None
        best = ledger.best_value(study)
        with StudyProgress(total=total, done=done, enabled=self.progress, best=best, minutes=minutes) as bar:
            session.kind_context.note = bar.note
            while True:
                try:
                    trial, state = ledger.reserve(study, budget.trials, max_total)
                    if state is Reservation.DONE:
                        break
                    if state is Reservation.WAIT:
                        ledger.wait()
                        continue
                    before = ledger.counted(study)
                    value = executor.run(study, trial, scored)
                except KeyboardInterrupt:
                    # Ctrl-C or SIGTERM can land anywhere, also between asking for the trial
                    # and the executor's own handler: never leave a trial running behind us.
                    ledger.close_reserved(study, f"{FailureKind.INTERRUPTED.value} by the user")
                    raise
                except Exception as e:
                    ledger.close_reserved(study, f"{type(e).__name__}: {e}"[:2000])
                    raise
                self.trials_run += 1
                if ledger.counted(study) > before:
                    bar.advance(value, examples=ledger.record(study, trial.number).dev_scored)


def read_spec(output: str | Path) -> StudySpec:
    """The spec of the study in ``output`` as its file gave it (``optprompt resume``, exports)."""
    from optprompt._io import read_json
    from optprompt.config.loading import spec_from_dict

    path = Path(output) / SPEC_FILE
    meta = read_json(path, what=f"study directory file {SPEC_FILE}")
    return spec_from_dict(meta.get("spec_as_given") or meta["spec"], source=str(path))


def run_study(spec: StudySpec, **kwargs: Any) -> StudyResult:
    """Run or resume ``spec``; returns its typed result (what ``result.json`` holds). See :class:`StudyRunner`."""
    return StudyRunner(spec, **kwargs).run()
