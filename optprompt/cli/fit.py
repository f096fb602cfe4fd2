"""Text fitted to the terminal: tables whose long cells end in an ellipsis, wrapped prose.

Shared by ``show``, ``evaluate`` and the end-of-study summary that ``run`` prints. The width
is the terminal's (``COLUMNS`` when output is not a terminal; 80 by default); None means
no limit (``--wide``).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["clip", "fit_widths", "format_table", "print_wrapped", "terminal_width", "wrap"]

#: Columns that are never cut short (short by nature).
_NARROW = ("trial", "state", "dev", "role", "family")


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value).replace("\n", "⏎")


def fit_widths(natural: list[int], fixed: list[bool], width: int, gap: int = 2, floor: int = 6) -> list[int]:
    """Column widths that fit ``width``: fixed columns keep their natural width, the others
    share what is left (water-filling: a column narrower than its share keeps its width
    and leaves the rest to the wider ones), none below ``floor`` (or its natural width)."""
    widths = list(natural)
    room = width - gap * max(0, len(natural) - 1) - sum(w for w, f in zip(natural, fixed, strict=True) if f)
    flexible = sorted((w, i) for i, (w, f) in enumerate(zip(natural, fixed, strict=True)) if not f)
    left = len(flexible)
    for w, i in flexible:
        share = max(min(w, floor), room // left if left else 0)
        widths[i] = min(w, share)
        room -= widths[i]
        left -= 1
    return widths


def clip(text: str, width: int | None) -> str:
    """``text`` cut to ``width`` characters, the last one "…" when cut (None: as it is)."""
    if width is None:
        return text
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def format_table(
    rows: list[dict[str, Any]], width: int | None, fixed: tuple[str, ...] = _NARROW, floor: int = 6
) -> tuple[list[str], list[str]]:
    """The rows as text lines no wider than ``width`` (None: no limit), cells cut with "…",
    and the columns left out because even cut to ``floor`` characters they would not fit
    (the rightmost first; ``note`` is kept)."""
    if not rows:
        return [], []
    columns = list(rows[0])
    hidden: list[str] = []
    if width is not None:
        while True:
            flexible = [c for c in columns if c not in fixed]
            need = sum(max(len(c), *(len(_cell(r[c])) for r in rows)) if c in fixed else floor for c in columns) + 2 * (
                len(columns) - 1
            )
            droppable = [c for c in flexible if c != "note"]
            if need <= width or len(droppable) <= 1:
                break
            hidden.insert(0, droppable[-1])
            columns.remove(droppable[-1])
    cells = [[_cell(r[c]) for c in columns] for r in rows]
    natural = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    widths = natural if width is None else fit_widths(natural, [c in fixed for c in columns], width, floor=floor)
    right = {"trial", "dev"}

    def line(values: list[str]) -> str:
        parts = []
        for c, v, w in zip(columns, values, widths, strict=True):
            v = clip(v, w)
            parts.append(v.rjust(w) if c in right else v.ljust(w))
        return "  ".join(parts).rstrip()

    return [line(columns), *(line(r) for r in cells)], hidden


def wrap(text: str, width: int | None, indent: str = "  ") -> str:
    """``text`` wrapped to ``width`` (None: as it is), continuation lines indented."""
    import textwrap

    if width is None:
        return text
    # a word longer than the width (a path) stays whole: copied from the terminal, it still works
    return textwrap.fill(text, width, subsequent_indent=indent, break_on_hyphens=False, break_long_words=False)


def print_wrapped(text: str, width: int | None, indent: str = "  ") -> None:
    """Print ``text`` wrapped to ``width`` (None: as it is)."""
    print(wrap(text, width, indent))


def terminal_width() -> int:
    """The terminal's width (``COLUMNS`` when output is not a terminal; 80 by default)."""
    import shutil

    return shutil.get_terminal_size((80, 24)).columns
