"""Plugin discovery and the registries that hooks fill.

Discovery follows pluggy's usual order: entry points of the group ``optprompt`` (the
built-in strategies under ``plugins/`` are registered that way too), then the core's
built-in modules, then ``check_pending()``. There is no module-level registry: each call
of :func:`get_plugin_manager` / :func:`load_plugins` builds fresh ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from optprompt.errors import PluginError
from optprompt.plugins import hookspecs

__all__ = [
    "Entry",
    "Registry",
    "Plugins",
    "PluginManager",
    "PluginProblem",
    "get_plugin_manager",
    "load_plugins",
    "load_task_types",
    "ENTRY_POINT_GROUP",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "optprompt"

#: The distribution whose entry points whose modules start with ``optprompt.`` are the core's
#: own components (candidate kinds, task types, models, backends, metrics, loaders); its
#: ``optprompt_plugins.*`` entry points are the built-in strategies.
CORE_DISTRIBUTION = "optprompt"


def _is_core(ep: Any, names: dict[int, str]) -> bool:
    """Whether ``ep`` is one of the core's; ``names`` keeps each distribution's name once
    read (reading it parses the distribution's metadata)."""
    dist = getattr(ep, "dist", None)
    if dist is None or not ep.value.startswith("optprompt."):
        return False
    if id(dist) not in names:
        names[id(dist)] = dist.name
    return names[id(dist)] == CORE_DISTRIBUTION


def core_entry_points() -> list[Any]:
    """The core's components as its distribution declares them in the ``optprompt`` group."""
    from importlib.metadata import entry_points

    names: dict[int, str] = {}
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if _is_core(ep, names)]
    if not found:
        raise PluginError(
            f"optprompt's own components are not registered: no entry point of group {ENTRY_POINT_GROUP!r} in the "
            f"{CORE_DISTRIBUTION!r} distribution. Install optprompt (pip install -e .) rather than running it from a "
            "source folder"
        )
    return found


