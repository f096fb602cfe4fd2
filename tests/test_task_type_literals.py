"""No code outside the task types' own package names a task type (``tests/test_layers.py``'s
walk, applied to string literals): everything that differs between task types is asked of
the task's :class:`~optprompt.tasks.TaskType` (``task.task_type``), so a plugin adds a type
without touching optprompt.

A string constant equal to a registered type's name is flagged anywhere in ``optprompt/``
(but ``optprompt/tasks/types/``) and ``plugins/``, docstrings and messages aside (they are
longer strings). The one exception is a word that means something else where it is used.
"""

from __future__ import annotations

import ast
from pathlib import Path

from optprompt.plugins import load_task_types

ROOT = Path(__file__).resolve().parents[1]
TYPES_PACKAGE = ROOT / "optprompt" / "tasks" / "types"

#: file -> literals that are not task types there.
OTHER_MEANINGS: dict[str, set[str]] = {
    # the evolution strategy's generation counter (trial attribute evolution.generation)
    "plugins/evolution/population.py": {"generation"},
    "plugins/evolution/strategy.py": {"generation"},
}


def _sources() -> list[Path]:
    files = sorted((ROOT / "optprompt").rglob("*.py")) + sorted((ROOT / "plugins").rglob("*.py"))
    return [p for p in files if TYPES_PACKAGE not in p.parents]


def literals(path: Path, names: set[str]) -> list[tuple[int, str]]:
    """(line, value) of each string constant in ``path`` that is one of ``names``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
    ]


def test_the_walk_sees_the_types_and_their_literals() -> None:
    names = set(load_task_types().names())
    assert {"classification", "multiple_choice", "generation", "extraction"} <= names
    inside = [hit for p in sorted(TYPES_PACKAGE.rglob("*.py")) for hit in literals(p, names)]
    assert {value for _, value in inside} == names  # the check would find them where they are


def test_no_task_type_literal_outside_the_types_package() -> None:
    names = set(load_task_types().names())
    bad = []
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        for line, value in literals(path, names - OTHER_MEANINGS.get(rel, set())):
            bad.append(f"{rel}:{line}: {value!r}")
    assert not bad, "task-type names outside optprompt/tasks/types/ (ask task.task_type instead):\n" + "\n".join(bad)
