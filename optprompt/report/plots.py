"""The report's plots, drawn with matplotlib (Agg) and returned as PNG bytes.

Optuna's matplotlib visualisations draw the optimization history, the parameter
importances and the Pareto front; the confusion matrix is drawn here. A plot that cannot
be drawn comes back with ``png=None`` and a note saying why, never an exception.
"""

from __future__ import annotations

import io
import math
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optprompt.trials import TrialRecord

if TYPE_CHECKING:
    import optuna
    from matplotlib.figure import Figure

    from optprompt.report.source import StudySource

__all__ = [
    "Plot",
    "optimization_history",
    "param_importances",
    "pareto_front",
    "confusion_matrix",
    "study_plots",
]

FIGSIZE = (8.0, 4.5)
DPI = 100


@dataclass(frozen=True)
class Plot:
    """One plot of the report.

    Attributes:
        name: File stem (``optimization_history.png``) and HTML anchor.
        title: Heading shown above it.
        png: The image, or None when it was not drawn.
        note: A caption when drawn; why it was not drawn otherwise.
    """

    name: str
    title: str
    png: bytes | None
    note: str = ""

    @property
    def drawn(self) -> bool:
        return self.png is not None


class _Skip(Exception):
    """Raised inside a plot function: the plot is left out, with this message as the note."""


@contextmanager
def _pyplot() -> Iterator[Any]:
    """pyplot with the Agg backend, non-interactive, with rc settings restored afterwards.

    Optuna's plots call ``plt.style.use``; the rc context keeps that from leaking. The
    backend is only chosen when pyplot has not been imported yet, so a notebook keeps its own.
    """
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # "trial N is omitted" for the baseline
    try:
        with matplotlib.rc_context(), plt.ioff(), warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield plt
    finally:
        optuna.logging.set_verbosity(verbosity)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _draw(name: str, title: str, draw: Callable[[], tuple[Figure, str]]) -> Plot:
    """Run ``draw`` (returns the figure and a caption); a :class:`_Skip` becomes a note."""
    with _pyplot() as plt:
        before = set(plt.get_fignums())
        try:
            fig, caption = draw()
            return Plot(name, title, _png(fig), caption)
        except _Skip as e:
            return Plot(name, title, None, str(e))
        finally:
            for num in set(plt.get_fignums()) - before:  # pyplot keeps figures until closed
                plt.close(num)


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def objective_names(study: optuna.Study, metric: str) -> list[str]:
    """Names of the study's objectives: Optuna's metric names, else ``dev METRIC`` first."""
    if study.metric_names is not None:
        return list(study.metric_names)
    n = len(study.directions)
    return [f"dev {metric}"] + [f"objective {i}" for i in range(1, n)]


def optimization_history(study: optuna.Study, metric: str = "accuracy") -> Plot:
    """Every completed trial's dev score and the best so far; the baseline as a dashed line."""
    from optuna.visualization.matplotlib import plot_optimization_history

    def draw() -> tuple[Figure, str]:
        trials = _complete(study)
        if not trials:
            raise _Skip("no completed trials yet")
        name = objective_names(study, metric)[0]
        multi = len(study.directions) > 1
        ax = plot_optimization_history(study, target=(lambda t: t.values[0]) if multi else None, target_name=name)
        fig = ax.figure
        fig.set_size_inches(*FIGSIZE)
        ax.set_ylabel(name)
        base = next((t for t in trials if TrialRecord.from_frozen(t).is_baseline), None)
        if base is not None:
            ax.axhline(
                base.values[0],
                color="0.35",
                linestyle="--",
                linewidth=1,
                label=f"baseline (trial {base.number})",
            )
            ax.legend(loc="best")
        caption = f"{len(trials)} completed trials: each trial's {name} and the best so far"
        if multi:
            caption += " (the first of the study's objectives)"
        return fig, caption

    return _draw("optimization_history", "Optimization history", draw)


