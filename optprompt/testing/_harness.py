"""Plumbing of the conformance checks: plugins with an instrumented strategy, one study
run on the tiny model, and what its storage says."""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt.plugins.manager import Entry, Plugins, Registry, get_plugin_manager, load_plugins
from optprompt.strategies.base import BaseStrategy
from optprompt.testing.fixtures import TinyStudyEnv, make_tiny_study_env, scratch_dir
from optprompt.trials import TrialRecord, is_void, uses_budget

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from optprompt.study.runner import StudyRunner

__all__ = ["ConformanceError"]

# propose(strategy, trial, call_original) -> candidate
ProposeHook = Callable[[BaseStrategy, "optuna.Trial", Callable[[], Any]], Any]


class ConformanceError(AssertionError):
    """A strategy broke one of the contracts the conformance checks test."""


class SimulatedInterrupt(KeyboardInterrupt):
    """Raised inside ``propose`` to stop a study the way Ctrl-C does."""


def strategy_plugins(
    strategy: type[BaseStrategy] | str,
    extra_plugins: Iterable[object] = (),
    *,
    hook: ProposeHook | None = None,
    generated: list[int] | None = None,
) -> tuple[Plugins, str]:
    """Fresh plugins where ``strategy`` is registered (instrumented when asked).

    Args:
        strategy: A registered name, or a :class:`BaseStrategy` subclass (registered
            in code here when no plugin registers it).
        extra_plugins: Plugin objects or modules registered besides the entry points.
        hook: Wraps every ``propose`` call.
        generated: When given, every backend counts the prompts it generates into
            ``generated[0]`` (a strategy's rewriter calls, with the score cache off).
    """
    plugins = load_plugins(get_plugin_manager(extra_plugins=list(extra_plugins)))
    if isinstance(strategy, str):
        entry = plugins.strategies.get(strategy)
        cls = entry.obj
    else:
        cls = strategy
        if not (isinstance(cls, type) and issubclass(cls, BaseStrategy)):
            raise TypeError(f"expected a strategy name or a BaseStrategy subclass, got {strategy!r}")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise ConformanceError(f"strategy class {cls.__qualname__} has no `name`")
        doc = (cls.__doc__ or "").strip().splitlines()
        entry = Entry(
            name=name,
            obj=cls,
            plugin="optprompt.testing",
            source="registered in code (optprompt.testing)",
            description=doc[0] if doc else "",
        )
    if hook is not None:
        entry = dataclasses.replace(entry, obj=_instrumented(cls, hook))
    strategies = _replaced(plugins.strategies, [entry])
    backends = plugins.backends
    if generated is not None:
        backends = _replaced(
            backends,
            [
                dataclasses.replace(e, obj=_counting(e.obj, generated))
                for e in plugins.backends
                if isinstance(e.obj, type)
            ],
        )
    return dataclasses.replace(plugins, strategies=strategies, backends=backends), entry.name


def _replaced(registry: Registry, entries: list[Entry]) -> Registry:
    by_name = {e.name: e for e in entries}
    out = Registry(registry.kind)
    for e in registry:
        out.add(by_name.pop(e.name, e))
    for e in by_name.values():
        out.add(e)
    return out


def _instrumented(cls: type[BaseStrategy], hook: ProposeHook) -> type[BaseStrategy]:
    def propose(self: BaseStrategy, trial: optuna.Trial) -> Any:
        return hook(self, trial, lambda: cls.propose(self, trial))

    return type(
        cls.__name__,
        (cls,),
        {"propose": propose, "__doc__": cls.__doc__, "__module__": cls.__module__, "__qualname__": cls.__qualname__},
    )


def _counting(backend_cls: type, generated: list[int]) -> type:
    def generate(self: Any, prompts: Any, settings: Any) -> Any:
        generated[0] += len(prompts)
        return backend_cls.generate(self, prompts, settings)

    return type(backend_cls.__name__, (backend_cls,), {"generate": generate, "__module__": backend_cls.__module__})


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Torch on one thread while a study runs (restored afterwards): the tiny model's
    matrices are too small to gain from more, and on a busy machine extra threads only
    wait for cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def env_or_temp(env: TinyStudyEnv | None) -> Iterator[TinyStudyEnv]:
    """``env``, or a tiny environment in a temporary directory removed afterwards."""
    if env is not None:
        yield env
        return
    with scratch_dir("optprompt-conformance-") as tmp:
        yield make_tiny_study_env(tmp)


