"""A rich progress bar for the study loop (trial n of N, running best, examples/s, ETA) and
a status line for the end of a study (the step it is on, how long each took)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

__all__ = ["EndProgress", "StudyProgress"]


class StudyProgress:
    """Context manager; ``advance(value)`` after each trial that uses up budget (the
    baseline's included, as ``strategy.trials`` counts them). Does nothing when disabled."""

    def __init__(
        self,
        total: int | None,
        done: int = 0,
        *,
        enabled: bool = True,
        best: float | None = None,
        minutes: float | None = None,
    ) -> None:
        self.total = total  # None: a budget in minutes (the bar shows elapsed time against it)
        self.minutes = minutes
        self.done = done
        self.enabled = enabled
        self.best = best
        self._progress = None
        self._task = None
        self._examples = 0
        self._started = 0.0
        self._note = ""

    def _desc(self) -> str:
        import time

        best = "-" if self.best is None else f"{self.best:.3f}"
        elapsed = time.perf_counter() - self._started
        rate = f", {self._examples / elapsed:.1f} ex/s" if self._examples and elapsed > 0 else ""
        note = f" · {self._note}" if self._note else ""
        budget = f" of {self.minutes:g} min" if self.minutes is not None else ""
        # The bar counts what uses up the budget: the baseline (trial 0) is one of them.
        return f"trials{budget}, baseline included (best dev {best}{rate}){note}"

    def __enter__(self) -> StudyProgress:
        import time

        self._started = time.perf_counter()
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.__enter__()
            completed = self.done if self.total is None else min(self.done, self.total)
            self._task = self._progress.add_task(self._desc(), total=self.total, completed=completed)
        return self

    def advance(self, value: float | None, examples: int = 0) -> None:
        """One more trial; ``examples``: dev examples it scored (for the examples/s figure)."""
        self.done += 1
        self._examples += examples
        if value is not None and (self.best is None or value > self.best):
            self.best = value
        self._note = ""
        if self._progress is not None:
            self._progress.update(self._task, advance=1, description=self._desc())

    def note(self, text: str) -> None:
        """Show what the current trial is doing (e.g. a training run's epoch and loss)."""
        self._note = text
        if self._progress is not None:
            self._progress.update(self._task, description=self._desc())

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.__exit__(et, ev, tb)


class EndProgress:
    """What the end of a study is doing (picking the winner, scoring test, constrained
    generation, distillation): a spinner with the step and its elapsed time while it runs,
    and a line with its duration when it ends, on stderr. Does nothing when disabled."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.seconds: dict[str, float] = {}  # each finished step's wall time

    @contextmanager
    def step(self, label: str) -> Iterator[_Step]:
        """Run one step of the end phase under ``label``; a step that found nothing to do
        calls ``skip()`` on what this yields and is neither shown nor timed."""
        import time

        started = time.perf_counter()
        handle = _Step()
        if not self.enabled:
            yield handle
        else:
            from rich.console import Console

            console = Console(stderr=True)
            with console.status(f"end of study: {label}", spinner="dots"):
                yield handle
            if not handle.skipped:
                console.print(
                    f"[dim]end of study: {label} ({time.perf_counter() - started:.0f} s)[/dim]", highlight=False
                )
        if not handle.skipped:
            self.seconds[label] = time.perf_counter() - started


class _Step:
    """One step of :class:`EndProgress`."""

    skipped = False

    def skip(self) -> None:
        """The step had nothing to do (say, no answer set to constrain to): not shown."""
        self.skipped = True