def param_importances(study: optuna.Study, metric: str = "accuracy") -> Plot:
    """PED-ANOVA importances (Optuna's default evaluator; needs no extra package).

    Left out, with a note, when fewer than two completed trials carry parameters, fewer
    than two parameters were searched, or no parameter made any difference.
    """
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances
    from optuna.study import StudyDirection
    from optuna.visualization.matplotlib import plot_param_importances

    def draw() -> tuple[Figure, str]:
        with_params = [t for t in _complete(study) if t.params]
        names = {p for t in with_params for p in t.params}
        if len(with_params) < 2:
            raise _Skip(f"needs at least 2 completed trials with parameters; there are {len(with_params)}")
        if len(names) < 2:
            raise _Skip(f"needs at least 2 searched parameters; the trials have {len(names)}")
        name = objective_names(study, metric)[0]
        # Trials without parameters (the baseline) are left out: a NaN target drops a trial.
        # With a target PED-ANOVA takes lower as better, so a maximised objective is flipped.
        sign = -1.0 if study.directions[0] == StudyDirection.MAXIMIZE else 1.0

        def target(t: optuna.trial.FrozenTrial) -> float:
            return sign * t.values[0] if t.params else math.nan

        evaluator = PedAnovaImportanceEvaluator()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                importances = get_param_importances(study, evaluator=evaluator, target=target)
            except (ValueError, RuntimeError) as e:
                raise _Skip(f"cannot be computed: {e}") from None
            values = list(importances.values())
            if not values or max(values) - min(values) < 1e-9:
                raise _Skip(
                    "every parameter came out equally important: the trials are too few or "
                    "scored too alike to tell parameters apart"
                )
            ax = plot_param_importances(study, evaluator=evaluator, target=target, target_name=name)
        fig = ax.figure
        fig.set_size_inches(FIGSIZE[0], max(FIGSIZE[1], 0.35 * len(importances) + 1.5))
        caption = (
            f"PED-ANOVA over the {len(with_params)} completed trials with parameters: how much "
            f"each parameter's values among the best trials differ from all trials ({name})"
        )
        if any("less than" in str(w.message) for w in caught):
            caption += "; some parameter values were tried only once, so these are rough"
        return fig, caption

    return _draw("param_importances", "Parameter importances", draw)


def pareto_front(study: optuna.Study, metric: str = "accuracy") -> Plot | None:
    """The Pareto front of a study with 2 or 3 objectives; None for a single-objective study."""
    if len(study.directions) < 2:
        return None
    from optuna.visualization.matplotlib import plot_pareto_front

    def draw() -> tuple[Figure, str]:
        n = len(study.directions)
        if n > 3:
            raise _Skip(f"Optuna draws Pareto fronts of 2 or 3 objectives; this study has {n}")
        trials = _complete(study)
        if not trials:
            raise _Skip("no completed trials yet")
        names = objective_names(study, metric)
        ax = plot_pareto_front(study, target_names=names)
        fig = ax.figure
        fig.set_size_inches(*FIGSIZE)
        best = len(study.best_trials)
        dirs = ", ".join(f"{nm}: {d.name.lower()}" for nm, d in zip(names, study.directions, strict=True))
        return fig, f"{best} of {len(trials)} completed trials are on the front ({dirs})"

    return _draw("pareto_front", "Pareto front", draw)


def intermediate_values(study: optuna.Study, metric: str = "accuracy") -> Plot | None:
    """Values trials reported on their way (epochs of a training run, dev slices under
    multi-fidelity pruning); None when no trial reported any."""
    if not any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        return None
    from optuna.visualization.matplotlib import plot_intermediate_values

    from optprompt.kinds.registry import candidate_kinds
    from optprompt.plugins.manager import load_plugins

    kinds = candidate_kinds(load_plugins())
    # The kinds of the trials that reported say what a step is (a slice of dev, an
    # epoch of training); a kind with its own steps names the axis when kinds mix.
    reporting = {
        (k := kinds.of_dict(TrialRecord.from_frozen(t).candidate or {})).name: k
        for t in study.get_trials(deepcopy=False)
        if t.intermediate_values
    }
    kind = next((k for k in reporting.values() if k.curve_title), next(iter(reporting.values())))

    def draw() -> tuple[Figure, str]:
        trials = study.get_trials(deepcopy=False)
        ax = plot_intermediate_values(study)
        fig = ax.figure
        fig.set_size_inches(*FIGSIZE)
        name = objective_names(study, metric)[0]
        ax.set_ylabel(name)
        ax.set_xlabel(kind.step_name)
        if kind.curve_title:  # whole steps (epochs)
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        pruned = sum(t.state.name == "PRUNED" and bool(t.intermediate_values) for t in trials)
        return fig, f"each trial's {name} {kind.step_note}; {pruned} trial(s) stopped early by the pruner"

    return _draw("intermediate_values", kind.curve_title or "Intermediate values", draw)


