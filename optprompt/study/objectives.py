"""Objectives of a study: the task score, optionally with prompt length and latency.

With more than one objective the study is multi-objective (NSGA-II by default); its
result keeps the whole Pareto front and a selection rule picks the winner, e.g. "the
best score within 200 prompt tokens".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from optprompt.errors import ConfigError

__all__ = ["OBJECTIVES", "directions", "parse_rule", "select", "values_of"]

# name -> Optuna direction
OBJECTIVES: dict[str, str] = {
    "score": "maximize",  # the task metric on dev
    "prompt_tokens": "minimize",  # tokens of the rendered prompt around the input
    "latency": "minimize",  # seconds of scoring per dev example
}

_RULE = re.compile(r"^\s*(\w+)\s*(<=|>=|<|>)\s*([-+]?\d+(?:\.\d+)?)\s*$")


def directions(objectives: Sequence[str]) -> list[str]:
    return [OBJECTIVES[o] for o in objectives]


def parse_rule(rule: str | None, objectives: Sequence[str], *, key: str = "select") -> list[tuple[str, str, float]]:
    """``"prompt_tokens<=200, latency<0.5"`` -> constraints; unknown names are errors."""
    if not rule:
        return []
    out = []
    for part in rule.split(","):
        m = _RULE.match(part)
        if not m:
            raise ConfigError(f"{key}: cannot read {part.strip()!r}; write constraints like 'prompt_tokens<=200'")
        name, op, number = m.group(1), m.group(2), float(m.group(3))
        if name not in objectives:
            raise ConfigError(f"{key}: {name!r} is not an objective of this study ({', '.join(objectives)})")
        out.append((name, op, number))
    return out


def _ok(value: float, op: str, bound: float) -> bool:
    return {"<=": value <= bound, "<": value < bound, ">=": value >= bound, ">": value > bound}[op]


def select(members: Sequence[dict[str, Any]], constraints: Sequence[tuple[str, str, float]]) -> dict[str, Any] | None:
    """The member with the best score among those meeting every constraint (ties: fewer
    prompt tokens, then the earlier trial); None when none qualifies."""
    fitting = [m for m in members if all(_ok(m["objectives"][n], op, b) for n, op, b in constraints)]
    if not fitting:
        return None
    return max(fitting, key=lambda m: (m["objectives"]["score"], -m["objectives"].get("prompt_tokens", 0), -m["trial"]))


def values_of(objectives: Sequence[str], score: float, prompt_tokens: int, latency: float) -> list[float]:
    measured = {"score": score, "prompt_tokens": float(prompt_tokens), "latency": latency}
    return [measured[o] for o in objectives]
