"""Checks every strategy plugin should pass, as functions and as a pytest base class.

Each check runs real studies on a tiny random model (see :mod:`optprompt.testing.fixtures`)
and raises :class:`ConformanceError` (an ``AssertionError``) saying what broke:

- :func:`check_registration`: the strategy is registered under its name, and its config
  is typed, forbids unknown keys and accepts the options given;
- :func:`check_proposes_valid_candidates`: every proposal is a candidate of a registered kind
  that renders for every dev example, or a :class:`CandidateRejected`, never another
  exception; its hash survives ``to_dict``/JSON/``from_dict``;
- :func:`check_respects_budget`: the study ends exactly at the declared budget, scores
  and generates no more than declared, and a smaller ``trials`` (``--trials``) is obeyed;
- :func:`check_survives_resume`: a study interrupted in ``propose`` (as by Ctrl-C) and run
  again keeps its finished trials, re-scores nothing, ends exactly at the budget and
  proposes what an uninterrupted run would have;
- :func:`check_reproducible_with_seed`: a run in a fresh process and one in this process,
  with one seed, propose the same candidates in the same order.

A plugin author subclasses :class:`StrategyConformanceTests` in a test module::

    from optprompt.testing import StrategyConformanceTests

    class TestMyStrategy(StrategyConformanceTests):
        strategy_name = "my_strategy"
        strategy_options = {"trials": 6}
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from optprompt.errors import CandidateRejected
from optprompt.results import StudyResult
from optprompt.strategies.base import BaseStrategy, StrategyConfig
from optprompt.testing._harness import (
    ConformanceError,
    SimulatedInterrupt,
    StudyRun,
    env_or_temp,
    observed_run,
    run_study,
    strategy_plugins,
    trial_token,
)
from optprompt.testing.fixtures import TinyStudyEnv, make_tiny_study_env, scratch_dir
from optprompt.trials import FailureKind, TrialRecord

if TYPE_CHECKING:
    import optuna

    from optprompt.kinds.base import Candidate

__all__ = [
    "ConformanceError",
    "StrategyConformanceTests",
    "check_proposes_valid_candidates",
    "check_registration",
    "check_reproducible_with_seed",
    "check_respects_budget",
    "check_survives_resume",
]

Strategy = type[BaseStrategy] | str


def _first_difference(a: list[str], b: list[str]) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"trial {i} differs (interrupted trials left out; 0 is the baseline): {x!r} vs {y!r}"
    return f"one run has {len(a)} trials, the other {len(b)}"


def check_registration(
    strategy: Strategy,
    options: Mapping[str, Any] | None = None,
    *,
    extra_plugins: Iterable[object] = (),
    env: TinyStudyEnv | None = None,
    seed: int = 0,
) -> None:
    """The strategy is registered under its ``name`` and has a usable typed config.

    Its ``config_class`` (as ``config_class_for`` builds it for the registered strategies)
    derives from :class:`StrategyConfig`, rejects unknown keys,
    accepts ``options`` and survives a JSON round trip; its docstring gives the line
    ``optprompt plugins`` shows. It runs no study: ``env`` and ``seed`` are accepted, so
    every check takes the same keyword arguments, and unused.
    """
    del env, seed
    from pydantic import ValidationError

    plugins, name = strategy_plugins(strategy, extra_plugins)
    entry = plugins.strategies.get(name)
    cls = entry.obj
    if not entry.description:
        raise ConformanceError(
            f"{name}: {cls.__qualname__} has no docstring; its first line is what `optprompt plugins` shows"
        )
    config_for = getattr(cls, "config_class_for", None)  # the keys where these strategies are registered
    config_cls = config_for([e.obj for e in plugins.strategies]) if callable(config_for) else cls.config_class
    if not (isinstance(config_cls, type) and issubclass(config_cls, StrategyConfig)):
        raise ConformanceError(f"{name}: config_class {config_cls!r} is not a StrategyConfig subclass")
    try:
        config = config_cls.model_validate(dict(options or {}))
    except ValidationError as e:
        raise ConformanceError(f"{name}: the options {dict(options or {})} are invalid: {e}") from e
    try:
        config_cls.model_validate({**(options or {}), "no_such_option_for_conformance": 1})
    except ValidationError:
        pass
    else:
        raise ConformanceError(
            f"{name}: {config_cls.__qualname__} accepts unknown keys; keep "
            "StrategyConfig's extra='forbid' so typos in study files are errors"
        )
    again = config_cls.model_validate(json.loads(config.model_dump_json()))
    if again != config:
        raise ConformanceError(
            f"{name}: {config_cls.__qualname__} does not survive a JSON round trip: {config!r} became {again!r}"
        )


def check_proposes_valid_candidates(
    strategy: Strategy,
    options: Mapping[str, Any] | None = None,
    *,
    extra_plugins: Iterable[object] = (),
    env: TinyStudyEnv | None = None,
    seed: int = 0,
) -> dict[str, int]:
    """Every proposal renders for every dev example or is a :class:`CandidateRejected`.

    Runs one study and checks each ``propose`` result: a candidate of a registered kind
    whose ``to_dict`` is JSON and whose hash and value survive its kind's ``from_dict``,
    and which its kind's ``check`` accepts for every dev example (or rejects with
    :class:`CandidateRejected`; a prompt is rendered); no other exception, no failed trial, at least one
    candidate scored, and a ``summary`` that is a dict. Returns counts of what was seen.
    """
    with env_or_temp(env) as env:
        observed = observed_run(env, strategy, options or {}, extra_plugins, seed)
    run, name = observed.run, observed.run.runner.spec.strategy.name
    problems: list[str] = []
    candidates = rejected = 0
    raised = set()
    for number, out in observed.proposals:
        if isinstance(out, CandidateRejected):
            rejected += 1
        elif isinstance(out, BaseException):
            raised.add(number)
            problems.append(
                f"trial {number}: propose raised {type(out).__name__}: {out} "
                "(raise CandidateRejected for a candidate that cannot be scored)"
            )
        elif getattr(type(out), "kind", None) not in run.runner.kinds.names():
            problems.append(
                f"trial {number}: propose returned {type(out).__name__}, not a candidate of a registered kind "
                f"({', '.join(run.runner.kinds.names())})"
            )
        else:
            candidates += 1
            problems.extend(f"trial {number}: {p}" for p in _candidate_problems(run, out))
    for t in run.trials:
        failure = TrialRecord.from_frozen(t).failure
        if t.state.name == "FAIL" and failure is not None and not failure.kind.void and t.number not in raised:
            problems.append(f"trial {t.number} failed: {failure.text}")
    if not observed.proposals:
        problems.append("propose was never called")
    elif not candidates:
        problems.append(f"all {len(observed.proposals)} proposals were rejected or failed; none was scored")
    summary = StudyResult.from_dict(run.result).strategy_summary if run.result else None
    if not isinstance(summary, dict):
        problems.append(f"summary() returned {type(summary).__name__}, not a dict")
    if problems:
        raise ConformanceError(f"{name}: invalid proposals:\n  " + "\n  ".join(problems))
    return {"proposed": len(observed.proposals), "candidates": candidates, "rejected": rejected}


def _candidate_problems(run: StudyRun, candidate: Candidate) -> list[str]:
    problems = []
    try:
        data = json.loads(json.dumps(candidate.to_dict()))
    except (TypeError, ValueError) as e:
        return [f"to_dict() is not JSON-ready: {e}"]
    kinds = run.runner.kinds
    try:
        back = kinds.from_dict(data)
    except Exception as e:
        return [f"from_dict(to_dict()) raised {type(e).__name__}: {e}"]
    if back != candidate or back.hash != candidate.hash:
        problems.append(f"the candidate changes through to_dict/from_dict: {candidate!r} became {back!r}")
    try:
        kinds.of(candidate).check(candidate, run.runner.kind_context, run.runner.task.dev)
    except CandidateRejected:
        pass  # the study records it as rejected: allowed
    except Exception as e:
        problems.append(f"checking it on dev raised {type(e).__name__}: {e} (candidate {candidate.to_dict()})")
    return problems


def check_respects_budget(
    strategy: Strategy,
    options: Mapping[str, Any] | None = None,
    *,
    extra_plugins: Iterable[object] = (),
    env: TinyStudyEnv | None = None,
    seed: int = 0,
    smaller_trials: int | None = 2,
) -> None:
    """The study spends exactly the declared budget, and no more than declared.

    ``budget().trials`` counted trials (optprompt.trials), at most
    ``budget().dev_scorings`` dev scorings and ``budget().rewriter_calls`` generated
    prompts (counted at the model backend, score cache off), the budget written to
    result.json; then, with ``trials: smaller_trials`` (what ``optprompt run --trials``
    sets), exactly that many.
    """
    with env_or_temp(env) as env:
        observed = observed_run(env, strategy, options or {}, extra_plugins, seed)
        run = observed.run
        name = run.runner.spec.strategy.name
        budget = run.runner.strategy.budget()
        problems = _budget_problems(run, budget.trials)
        scored = sum(1 for t in run.trials if TrialRecord.from_frozen(t).dev_scored > 0)
        if scored > budget.dev_scorings:
            problems.append(
                f"{scored} candidates were scored on dev; the budget declares {budget.dev_scorings} dev scorings"
            )
        if observed.generated > budget.rewriter_calls:
            problems.append(
                f"it generated {observed.generated} texts with a model; the budget declares "
                f"{budget.rewriter_calls} rewriter calls (override budget())"
            )
        recorded = StudyResult.from_dict(run.result).strategy if run.result else None
        declared = dict(recorded.budget) if recorded is not None else None
        if declared != budget.to_dict():
            problems.append(f"result.json declares budget {declared}, budget() says {budget.to_dict()}")
        if smaller_trials is not None and smaller_trials < budget.trials and not problems:
            plugins, name = strategy_plugins(strategy, extra_plugins)
            small = run_study(
                env, plugins, name, {**(options or {}), "trials": smaller_trials}, what="smaller budget", seed=seed
            )
            got = small.runner.strategy.budget().trials
            if got != smaller_trials:
                problems.append(f"with trials: {smaller_trials} (optprompt run --trials) budget().trials is {got}")
            problems.extend(f"with trials: {smaller_trials}: {p}" for p in _budget_problems(small, smaller_trials))
    if problems:
        raise ConformanceError(f"{name}: budget not respected:\n  " + "\n  ".join(problems))


def _budget_problems(run: StudyRun, trials: int) -> list[str]:
    if run.counted == trials:
        return []
    if run.counted < trials and run.result is not None:  # a small search space may end a study early
        warnings = StudyResult.from_dict(run.result).warnings
        if any(w.startswith("search space exhausted") for w in warnings):
            return []
        return [f"the study ended early ({run.counted} of {trials} trials counted) without saying why"]
    repeats = sum(1 for t in run.trials if TrialRecord.from_frozen(t).is_repeat)
    return [
        f"the study ended with {run.counted} trials counted against a budget of {trials} "
        f"({len(run.trials)} trials in all, {repeats} repeats of scored candidates)"
    ]


def check_survives_resume(
    strategy: Strategy,
    options: Mapping[str, Any] | None = None,
    *,
    extra_plugins: Iterable[object] = (),
    env: TinyStudyEnv | None = None,
    seed: int = 0,
    interrupt_at: int | None = None,
    deterministic: bool = True,
) -> None:
    """A study interrupted inside ``propose`` and run again ends as an uninterrupted one.

    The interrupted run raises ``KeyboardInterrupt`` in the ``interrupt_at``-th call of
    ``propose`` (default: half the budget), as Ctrl-C would. Running the study again must
    keep every finished trial unchanged, score no candidate twice, and end with exactly
    the budget counted; with ``deterministic``, it must also propose the same candidates,
    in the same order, as an uninterrupted run with the same seed. The interrupted and
    the resumed run share one score cache, as a user's runs do.
    """
    calls = [0]

    def interrupting(strat: BaseStrategy, trial: optuna.Trial, call: Any) -> Any:
        calls[0] += 1
        if calls[0] == stop_at:
            raise SimulatedInterrupt()
        return call()

    with env_or_temp(env) as env:
        reference = observed_run(env, strategy, options or {}, extra_plugins, seed).run
        plugins, name = strategy_plugins(strategy, extra_plugins)
        cache = env.new_dir("resume-cache") / "scores.sqlite"
        budget = reference.runner.strategy.budget().trials
        stop_at = interrupt_at or max(1, budget // 2)
        if not 1 <= stop_at < budget:
            raise ConformanceError(
                f"{name}: cannot interrupt at proposal {stop_at} of a {budget}-trial budget; "
                "give a budget of at least 2 trials"
            )
        broken, _ = strategy_plugins(strategy, extra_plugins, hook=interrupting)
        first = run_study(env, broken, name, options or {}, what="interrupted", seed=seed, cache=cache)
        if first.result is not None:
            raise ConformanceError(
                f"{name}: the study finished after {calls[0]} proposals, before proposal {stop_at} could be interrupted"
            )
        resumed = run_study(
            env, plugins, name, options or {}, what="resumed", seed=seed, cache=cache, output=first.output
        )
    problems = []
    after = {t.number: t for t in resumed.trials}
    for t in first.trials:
        failure = TrialRecord.from_frozen(t).failure
        if not t.state.is_finished() or (failure is not None and failure.kind is FailureKind.INTERRUPTED):
            continue
        now = after.get(t.number)
        if now is None or (trial_token(now), now.value) != (trial_token(t), t.value):
            problems.append(f"finished trial {t.number} ({trial_token(t)}, value {t.value}) was not kept")
    scored: dict[str, int] = {}
    for t in resumed.trials:
        record = TrialRecord.from_frozen(t)
        h = record.hash
        if record.dev_scored > 0 and h is not None:
            if h in scored:
                problems.append(f"candidate {h} was scored twice: trials {scored[h]} and {t.number}")
            scored.setdefault(h, t.number)
    problems.extend(_budget_problems(resumed, budget))
    if deterministic and resumed.tokens() != reference.tokens():
        problems.append(
            "the resumed study proposed other candidates than an uninterrupted run with the "
            f"same seed: {_first_difference(resumed.tokens(), reference.tokens())} (rebuild "
            "state from trial.study and draw randomness through trial.suggest_* or seeds "
            "derived from the study's seed and the trial's place)"
        )
    if problems:
        raise ConformanceError(
            f"{name}: does not survive resume (interrupted at proposal {stop_at}):\n  " + "\n  ".join(problems)
        )


def check_reproducible_with_seed(
    strategy: Strategy,
    options: Mapping[str, Any] | None = None,
    *,
    extra_plugins: Iterable[object] = (),
    env: TinyStudyEnv | None = None,
    seed: int = 0,
) -> None:
    """A run in a fresh process proposes what a run in this process proposed, with one seed.

    The second run is a new Python process (as a second ``optprompt run`` invocation is),
    with its own string-hash seed and none of this process's module state, and the global
    ``random`` and numpy generators are reseeded from the OS before each of its
    ``propose`` calls (as other code in a user's process would leave them). It is compared
    with the plain run in this process that the other checks read (see
    :func:`check_proposes_valid_candidates`), which has this process's hash seed and module
    state, so a strategy drawing from module-level state (the global generators, string
    hashes, a module's caches) is caught. That needs the strategy and ``extra_plugins``
    importable in a new process (a registered name, or classes and modules defined at
    module level of an importable module); otherwise the second run is made in this
    process too, with a warning. The score cache is off, so nothing replays a first run's
    generations.
    """
    import warnings

    from optprompt.testing._fresh import reference_of, run_fresh, scrambling_hook

    extra = tuple(extra_plugins)
    ref = strategy if isinstance(strategy, str) else reference_of(strategy)
    extra_refs = [reference_of(p) for p in extra]
    plugins, name = strategy_plugins(strategy, extra, hook=scrambling_hook)
    with env_or_temp(env) as env:
        here = observed_run(env, strategy, options or {}, extra, seed).run.tokens()
        if ref is None or None in extra_refs:
            warnings.warn(
                f"{name}: the strategy or an extra plugin cannot be imported by reference (defined in __main__, "
                "inside a function, or a plugin instance), so both seeded runs are made in this process; "
                "module-level state shared between them goes unnoticed",
                stacklevel=2,
            )
            other = run_study(env, plugins, name, options or {}, what="seeded run", seed=seed).tokens()
            where = "a second run in this process"
        else:
            other = run_fresh(
                env.root, env.model_dir, env.data, env.prompt, ref, extra_refs,  # type: ignore[arg-type]
                options or {}, seed, env.new_dir("seeded-fresh-run"),
            )  # fmt: skip
            where = "a run in a fresh process"
    if other != here:
        raise ConformanceError(
            f"{name}: {where} and a run in this process, both with seed {seed}, differ: "
            f"{_first_difference(other, here)} "
            "(seed every random choice from the study's seed: trial.suggest_*, or "
            "random.Random(...) seeded from self.context.seed; never the global `random` or numpy generator)"
        )


class StrategyConformanceTests:
    """The conformance checks as pytest tests: subclass it in a test module.

    Set :attr:`strategy_name` (and usually :attr:`strategy_options`, small enough that a
    study takes seconds on the tiny model); name the subclass ``Test...`` so pytest
    collects it. Every test runs real studies on a tiny random model built once per
    class in a temporary directory. pytest is needed only to run the tests, not to
    import this module.

    Attributes:
        strategy_name: The registered name (entry point or ``extra_plugins``).
        strategy_options: The strategy's options in the study file (``trials`` included).
        extra_plugins: Plugin objects or modules to register in code besides the entry
            points (for a strategy not installed yet).
        deterministic: False for a strategy that cannot replay its proposals from the
            seed; the replay part of the resume check and the seed check are then skipped.
        seed: The study seed.
    """

    strategy_name: ClassVar[str] = ""
    strategy_options: ClassVar[Mapping[str, Any]] = {}
    extra_plugins: ClassVar[tuple[object, ...]] = ()
    deterministic: ClassVar[bool] = True
    seed: ClassVar[int] = 0

    _tmp: ClassVar[tempfile.TemporaryDirectory[str] | None] = None
    _env: ClassVar[TinyStudyEnv | None] = None

    @classmethod
    def setup_class(cls) -> None:
        if not cls.strategy_name:
            raise TypeError(f"{cls.__qualname__}: set strategy_name to the strategy under test")
        cls._tmp = scratch_dir("optprompt-conformance-")
        cls._env = None

    @classmethod
    def teardown_class(cls) -> None:
        if cls._tmp is not None:
            cls._tmp.cleanup()
            cls._tmp = None
        cls._env = None

    @property
    def conformance_env(self) -> TinyStudyEnv:
        """The tiny model and data shared by this class's tests (built on first use)."""
        cls = type(self)
        if cls._env is None:
            if cls._tmp is None:  # run outside pytest's class set-up
                cls.setup_class()
            cls._env = make_tiny_study_env(cls._tmp.name)  # type: ignore[union-attr]
        return cls._env

    def _kwargs(self) -> dict[str, Any]:
        return {"extra_plugins": tuple(self.extra_plugins), "env": self.conformance_env, "seed": self.seed}

    def test_registration(self) -> None:
        check_registration(self.strategy_name, self.strategy_options, extra_plugins=tuple(self.extra_plugins))

    def test_proposes_valid_candidates(self) -> None:
        check_proposes_valid_candidates(self.strategy_name, self.strategy_options, **self._kwargs())

    def test_respects_budget(self) -> None:
        check_respects_budget(self.strategy_name, self.strategy_options, **self._kwargs())

    def test_survives_resume(self) -> None:
        check_survives_resume(
            self.strategy_name, self.strategy_options, deterministic=self.deterministic, **self._kwargs()
        )

    def test_reproducible_with_seed(self) -> None:
        if not self.deterministic:
            import pytest

            pytest.skip(f"{self.strategy_name} is declared non-deterministic (deterministic = False)")
        check_reproducible_with_seed(self.strategy_name, self.strategy_options, **self._kwargs())
