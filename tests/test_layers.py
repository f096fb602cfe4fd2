"""The core's layers, checked on every import statement (module level and inside functions;
``if TYPE_CHECKING:`` blocks excepted, they never run).

    foundation (errors, _io, _version, plugins) -> config, results, trials -> tasks, models -> prompts
      -> scoring -> adapters -> kinds, strategies, stats -> study
      -> export, report, registry, testing -> cli -> the ``optprompt`` facade

A package may import its own layer's packages and lower ones, never a higher one; the
packages of one layer must not import each other in a cycle, and no two modules import
each other, directly or around a loop. No package
is exempt: ``optprompt.plugins`` (the registries and hook specifications every layer uses)
imports nothing above the foundation, and the facade's lazy re-exports sit on top. The
built-in plugins under ``plugins/`` import only the documented public plugin API: the
packages in :data:`PLUGIN_API`, through their ``__init__``.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LAYERS: list[set[str]] = [
    {"errors", "_io", "_version", "_suggest", "plugins"},
    {"config", "results", "trials"},
    {"tasks", "models"},
    {"prompts"},
    {"scoring"},
    {"adapters"},
    {"kinds", "strategies", "stats"},
    {"study"},
    {"export", "report", "registry", "testing", "evaluation", "tracking"},
    {"cli"},
    {""},  # the `optprompt` facade: lazy re-exports of everything
]
LAYER_OF = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}

#: What a plugin may import: these packages' ``__init__`` exports (plus ``optprompt`` itself).
PLUGIN_API = {
    "optprompt",
    "optprompt.adapters",
    "optprompt.config",
    "optprompt.errors",
    "optprompt.kinds",
    "optprompt.kinds.prompt",
    "optprompt.kinds.ensemble",
    "optprompt.kinds.soft",
    "optprompt.kinds.prompt_adapter",
    "optprompt.plugins",
    "optprompt.prompts",
    "optprompt.results",
    "optprompt.strategies",
    "optprompt.trials",
    "optprompt.tasks",
    "optprompt.testing",
}


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path, package: str, *, type_checking: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import that runs in ``path`` (and of those under
    ``if TYPE_CHECKING:`` too, with ``type_checking``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set()
    if not type_checking:
        skip = {
            id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _type_checking(node) for n in node.body
        }
    skipped = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            skipped.update(id(n) for n in ast.walk(node))
    out = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:  # `from optprompt.trials import keys` imports a module
                sub = f"{module}.{alias.name}"
                out.append((node.lineno, sub if _is_module(sub) else module))
    return out


def _is_module(name: str) -> bool:
    parts = name.split(".")
    if parts[0] != "optprompt":
        return False
    path = ROOT.joinpath(*parts)
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _area(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "optprompt":
        return None
    return parts[1] if len(parts) > 1 else ""


def _core_modules() -> list[tuple[Path, str]]:
    out = []
    for path in sorted((ROOT / "optprompt").rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        package = ".".join(parts[:-1] if parts[-1] == "__init__" else parts[:-1])
        out.append((path, package))
    return out


def test_every_core_package_has_a_layer() -> None:
    areas = {_area(p) for path, p in _core_modules()} - {None, ""}
    top = {p.stem for p in (ROOT / "optprompt").glob("*.py") if p.stem != "__init__"}
    assert areas | top <= set(LAYER_OF), f"packages without a layer: {sorted((areas | top) - set(LAYER_OF))}"


def test_core_imports_follow_the_layers() -> None:
    bad = []
    for path, package in _core_modules():
        area = _area(package) if package != "optprompt" else path.stem.replace("__init__", "")
        if area is None:
            continue
        for line, module in imports(path, package):
            target = _area(module)
            if target is None or target == area:
                continue
            if target not in LAYER_OF:  # a top-level module such as optprompt._io
                continue
            if LAYER_OF[target] > LAYER_OF[area]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {area} (layer {LAYER_OF[area]}) imports {module}")
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_no_cycles_between_core_packages() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for path, package in _core_modules():
        area = _area(package) if package != "optprompt" else path.stem.replace("__init__", "")
        if area is None:
            continue
        for _, module in imports(path, package):
            target = _area(module)
            if target and target != area and target in LAYER_OF:
                graph[area].add(target)

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    cycles = sorted(a for a in list(graph) if a in reach(a))
    assert not cycles, f"packages in an import cycle: {cycles} ({ {a: sorted(graph[a]) for a in cycles} })"


@pytest.mark.parametrize(
    "plugin", sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").is_file())
)
def test_plugins_import_only_the_public_plugin_api(plugin: str) -> None:
    bad = []
    for path in sorted((ROOT / "plugins" / plugin).rglob("*.py")):
        for line, module in imports(path, f"optprompt_plugins.{plugin}"):
            if module.startswith("optprompt.") or module == "optprompt":
                if module not in PLUGIN_API:
                    bad.append(f"{path.relative_to(ROOT)}:{line}: imports {module}")
    assert not bad, "plugins must import the public plugin API only:\n" + "\n".join(bad)


def test_no_import_cycles_between_modules() -> None:
    """No module imports another that imports it back, directly or around a loop, counting
    every import that runs, inside functions too (Tarjan's strongly connected components
    over the module graph). Imports under ``if TYPE_CHECKING:`` never run: a type named in
    annotations on both sides (a task and its task type) is not a cycle."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path, package in _core_modules():
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.parts[-1] == "__init__" else rel.parts)
        for _, module in imports(path, package):
            if _is_module(module) and module != name:
                graph[name].add(module)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    assert not cycles, "modules in an import cycle: " + "; ".join(" <-> ".join(c) for c in cycles)