@dataclass
class StudyRun:
    """One study run: its result (None when interrupted), runner and stored trials."""

    result: dict[str, Any] | None
    runner: StudyRunner
    trials: list[FrozenTrial]
    output: Path

    @property
    def counted(self) -> int:
        """Trials that used up budget."""
        return sum(uses_budget(t) for t in self.trials)

    def tokens(self) -> list[str]:
        """What each trial that was not voided proposed, in order: state and candidate
        hash, or state and reason when no candidate was recorded."""
        return [trial_token(t) for t in self.trials if t.state.is_finished() and not is_void(t)]


def trial_token(t: FrozenTrial) -> str:
    record = TrialRecord.from_frozen(t)
    what = record.hash or record.fail_reason or ""
    return f"{t.state.name.lower()} {what}"


def run_study(
    env: TinyStudyEnv,
    plugins: Plugins,
    name: str,
    options: Mapping[str, Any],
    *,
    what: str,
    seed: int = 0,
    cache: Path | None = None,
    output: Path | None = None,
) -> StudyRun:
    """Run (or resume, given an existing ``output``) a study on the tiny model.

    A :class:`SimulatedInterrupt` stops it with ``result`` None; any other error is
    re-raised as a :class:`ConformanceError` that says which run failed.
    """
    import optuna

    from optprompt.config import spec_from_dict
    from optprompt.study.runner import StudyRunner
    from optprompt.study.storage import storage_url

    output = output or env.new_dir(what.replace(" ", "-"))
    spec = spec_from_dict(env.study_dict(name, dict(options), output=output, seed=seed, cache=cache))
    runner = StudyRunner(spec, plugins=plugins, model=env.model, progress=False)
    result: dict[str, Any] | None = None
    try:
        with _one_torch_thread(), warnings.catch_warnings():
            # optprompt's own use of Optuna's experimental APIs is not the plugin's business
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            result = runner.run()
    except SimulatedInterrupt:
        pass
    except Exception as e:
        raise ConformanceError(f"{name}: the {what} study failed: {type(e).__name__}: {e}") from e
    study = optuna.load_study(study_name=spec.name, storage=storage_url(spec.storage, output))
    return StudyRun(result, runner, study.get_trials(deepcopy=False), output)


@dataclass
class ObservedRun:
    """A study run with every ``propose`` outcome and the texts generated with a model.

    ``proposals`` holds ``(trial number, candidate or exception)`` per ``propose`` call;
    ``generated`` counts the prompts the model backends generated for (score cache off).
    """

    run: StudyRun
    proposals: list[tuple[int, object]]
    generated: int


def observed_run(
    env: TinyStudyEnv,
    strategy: type[BaseStrategy] | str,
    options: Mapping[str, Any],
    extra_plugins: Iterable[object],
    seed: int,
) -> ObservedRun:
    """One plain study of ``strategy`` (score cache off), observed.

    Several checks read the same run, so it is kept in ``env.memo`` (with its error, if
    it failed) for the same strategy, options, plugins and seed.
    """
    import json

    extra = tuple(extra_plugins)
    key = ("observed", strategy, json.dumps(dict(options), sort_keys=True, default=repr), tuple(map(id, extra)), seed)
    if key not in env.memo:
        proposals: list[tuple[int, object]] = []
        generated = [0]

        def hook(strat: BaseStrategy, trial: optuna.Trial, call: Callable[[], Any]) -> Any:
            try:
                out = call()
            except BaseException as e:
                proposals.append((trial.number, e))
                raise
            proposals.append((trial.number, out))
            return out

        try:
            plugins, name = strategy_plugins(strategy, extra, hook=hook, generated=generated)
            run = run_study(env, plugins, name, options, what="observed", seed=seed)
            env.memo[key] = ObservedRun(run, proposals, generated[0])
        except ConformanceError as e:
            env.memo[key] = e
    found = env.memo[key]
    if isinstance(found, ConformanceError):
        raise found
    return found