@dataclass(frozen=True)
class Entry:
    """One registered thing and where it came from."""

    name: str
    obj: Any
    plugin: str
    source: str
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Registry:
    """Name -> :class:`Entry` for one kind of thing (strategies, metrics...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, entry: Entry) -> None:
        if entry.name in self._entries:
            other = self._entries[entry.name]
            raise PluginError(
                f"{self.kind} {entry.name!r} is registered twice: by plugin {other.plugin!r} "
                f"({other.source}) and by plugin {entry.plugin!r} ({entry.source})"
            )
        self._entries[entry.name] = entry

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            from optprompt._suggest import did_you_mean

            known = ", ".join(sorted(self._entries)) or "none"
            hint = did_you_mean(name, self._entries) if isinstance(name, str) else ""
            raise PluginError(f"unknown {self.kind} {name!r}{hint}; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._entries[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._entries)


@dataclass
class Plugins:
    """Everything the loaded plugins registered."""

    manager: pluggy.PluginManager
    strategies: Registry
    metrics: Registry
    task_loaders: Registry
    models: Registry
    backends: Registry
    kinds: Registry
    task_types: Registry
    views: dict[str, Any] = field(default_factory=dict, repr=False)

    def view(self, key: str, make: Callable[[], Any]) -> Any:
        """What the layer owning an extension point builds once from its registry (e.g. the
        candidate kinds' instances): ``make()`` on first use, the same object after."""
        if key not in self.views:
            self.views[key] = make()
        return self.views[key]

    @property
    def problems(self) -> list[PluginProblem]:
        """Entry points that registered nothing, with the reason (see :class:`PluginProblem`)."""
        return list(getattr(self.manager, "problems", []))


@dataclass(frozen=True)
class PluginProblem:
    """An entry point that registers nothing: it failed to import, or its hooks are unusable.

    ``optprompt plugins`` lists these; other commands log them as warnings and carry on
    with the plugins that loaded.
    """

    entry_point: str  # "optprompt:NAME = module"
    distribution: str  # "name version"
    reason: str

    def __str__(self) -> str:
        return f"entry point {self.entry_point} in {self.distribution}: {self.reason}"


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, plus what went wrong while loading entry points.

    Attributes:
        problems: Entry points that registered nothing, with the reason.
        distributions: Plugin name -> "distribution version" of each entry-point plugin.
    """

    def __init__(self) -> None:
        super().__init__("optprompt")
        self.problems: list[PluginProblem] = []
        self.distributions: dict[str, str] = {}


_SPEC_NAMES = frozenset(n for n in dir(hookspecs) if n.startswith("register_"))


def _hook_problem(pm: PluginManager, plugin: object) -> str | None:
    """Why ``plugin`` (just registered) is unusable, or None."""
    marked = {
        name for name in dir(plugin) if not name.startswith("_") and pm.parse_hookimpl_opts(plugin, name) is not None
    }
    unknown = sorted(marked - _SPEC_NAMES)
    if unknown:
        from optprompt._suggest import did_you_mean

        return "; ".join(f"unknown hook {n!r}{did_you_mean(n, sorted(_SPEC_NAMES))}" for n in unknown)
    if not marked:
        unmarked = sorted(n for n in _SPEC_NAMES if callable(getattr(plugin, n, None)))
        if unmarked:
            return (
                f"defines {', '.join(unmarked)} without @hookimpl, so it registers nothing "
                "(decorate it: `from optprompt.plugins import hookimpl`)"
            )
        return f"implements no optprompt hook (expected one of {', '.join(sorted(_SPEC_NAMES))})"
    return None


def _load_entry_points(pm: PluginManager, group: str) -> None:
    """Register every entry point of ``group``; record, rather than raise, the broken ones."""
    import importlib.metadata

    for dist in list(importlib.metadata.distributions()):
        where = None  # read once per distribution: each read parses its metadata
        for ep in dist.entry_points:
            if ep.group != group or pm.has_plugin(ep.name) or pm.is_blocked(ep.name):
                continue
            if where is None:
                meta = dist.metadata
                where = f"{meta['Name']} {meta['Version']}"
            what = f"{group}:{ep.name} = {ep.value}"
            try:
                plugin = ep.load()
            except Exception as e:
                pm.problems.append(PluginProblem(what, where, f"import failed: {type(e).__name__}: {e}"))
                continue
            try:
                pm.register(plugin, name=ep.name)
            except Exception as e:
                pm.problems.append(PluginProblem(what, where, f"registration failed: {type(e).__name__}: {e}"))
                continue
            problem = _hook_problem(pm, plugin)
            if problem is not None:
                pm.unregister(plugin)
                pm.problems.append(PluginProblem(what, where, problem))
                continue
            pm.distributions[ep.name] = where


def get_plugin_manager(*, entry_points: bool = True, extra_plugins: Iterable[object] = ()) -> PluginManager:
    """A fresh plugin manager with entry-point plugins, the core built-ins and ``extra_plugins``.

    An entry point that fails to import or implements no hook is recorded in the
    manager's ``problems`` (and logged), not raised: one broken plugin does not stop the
    others. A plugin registered in code (``extra_plugins``) with unusable hooks raises.
    """
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    if entry_points:
        _load_entry_points(pm, ENTRY_POINT_GROUP)
        core = [p for p in pm.problems if p.distribution.split(" ")[0] == CORE_DISTRIBUTION]
        if core:  # the core's own components must load: nothing works without them
            raise PluginError(f"optprompt's own component failed to load: {core[0]}")
        for problem in pm.problems:
            logger.warning("plugin skipped: %s", problem)
    else:  # without third-party plugins and the built-in strategies: the core's own components
        for ep in core_entry_points():
            if pm.get_plugin(ep.name) is None:
                pm.register(ep.load(), name=ep.name)
    for plugin in extra_plugins:
        pm.register(plugin)
        problem = _hook_problem(pm, plugin)
        if problem is not None and "without @hookimpl" in problem:  # unknown hooks: check_pending says which
            raise PluginError(f"plugin {pm.get_name(plugin)!r}: {problem}")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        raise PluginError(str(e)) from e
    return pm


def _plugin_source(pm: pluggy.PluginManager, plugin_name: str, core: Collection[str]) -> str:
    if plugin_name in core:
        return "optprompt core"
    where = getattr(pm, "distributions", {}).get(plugin_name)
    if where is not None:
        return f"entry point {ENTRY_POINT_GROUP}:{plugin_name} in {where}"
    return f"registered in code ({plugin_name})"


def _core_names() -> frozenset[str]:
    """The names of the core's entry points (read once per load: each read parses the
    metadata of every installed distribution)."""
    return frozenset(ep.name for ep in core_entry_points())


def _collect(
    pm: pluggy.PluginManager,
    hook_name: str,
    registry: Registry,
    make: Callable[..., Entry],
    core: Collection[str],
) -> None:
    hook = getattr(pm.hook, hook_name)
    for impl in hook.get_hookimpls():
        source = _plugin_source(pm, impl.plugin_name, core)

        def register(*args: Any, _plugin: str = impl.plugin_name, _source: str = source, **kwargs: Any) -> None:
            registry.add(make(*args, plugin=_plugin, source=_source, **kwargs))

        try:
            impl.function(register=register)
        except PluginError:
            raise
        except Exception as e:
            raise PluginError(f"plugin {impl.plugin_name!r} failed in {hook_name}: {e!r}") from e


def _class_entry(what: str, base: str, required: tuple[str, ...]) -> Callable[..., Entry]:
    """An entry maker for an extension point whose plugins register classes: a class with a
    ``name`` and the extension point's methods (``base`` names its base class in messages;
    the layer that owns it checks the subclass when it builds one)."""

    def make(cls: Any, *, plugin: str, source: str) -> Entry:
        missing = [m for m in required if not callable(getattr(cls, m, None))] if isinstance(cls, type) else []
        if not isinstance(cls, type) or missing:
            lacks = f" (it has no {', '.join(missing)})" if missing else ""
            raise PluginError(
                f"plugin {plugin!r} registered {cls!r} as a {what}, but it is not a {base} subclass{lacks}"
            )
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin!r}: {what} class {cls.__qualname__} has no `name`")
        doc = (cls.__doc__ or "").strip().splitlines()
        return Entry(name=name, obj=cls, plugin=plugin, source=source, description=doc[0] if doc else "")

    return make


_strategy_entry = _class_entry("strategy", "BaseStrategy", ("propose", "from_options", "budget", "create_sampler"))
_kind_entry = _class_entry("candidate kind", "CandidateKind", ("from_dict", "score", "scorer", "export", "load"))


_task_type_class = _class_entry("task type", "TaskType", ("example", "answer_choices", "fingerprint_part"))
#: The scoring paths the evaluator implements (``optprompt.tasks.types.ScoringPath`` values).
_SCORING_PATHS = ("rank", "generate", "extract")


def _task_type_entry(cls: Any, *, plugin: str, source: str) -> Entry:
    """The entry of a task type class: its one instance (task types hold no state)."""
    entry = _task_type_class(cls, plugin=plugin, source=source)
    if getattr(getattr(cls, "scoring", None), "value", None) not in _SCORING_PATHS:
        raise PluginError(f"plugin {plugin!r}: task type {entry.name!r} has no `scoring` (a ScoringPath)")
    try:
        instance = cls()
    except TypeError as e:  # abstract methods left unimplemented
        raise PluginError(f"plugin {plugin!r}: task type {entry.name!r} cannot be instantiated: {e}") from None
    return Entry(name=entry.name, obj=instance, plugin=plugin, source=source, description=entry.description)


def _named_entry(name: str, obj: Any, *, plugin: str, source: str, description: str = "", **extra: Any) -> Entry:
    if not callable(obj):
        raise PluginError(f"plugin {plugin!r} registered {name!r} with a non-callable {obj!r}")
    return Entry(name=name, obj=obj, plugin=plugin, source=source, description=description, extra=extra)


def load_plugins(pm: pluggy.PluginManager | None = None) -> Plugins:
    """Call every registration hook and return the filled registries."""
    pm = pm or get_plugin_manager()
    plugins = Plugins(
        manager=pm,
        strategies=Registry("strategy"),
        metrics=Registry("metric"),
        task_loaders=Registry("task loader"),
        models=Registry("model"),
        backends=Registry("backend"),
        kinds=Registry("candidate kind"),
        task_types=Registry("task type"),
    )
    core = _core_names()
    _collect(pm, "register_strategies", plugins.strategies, _strategy_entry, core)
    _collect(pm, "register_metrics", plugins.metrics, _named_entry, core)
    _collect(pm, "register_task_loaders", plugins.task_loaders, _named_entry, core)
    _collect(pm, "register_models", plugins.models, _named_entry, core)
    _collect(pm, "register_backends", plugins.backends, _named_entry, core)
    _collect(pm, "register_candidate_kinds", plugins.kinds, _kind_entry, core)
    _collect(pm, "register_task_types", plugins.task_types, _task_type_entry, core)
    return plugins


def load_task_types(pm: pluggy.PluginManager | None = None) -> Registry:
    """The task types alone (name -> :class:`~optprompt.tasks.TaskType` instance): what a
    study file's ``task.type`` may name, without calling the other registration hooks."""
    registry = Registry("task type")
    _collect(pm or get_plugin_manager(), "register_task_types", registry, _task_type_entry, _core_names())
    return registry
