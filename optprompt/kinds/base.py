"""The candidate-kind extension point: what a kind of candidate owns.

A *kind* (discrete prompt, trained adapter, and whatever a plugin adds) owns everything
about its candidates that the rest of optprompt must not branch on: reading them back
from a dict, scoring them on dev (training included), scoring the winner on test, the
fields ``result.json`` shows, the short description that ``show``, the report and the
registry print, exporting the winner and loading that export back into an object that
predicts.
"""

from __future__ import annotations

import abc
import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from optprompt.prompts.candidate import PromptCandidate

if TYPE_CHECKING:
    import optuna

    from optprompt.config.spec import PruningSpec
    from optprompt.models.loading import LoadedModel
    from optprompt.prompts.render import PromptRenderer
    from optprompt.results import ResultEntry, StudyResult
    from optprompt.scoring.evaluate import Evaluation, Evaluator
    from optprompt.tasks.task import Example, Task

__all__ = ["Candidate", "CandidateKind", "KindContext", "Predictor", "DEFAULT_KIND", "EXPORT_FILE", "mark_export"]

#: The kind of a candidate dict without a ``kind`` key (discrete prompts, and every file
#: written before kinds were registered).
DEFAULT_KIND: str = PromptCandidate.kind

#: Written into every export directory: ``{"format": 1, "kind": NAME}``; ``optprompt.load``
#: reads it to find the kind that loads the directory back.
EXPORT_FILE = "optprompt_export.json"


@runtime_checkable
class Candidate(Protocol):
    """What the study needs of any candidate: its kind's name, a JSON dict and a content hash."""

    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]: ...

    @property
    def hash(self) -> str: ...


@runtime_checkable
class Predictor(Protocol):
    """What ``optprompt.load(path)`` returns: an exported winner that predicts."""

    def predict(self, texts: Sequence[str], options: Sequence[Sequence[str]] | None = None) -> list[str]: ...


@dataclass
class KindContext:
    """What the study lends a kind to score (and train) candidates.

    Attributes:
        task: The task (splits, labels, type).
        model: The task model (a kind that trains wraps it; it must leave its weights as
            it found them).
        renderer: Renders candidates and examples into the text that is scored.
        evaluator: The study's scorer (the plain model, behind the score cache).
        dev: The dev examples, in the study's seeded order (every candidate sees this order).
        pruning: The study's ``pruning`` settings.
        artifacts: A directory inside the study's output for files a kind keeps.
        output: The study's output directory (artifacts are named relative to it).
        chat: Whether prompts are rendered through the model's chat template.
        study_name / seed: The study's name and seed.
        objectives: The study's objectives (a kind reports intermediate values only
            when there is one).
        note: Shows a line of progress under the study's progress bar.
    """

    task: Task
    model: LoadedModel
    renderer: PromptRenderer
    evaluator: Evaluator
    dev: Sequence[Example]
    pruning: PruningSpec
    artifacts: Path
    output: Path
    chat: bool
    study_name: str
    seed: int
    objectives: tuple[str, ...] = ("score",)
    note: Callable[[str], None] = lambda text: None

    def score(self, candidate: Any, trial: optuna.Trial, *, prunable: bool = True) -> Evaluation:
        """Score ``candidate`` on dev the standard way (multi-fidelity pruning included)."""
        from optprompt.kinds.fidelity import score_with_pruning

        return score_with_pruning(self.evaluator, candidate, self.dev, trial, self.pruning, prunable=prunable)


