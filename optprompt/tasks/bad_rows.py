"""Rows that cannot be examples: stop at the first (``task.bad_rows: error``) or skip and count them.

A row is bad when its input is empty, its label is missing or not one the task knows, or
its options cannot be read (not a list of at least two non-empty texts). With ``skip``
such rows are dropped, and :class:`BadRows` keeps per reason the count and the first row
numbers, which the task's summary (``result.json["task"]["bad_rows"]``) and the CLI show.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from optprompt.errors import BadRowError

__all__ = ["BadRows", "REASONS", "FIRST_ROWS", "describe"]

#: Why a row was dropped, in the order summaries list them.
REASONS = ("empty_input", "missing_label", "unknown_label", "bad_options")
#: How many row numbers a summary names per reason.
FIRST_ROWS = 5
#: What the error of a bad row under ``task.bad_rows: error`` adds: how to go on without it.
SKIP_HINT = " (fix the row, or set `task.bad_rows: skip` to drop such rows; result.json counts them)"

T = TypeVar("T")


@dataclass
class BadRows:
    """The policy for bad rows and, under ``skip``, the rows dropped so far.

    Args:
        policy: ``error`` (a bad row raises :class:`~optprompt.errors.BadRowError`) or ``skip``.
    """

    policy: str = "error"
    rows: dict[str, list[str]] = field(default_factory=dict)  # reason -> where (``file row N``), in order

    @property
    def skipping(self) -> bool:
        return self.policy == "skip"

    def check(self, make: Callable[[], T], where: str) -> T | None:
        """``make()``, or None when it finds a bad row and the policy is ``skip`` (counted)."""
        try:
            return make()
        except BadRowError as e:
            if not self.skipping:
                raise BadRowError(f"{e}{SKIP_HINT}", e.reason) from None
            self.skip(e.reason, where)
            return None

    def reject(self, message: str, reason: str, where: str) -> None:
        """A bad row found outside :meth:`check`: raise (``error``) or count it (``skip``)."""
        if not self.skipping:
            raise BadRowError(f"{message}{SKIP_HINT}", reason)
        self.skip(reason, where)

    def skip(self, reason: str, where: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown bad-row reason {reason!r}; known: {', '.join(REASONS)}")
        self.rows.setdefault(reason, []).append(where)

    @property
    def skipped(self) -> int:
        return sum(len(v) for v in self.rows.values())

    def summary(self) -> dict[str, Any]:
        """``{"policy", "skipped", "reasons": {reason: {"count", "first_rows"}}}``."""
        return {
            "policy": self.policy,
            "skipped": self.skipped,
            "reasons": {
                r: {"count": len(self.rows[r]), "first_rows": self.rows[r][:FIRST_ROWS]}
                for r in REASONS
                if r in self.rows
            },
        }


def describe(summary: dict[str, Any]) -> str:
    """A task's ``bad_rows`` summary in one line: ``skipped 3 bad rows: empty_input 2 (data.csv
    row 4, data.csv row 9); unknown_label 1 (data.csv row 12)``."""
    n = int(summary.get("skipped", 0))
    if not n:
        return "no bad rows"
    parts = []
    for reason, info in summary.get("reasons", {}).items():
        more = ", ..." if info["count"] > len(info["first_rows"]) else ""
        parts.append(f"{reason} {info['count']} ({', '.join(info['first_rows'])}{more})")
    return f"skipped {n} bad row{'s' * (n != 1)}: " + "; ".join(parts)
