"""``optprompt plugins [NAME]``: what is registered, where from, what failed to load, and
one plugin's options."""

from __future__ import annotations

import inspect
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from optprompt.plugins.manager import Entry, Plugins

__all__ = ["print_plugins", "print_plugin_help", "config_fields"]


def _registries(plugins: Plugins) -> list[tuple[str, Any]]:
    return [
        ("strategies", plugins.strategies),
        ("candidate kinds", plugins.kinds),
        ("task types", plugins.task_types),
        ("metrics", plugins.metrics),
        ("task loaders", plugins.task_loaders),
        ("models", plugins.models),
        ("backends", plugins.backends),
    ]


def print_plugins(plugins: Plugins | None = None) -> None:
    """Every registered strategy, candidate kind, metric, loader, model and backend with its
    source, then the entry points that registered nothing and why."""
    from optprompt.plugins.manager import load_plugins

    plugins = plugins or load_plugins()
    for title, reg in _registries(plugins):
        print(f"{title}:")
        for e in reg:
            print(f"  {e.name:<24} {e.description}")
            print(f"  {'':<24} from {e.source}")
    problems = plugins.problems
    if problems:
        print("entry points that registered nothing:")
        for p in problems:
            print(f"  {p.entry_point}  (distribution {p.distribution})")
            print(f"  {'':<4}{p.reason}")
    print("\n`optprompt plugins NAME` shows one plugin's options.")


def _type_name(annotation: Any) -> str:
    import typing

    if typing.get_origin(annotation) is typing.Literal:
        return " | ".join(str(a) for a in typing.get_args(annotation))
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def config_fields(config_class: type[BaseModel]) -> list[dict[str, str]]:
    """Name, type, default and description of each field of a pydantic config class."""
    from pydantic_core import PydanticUndefined

    rows = []
    for name, f in config_class.model_fields.items():
        if f.default is not PydanticUndefined:
            default = json.dumps(f.default, default=str)
        elif f.default_factory is not None:
            default = json.dumps(f.default_factory(), default=str)  # type: ignore[call-arg]
        else:
            default = "(required)"
        rows.append(
            {
                "name": name,
                "type": _type_name(f.annotation),
                "default": default,
                "description": f.description or "",
            }
        )
    return rows


def _matches(plugins: Plugins, name: str) -> list[tuple[str, Entry]]:
    return [(title, reg.get(name)) for title, reg in _registries(plugins) if name in reg]


def print_plugin_help(name: str, plugins: Plugins | None = None) -> None:
    """One plugin's description, source and, for a strategy, its options in the study file."""
    from optprompt._suggest import did_you_mean
    from optprompt.errors import PluginError
    from optprompt.plugins.manager import load_plugins

    plugins = plugins or load_plugins()
    found = _matches(plugins, name)
    if not found:
        known = sorted({n for _, reg in _registries(plugins) for n in reg.names()})
        broken = [p for p in plugins.problems if p.entry_point.split(":", 1)[-1].split(" =")[0] == name]
        if broken:
            raise PluginError(f"plugin {name!r} did not load: {broken[0]}")
        raise PluginError(f"no plugin registers {name!r}{did_you_mean(name, known)}; `optprompt plugins` lists them")
    for title, entry in found:
        print(f"{entry.name} ({title[:-1] if not title.endswith('ies') else title[:-3] + 'y'}, from {entry.source})")
        doc = inspect.getdoc(entry.obj) if isinstance(entry.obj, type) else entry.description
        if doc:
            print("\n" + "\n".join(f"  {line}" for line in doc.splitlines()))
        config_class = getattr(entry.obj, "config_class", None)
        if callable(getattr(entry.obj, "config_class_for", None)):  # a strategy: its keys where these are registered
            config_class = entry.obj.config_class_for([e.obj for e in plugins.strategies])
        if config_class is not None and hasattr(config_class, "model_fields"):
            rows = config_fields(config_class)
            print(f"\noptions (the `strategy:` block of a study file, besides `name: {entry.name}`):")
            _print_fields(rows)
        print()


def _print_fields(rows: list[dict[str, str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold", expand=True)
    for col, ratio in (("option", 2), ("type", 2), ("default", 2), ("description", 5)):
        table.add_column(col, overflow="fold", ratio=ratio)
    for r in rows:
        table.add_row(r["name"], r["type"], r["default"], r["description"] or "-")
    Console(soft_wrap=False).print(table)