def _matrix(gold: Sequence[int], pred: Sequence[int], k: int) -> list[list[int]]:
    m = [[0] * k for _ in range(k)]
    for g, p in zip(gold, pred, strict=True):
        m[g][p] += 1
    return m


def confusion_matrix(
    predictions: Sequence[dict[str, Any]],
    labels: Sequence[str],
    *,
    role: str = "best",
    title: str = "",
) -> Plot:
    """Counts of gold (rows) against predicted (columns) answers for one role's test predictions.

    Args:
        predictions: Rows of ``predictions.jsonl`` (``role``, ``gold``, ``pred`` indices).
        labels: Names of the answer indices: the task's labels for classification;
            empty for multiple choice, where positions are named ``A``, ``B``, ...
        role: ``"best"`` (the winner) or ``"baseline"``.
        title: Figure title.
    """

    def draw() -> tuple[Figure, str]:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        rows = [p for p in predictions if p.get("role") == role]
        if not rows:
            raise _Skip(f"predictions.jsonl has no test predictions for {role!r}")
        try:
            gold = [int(p["gold"]) for p in rows]
            pred = [int(p["pred"]) for p in rows]
        except (KeyError, TypeError, ValueError):
            raise _Skip("the predictions are not answer indices") from None
        k = max(len(labels), max(gold) + 1, max(pred) + 1)
        names = list(labels) if labels else [f"option {chr(65 + i)}" if i < 26 else f"option {i + 1}" for i in range(k)]
        names += [f"#{i}" for i in range(len(names), k)]
        m = _matrix(gold, pred, k)
        side = min(10.0, max(4.5, 0.55 * k + 2.5))
        fig = Figure(figsize=(side + 1.0, side))
        ax = fig.subplots()
        im = ax.imshow(m, cmap="Blues", vmin=0)
        bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        bar.locator = MaxNLocator(integer=True)
        bar.update_ticks()
        slanted = k * max(map(len, names)) > 40
        ax.set_xticks(range(k), names, rotation=45 if slanted else 0, ha="right" if slanted else "center")
        ax.set_yticks(range(k), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        if title:
            ax.set_title(title)
        if k <= 30:
            top = max(max(r) for r in m) or 1
            for i in range(k):
                for j in range(k):
                    ax.text(
                        j,
                        i,
                        str(m[i][j]),
                        ha="center",
                        va="center",
                        color="white" if m[i][j] > top / 2 else "black",
                    )
        correct = sum(m[i][i] for i in range(k))
        return fig, f"{correct} of {len(rows)} test examples answered correctly"

    return _draw("confusion_matrix", "Confusion matrix (winner on test)", draw)


def _ranks_answers(task_type: Any) -> bool:
    """Whether the registered task type ``task_type`` ranks answers (False for a type no
    installed plugin registers)."""
    from optprompt.errors import PluginError
    from optprompt.tasks.types import resolve_task_type

    try:
        return resolve_task_type(str(task_type)).ranks_answers
    except PluginError:
        return False


def study_plots(source: StudySource) -> list[Plot]:
    """Every plot of the report for ``source``, in order, drawn or with a note."""
    result, metric = source.result, source.metric
    plots = [optimization_history(source.study, metric), param_importances(source.study, metric)]
    front = pareto_front(source.study, metric)
    if front is not None:
        plots.append(front)
    curves = intermediate_values(source.study, metric)
    if curves is not None:
        plots.append(curves)
    title = "Confusion matrix (winner on test)"
    if result is None:
        plots.append(
            Plot(
                "confusion_matrix",
                title,
                None,
                "the study has not finished; the winner is scored on test when it has",
            )
        )
    elif not _ranks_answers(result.task.type):
        plots.append(
            Plot(
                "confusion_matrix",
                title,
                None,
                f"not drawn for {result.task.type} tasks (answers are free text)",
            )
        )
    elif not source.predictions:
        plots.append(Plot("confusion_matrix", title, None, "predictions.jsonl is missing"))
    else:
        plots.append(
            confusion_matrix(
                source.predictions,
                result.task.labels,
                title=f"Winner (trial {result.best.trial}) on test",
            )
        )
    return plots