class CandidateKind(abc.ABC):
    """One kind of candidate. Subclasses set ``name`` and ``candidate_class`` and
    implement :meth:`export` and :meth:`load`; the defaults score a candidate through
    the study's scorer (right for anything the renderer can render).

    Attributes:
        name: The registry key; the ``kind`` value of its candidates' dicts.
        candidate_class: Its candidates' class (``from_dict`` reads them back).
        label: What one candidate is called in messages ("prompt", "trained adapter").
        column: Heading of the leaderboard column showing :meth:`summary` (None: no column).
        text_only: Whether its export is a prompt card alone (the prompt registry versions
            only those).
        export_label: What ``optprompt export`` writes for it ("prompt card").
        step_name / step_note / curve_title: What the steps of the intermediate values its
            scoring reports are, when they are reported, and the report's title for
            their plot (None: dev slices of multi-fidelity pruning, the default).
        exports_front_members: Whether :meth:`export` can write any Pareto-front member
            (``optprompt export --pick/--front``), not just the winner.
    """

    name: ClassVar[str]
    candidate_class: ClassVar[type]
    label: ClassVar[str] = "candidate"
    column: ClassVar[str | None] = None
    text_only: ClassVar[bool] = False
    export_label: ClassVar[str] = "export"
    step_name: ClassVar[str] = "dev examples scored"
    step_note: ClassVar[str] = "after each slice of dev"
    curve_title: ClassVar[str | None] = None
    exports_front_members: ClassVar[bool] = True

    # --- reading candidates back --------------------------------------------------
    def from_dict(self, data: dict[str, Any]) -> Any:
        """The candidate ``data`` describes (inverse of its ``to_dict``)."""
        return self.candidate_class.from_dict(data)

    def summary(self, data: dict[str, Any]) -> str:
        """A few words on a candidate (as a dict) beyond its text; "" when there is nothing to add."""
        return ""

    def columns(self, data: dict[str, Any]) -> dict[str, Any]:
        """The leaderboard's columns for a candidate (as a dict), in order: by default its
        :meth:`summary` under :attr:`column`."""
        return {self.column: self.summary(data)} if self.column else {}

    def details(self, data: dict[str, Any]) -> list[tuple[str, str]]:
        """``(what, text)`` lines that ``show`` and the report print under a candidate's
        text (e.g. ``("answers", "negative -> 'bad', ...")``). None by default."""
        return []

    # --- scoring --------------------------------------------------------------------
    def score(self, trial: optuna.Trial, candidate: Any, ctx: KindContext, *, prunable: bool = True) -> Evaluation:
        """Score ``candidate`` on ``ctx.dev`` (train it first if it needs training).

        Report intermediate values with ``trial.report`` and raise
        :class:`~optprompt.errors.TrialPruned` (see :func:`optprompt.errors.pruned`) when
        ``trial.should_prune()``. Set ``evaluation.extra["dev_scored"]`` to the number of
        dev examples scored in all and ``evaluation.extra["artifact"]`` to a file or
        directory kept for the candidate (relative to ``ctx.output``).
        """
        return ctx.score(candidate, trial, prunable=prunable)

    @contextlib.contextmanager
    def scorer(self, candidate: Any, ctx: KindContext) -> Iterator[Evaluator]:
        """An evaluator that scores ``candidate`` as :meth:`score` did (the study uses it
        for the winner's test split). The default is the study's scorer."""
        yield ctx.evaluator

    def prompt_tokens(self, candidate: Any, ctx: KindContext, example: Example | None = None) -> int:
        """Tokens the model reads around the input (the ``prompt_tokens`` objective): around
        ``example``'s input when given (its request's tokens less its input's: demonstrations
        retrieved for it counted), else around an empty input."""
        from optprompt.errors import CandidateRejected
        from optprompt.tasks.task import Example

        if example is not None:
            tokenizer = ctx.model.tokenizer
            req = ctx.renderer.request(candidate, example)
            full = len(tokenizer(req.prefix + req.suffix, add_special_tokens=False).input_ids)
            return full - len(tokenizer(example.input, add_special_tokens=False).input_ids)
        empty = Example(id="_length", input="", target="", target_index=0, options=(), row="")
        try:
            req = ctx.renderer.request(candidate, empty)
        except CandidateRejected:
            req = ctx.renderer.request(candidate, ctx.task.dev[0])
        return len(ctx.model.tokenizer(req.prefix + req.suffix, add_special_tokens=False).input_ids)

    def check(self, candidate: Any, ctx: KindContext, examples: Sequence[Example]) -> None:
        """Raise :class:`~optprompt.errors.CandidateRejected` when ``candidate`` cannot be
        scored on ``examples`` (the conformance suite calls it on every proposal). The
        default renders every example."""
        for example in examples:
            ctx.renderer.request(candidate, example)

    def describe(self, candidate: Any, ctx: KindContext) -> dict[str, Any]:
        """The candidate as ``result.json`` shows it (at least ``candidate`` and ``hash``)."""
        return {"candidate": candidate.to_dict(), "hash": candidate.hash}

    def fresh(self, candidate: Any, ctx: KindContext, train: Sequence[Example]) -> list[Example]:
        """The rows of ``train`` that did not choose ``candidate`` and so are fresh evidence for
        picking it at the end of a study (``selection``). The default is none: a kind that
        trains on train, or does not say, is judged on the held-out part of dev alone."""
        return []

    def constrained_answers(self, candidate: Any, ctx: KindContext, examples: Sequence[Any]) -> list[Any] | None:
        """The answers ``candidate`` gives to ``examples`` by greedy generation constrained to
        the answer set, uncalibrated (what a serving stack with guided decoding returns),
        measured beside the ranked score at the end of a study; None (the default) when this
        kind does not measure it."""
        return None

    def combine(self, finalists: Sequence[tuple[Any, Any]], ctx: KindContext, limit: int) -> Any | None:
        """A candidate of this kind built from the study's finalists, or None (the default).

        Args:
            finalists: ``(candidate, calibration offsets found on dev or None)``, best on
                dev first, of any kind: take the ones this kind can combine.
            limit: The most finalists to combine (``selection.ensemble``).
        """
        return None

    def finish(self, result: StudyResult, output: Path) -> None:  # noqa: B027
        """Called once the study's result is known with its winner (e.g. to write the final
        scores into an artifact's manifest). Optional."""

    # --- export and loading back ----------------------------------------------------
    @abc.abstractmethod
    def export(self, result: StudyResult, output: Path, to: Path, member: ResultEntry | None = None) -> Path:
        """Write the winner (or the Pareto-front ``member``) of the finished study in
        ``output`` into ``to``; return the main file written. Call :func:`mark_export`."""

    @abc.abstractmethod
    def load(self, path: Path, model: str | LoadedModel | None = None, **options: Any) -> Predictor:
        """Load what :meth:`export` wrote back into an object that predicts. ``options`` holds
        the caller's loading options and ``plugins``, the loaded plugins to load models with."""

    def detect(self, path: Path) -> bool:
        """Whether ``path`` (an export without :data:`EXPORT_FILE`, written by an older
        version) holds this kind's export."""
        return False


def mark_export(directory: str | os.PathLike[str], kind: str) -> Path:
    """Record in ``directory`` which kind wrote the export there."""
    from optprompt._io import atomic_write_json

    return atomic_write_json(Path(directory) / EXPORT_FILE, {"format": 1, "kind": kind})
