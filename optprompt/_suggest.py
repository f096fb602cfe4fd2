"""Did-you-mean suggestions for names the user mistyped (keys, plugins, models)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["close_matches", "did_you_mean"]


def close_matches(name: str, choices: Iterable[str], *, n: int = 3) -> list[str]:
    """Up to ``n`` of ``choices`` that look like ``name`` (case-insensitively), best first.

    Close spellings (difflib) come first, then choices that contain ``name`` (a short
    form such as ``smollm2`` for ``smollm2-135m-instruct``).
    """
    pool = [c for c in dict.fromkeys(choices) if isinstance(c, str)]
    lowered: dict[str, str] = {}
    for c in pool:
        lowered.setdefault(c.lower(), c)
    key = name.lower()
    hits = difflib.get_close_matches(key, list(lowered), n=n, cutoff=0.6)
    if len(key) >= 3:
        hits += [c for c in lowered if key in c and c not in hits]
    return [lowered[h] for h in hits[:n]]


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"``, ``" (did you mean 'x' or 'y'?)"``, or ``""`` when nothing is close."""
    hits = close_matches(name, choices)
    if not hits:
        return ""
    quoted = [repr(h) for h in hits]
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f" (did you mean {listed}?)"
