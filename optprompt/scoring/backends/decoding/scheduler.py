"""Which rows decode: waiting rows start, join the running batch, leave it when they end."""

from __future__ import annotations

from collections.abc import Sequence

from optprompt.scoring.backends.decoding.batch import RunningBatch
from optprompt.scoring.backends.decoding.cache import mergeable

__all__ = ["Scheduler"]


class Scheduler:
    """Rows in, in their order, at most ``max_rows`` decoding at once.

    Args:
        n_rows: Rows to decode.
        max_rows: At most this many at once (None: all of them).
        compact: Finished rows leave the batch (and its cache) as soon as they end.
        continuous: Waiting rows join the running batch as rows leave it (with
            ``compact``, and when the batch's cache can be joined); otherwise they start
            when the batch has ended.

    Attributes:
        waiting: Rows not started yet, in order.
        batch: The rows running (None between batches).
        joins: Whether rows can join the running batch: read off the first batch's cache.
    """

    def __init__(self, n_rows: int, max_rows: int | None, *, compact: bool, continuous: bool) -> None:
        self.slots = max(1, min(n_rows, max_rows or n_rows))
        self.compact = compact
        self.continuous = continuous and compact
        self.waiting = list(range(n_rows))
        self.batch: RunningBatch | None = None
        self.joins = False

    def admit(self) -> list[int]:
        """The waiting rows that start now: as many as there are free slots, when the batch
        is empty, or when rows may join it and a quarter of its slots (or every waiting
        row) fit."""
        running = len(self.batch.rows) if self.batch else 0
        free = self.slots - running
        if self.waiting and (not running or self.joins) and free >= min(len(self.waiting), max(1, self.slots // 4)):
            start, self.waiting = self.waiting[:free], self.waiting[free:]
            return start
        return []

    def start(self, new: RunningBatch, done: Sequence[bool]) -> None:
        """Rows that just ran their prompts: those not already finished run on, joined to
        the running batch or as the batch."""
        new.select([i for i, b in enumerate(new.rows) if not done[b]])
        if not new.rows:
            return
        if self.batch and self.batch.rows:
            self.batch.join(new)
        else:
            self.batch = new
            self.joins = self.continuous and mergeable(new.cache)

    def running(self, done: Sequence[bool]) -> RunningBatch | None:
        """The batch, when it has rows still decoding; else None (and it is cleared)."""
        if self.batch and self.batch.rows and not all(done[b] for b in self.batch.rows):
            return self.batch
        self.batch = None
        return None

    def leave(self, done: Sequence[bool]) -> bool:
        """Finished rows leave the batch (with ``compact``). Returns whether rows left and
        others run on in a batch that rows join: its cache may then be trimmed."""
        batch = self.batch
        if batch is None or not self.compact or not any(done[b] for b in batch.rows):
            return False
        batch.select([i for i, b in enumerate(batch.rows) if not done[b]])
        return bool(batch.rows) and self.joins
