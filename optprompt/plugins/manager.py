"""Plugin discovery and the registries that hooks fill.

Discovery follows pluggy's usual order: entry points of the group ``optprompt`` (the
built-in strategies under ``plugins/`` are registered that way too), then the core's
built-in modules, then ``check_pending()``. There is no module-level registry: each call
of :func:`get_plugin_manager` / :func:`load_plugins` builds fresh ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from optprompt.errors import PluginError
from optprompt.plugins import hookspecs

__all__ = ["Entry", "Registry", "Plugins", "get_plugin_manager", "load_plugins", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "optprompt"

# Core modules that implement hooks (models, metrics, task loaders, the two built-in
# candidate kinds). Strategies live under plugins/ and arrive through the entry-point
# group instead.
_CORE_PLUGINS = (
    "optprompt.kinds.prompt",
    "optprompt.kinds.ensemble",
    "optprompt.adapters.kind",
    "optprompt.adapters.prompt_adapter",
    "optprompt.models.builtin",
    "optprompt.scoring.backends",
    "optprompt.scoring.metrics",
    "optprompt.scoring.entity_metrics",
    "optprompt.scoring.text_metrics",
    "optprompt.tasks.loaders",
)


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

    @property
    def candidate_kinds(self):  # type: ignore[no-untyped-def]
        """The candidate kinds as :class:`~optprompt.kinds.CandidateKinds` (one instance each)."""
        from optprompt.kinds.registry import CandidateKinds

        if "_candidate_kinds" not in self.__dict__:
            self.__dict__["_candidate_kinds"] = CandidateKinds(self.kinds)
        return self.__dict__["_candidate_kinds"]


def get_plugin_manager(*, entry_points: bool = True, extra_plugins: Iterable[object] = ()) -> pluggy.PluginManager:
    """A fresh plugin manager with entry-point plugins, the core built-ins and ``extra_plugins``."""
    pm = pluggy.PluginManager("optprompt")
    pm.add_hookspecs(hookspecs)
    if entry_points:
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as e:  # an entry point that fails to import
            raise PluginError(f"a plugin of entry-point group {ENTRY_POINT_GROUP!r} failed to load: {e!r}") from e
    for modname in _CORE_PLUGINS:
        pm.register(importlib.import_module(modname), name=modname)
    for plugin in extra_plugins:
        pm.register(plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        raise PluginError(str(e)) from e
    return pm


def _plugin_source(pm: pluggy.PluginManager, plugin_name: str) -> str:
    plugin = pm.get_plugin(plugin_name)
    for p, dist in pm.list_plugin_distinfo():
        if p is plugin:
            return f"entry point {ENTRY_POINT_GROUP}:{plugin_name} in {dist.project_name} {dist.version}"
    if plugin_name in _CORE_PLUGINS:
        return "optprompt core"
    return f"registered in code ({plugin_name})"


def _collect(pm: pluggy.PluginManager, hook_name: str, registry: Registry, make: Callable[..., Entry]) -> None:
    hook = getattr(pm.hook, hook_name)
    for impl in hook.get_hookimpls():
        source = _plugin_source(pm, impl.plugin_name)

        def register(*args: Any, _plugin: str = impl.plugin_name, _source: str = source, **kwargs: Any) -> None:
            registry.add(make(*args, plugin=_plugin, source=_source, **kwargs))

        try:
            impl.function(register=register)
        except PluginError:
            raise
        except Exception as e:
            raise PluginError(f"plugin {impl.plugin_name!r} failed in {hook_name}: {e!r}") from e


def _strategy_entry(cls: Any, *, plugin: str, source: str) -> Entry:
    from optprompt.strategies.base import BaseStrategy

    if not (isinstance(cls, type) and issubclass(cls, BaseStrategy)):
        raise PluginError(f"plugin {plugin!r} registered {cls!r} as a strategy, but it is not a BaseStrategy subclass")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise PluginError(f"plugin {plugin!r}: strategy class {cls.__qualname__} has no `name`")
    doc = (cls.__doc__ or "").strip().splitlines()
    return Entry(name=name, obj=cls, plugin=plugin, source=source, description=doc[0] if doc else "")


def _kind_entry(cls: Any, *, plugin: str, source: str) -> Entry:
    from optprompt.kinds.base import CandidateKind

    if not (isinstance(cls, type) and issubclass(cls, CandidateKind)):
        raise PluginError(
            f"plugin {plugin!r} registered {cls!r} as a candidate kind, but it is not a CandidateKind subclass"
        )
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise PluginError(f"plugin {plugin!r}: candidate kind class {cls.__qualname__} has no `name`")
    doc = (cls.__doc__ or "").strip().splitlines()
    return Entry(name=name, obj=cls, plugin=plugin, source=source, description=doc[0] if doc else "")


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
    )
    _collect(pm, "register_strategies", plugins.strategies, _strategy_entry)
    _collect(pm, "register_metrics", plugins.metrics, _named_entry)
    _collect(pm, "register_task_loaders", plugins.task_loaders, _named_entry)
    _collect(pm, "register_models", plugins.models, _named_entry)
    _collect(pm, "register_backends", plugins.backends, _named_entry)
    _collect(pm, "register_candidate_kinds", plugins.kinds, _kind_entry)
    return plugins
